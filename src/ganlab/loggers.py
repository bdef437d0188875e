"""W&B logger whose mode (online/offline) is decided once, before the first ``wandb.init``."""

from __future__ import annotations

import netrc
import os
import socket
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info

from ganlab.errors import ConfigError

WANDB_HOST = "api.wandb.ai"


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _reachable(host: str, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_mode(mode: str) -> str:
    """'online', 'offline' or 'disabled'; ``auto`` is online only with an API key and a server.

    ``WANDB_MODE`` in the environment wins, as in wandb itself. Deciding here matters: an online
    init without network retries for ~90 s and may hang (wandb#9865).
    """
    source = "WANDB_MODE" if "WANDB_MODE" in os.environ else "logger.wandb.mode"
    mode = os.environ.get("WANDB_MODE", mode)
    if mode in ("online", "offline", "disabled"):
        return mode
    if mode == "dryrun":
        return "offline"
    if mode != "auto":
        raise ConfigError(f"{source}={mode} is not one of auto, online, offline, disabled")
    return "online" if _has_api_key() and _reachable(WANDB_HOST) else "offline"


def wandb_logger(mode: str = "auto", save_dir: str = ".", **kwargs: Any) -> WandbLogger:
    """A ``WandbLogger`` in the resolved mode; offline runs say how to upload them later."""
    resolved = resolve_mode(mode)
    os.environ["WANDB_MODE"] = resolved  # one decision for the whole process (and its children)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    if resolved == "offline":
        rank_zero_info(
            f"W&B: logging offline (no API key or no connection to {WANDB_HOST}); upload later with"
            f" `wandb sync {Path(save_dir) / 'wandb' / 'offline-run-*'}`"
        )
    return WandbLogger(save_dir=save_dir, offline=resolved == "offline", mode=resolved, **kwargs)


def define_summaries(loggers: list[Any]) -> None:
    """W&B run summaries of the metrics where lower is better keep their minimum, not the last value
    (``val/fid*``, ``val/kid*``, ``val/lpips``, ``val/l1``), and PSNR/SSIM their maximum."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment  # the run itself on rank 0, a no-op stand-in on the others
            for pattern in ("val/fid*", "val/kid*", "val/lpips", "val/l1"):
                run.define_metric(pattern, summary="min")
            for name in ("val/psnr", "val/ssim"):
                run.define_metric(name, summary="max")
