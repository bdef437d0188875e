"""W&B logger whose mode (online/offline) is decided once, before the first ``wandb.init``."""

from __future__ import annotations

import netrc
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from ganlab.errors import ConfigError

DEFAULT_BASE_URL = "https://api.wandb.ai"


def wandb_base_url() -> str:
    """The W&B server: ``WANDB_BASE_URL`` (a self-hosted W&B), else W&B's cloud."""
    return os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL).rstrip("/")


def wandb_host() -> str:
    return urllib.parse.urlsplit(wandb_base_url()).hostname or "api.wandb.ai"


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:  # `wandb login` writes the key under the server's host name
        return netrc.netrc(os.environ.get("NETRC")).authenticators(wandb_host()) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Any HTTP answer from the W&B server, asked as wandb asks: through the environment's proxies
    (``HTTPS_PROXY``/``HTTP_PROXY``, ``NO_PROXY``), so a proxied network is not taken for none."""
    try:
        opener = urllib.request.build_opener()  # reads the proxy variables now (urlopen's is cached)
        with opener.open(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:  # 401, 404, …: the server (or the proxy in front of it) answered
        return True
    except (OSError, ValueError):  # no route, refused, timed out, a malformed URL
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
    return "online" if _has_api_key() and _reachable(wandb_base_url()) else "offline"


class RunLogger(WandbLogger):
    """``WandbLogger`` that uploads ganlab's checkpoints as W&B model artifacts.

    Lightning's ``log_model`` only knows ``ModelCheckpoint``; ganlab writes ``last.ckpt``
    (``LastCheckpoint``, alias ``last``) and ``best.ckpt`` (``FIDCallback``, alias ``best``) itself.
    ``log_model=true``: both once, when training ends (as Lightning: not after a failure);
    ``log_model=all``: every time one is written.
    """

    def __init__(self, *args: Any, log_model: bool | str = False, **kwargs: Any) -> None:
        if log_model not in (True, False, "all"):
            raise ConfigError(f"logger.wandb.log_model={log_model} is not one of false, true, all")
        super().__init__(*args, log_model=False, **kwargs)
        init = getattr(self, "_wandb_init", {})
        if init.get("anonymous", "") is None:  # Lightning passes anonymous=None: a wandb deprecation warning
            del init["anonymous"]
        self.upload: bool | str = log_model
        self.written: dict[str, tuple[Path, dict[str, Any]]] = {}  # alias → (file, metadata)
        if log_model == "all":
            rank_zero_info(
                f"W&B: log_model=all uploads every checkpoint saved; W&B keeps a copy of each in "
                f"{staging_dir()} (outside the run directory) until it is uploaded — offline, until "
                "`wandb sync`; set WANDB_DATA_DIR to put them elsewhere, or log_model=true for the "
                "last and best only"
            )

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        describe = getattr(checkpoint_callback, "artifact", None)
        if describe is None:  # a Lightning ModelCheckpoint someone added: Lightning's own handling
            super().after_save_checkpoint(checkpoint_callback)
            return
        alias, path, metadata = describe()
        self.written[alias] = (path, metadata)
        if self.upload == "all":
            self._upload(alias)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if status == "success" and self.upload is True and self._experiment is not None:
            for alias in self.written:
                self._upload(alias)
        super().finalize(status)

    def _upload(self, alias: str) -> None:
        import wandb

        path, metadata = self.written[alias]
        artifact = wandb.Artifact(f"model-{self.experiment.id}", type="model", metadata=metadata)
        artifact.add_file(str(path), name=path.name)  # copied into W&B's staging area now
        self.experiment.log_artifact(artifact, aliases=[alias])


def staging_dir() -> str:
    """Where wandb copies a file added to an artifact until it is uploaded (``WANDB_DATA_DIR``)."""
    from wandb import env

    return os.path.join(env.get_data_dir(), "artifacts", "staging")


def wandb_logger(mode: str = "auto", save_dir: str = ".", **kwargs: Any) -> RunLogger:
    """A W&B logger in the resolved mode. Offline, wandb's banner and end-of-run tables are
    silenced (they repeat the console); the run's folder and the ``wandb sync`` line come at the end,
    when the folder exists (``train._finish_wandb``)."""
    run_id = kwargs.get("id")
    if run_id is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(run_id)):
        raise ConfigError(
            f"logger.wandb.id={run_id} is not a W&B run id: up to 64 letters, digits, '-' and '_' "
            "(it names a folder and the run's URL)"
        )
    resolved = resolve_mode(mode)
    os.environ["WANDB_MODE"] = resolved  # one decision for the whole process (and its children)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    if resolved == "offline":
        import wandb

        kwargs.setdefault("settings", wandb.Settings(silent=True))
        rank_zero_info(f"W&B: logging offline (no API key, or no connection to {wandb_host()})")
    return RunLogger(save_dir=save_dir, offline=resolved == "offline", mode=resolved, **kwargs)


def define_summaries(loggers: list[Any]) -> None:
    """W&B run summaries of the metrics where lower is better keep their minimum, not the last value
    (``val/fid*``, ``val/kid*``, ``val/lpips``, ``val/l1``), and PSNR/SSIM their maximum."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment  # the run itself on rank 0, a no-op stand-in on the others
            for pattern in ("val/fid*", "val/kid*", "val/lpips", "val/l1"):
                run.define_metric(pattern, summary="min")
            for name in ("val/psnr", "val/ssim", "val/precision*", "val/recall*", "val/isc*"):
                run.define_metric(name, summary="max")
