"""Reading ganlab checkpoints safely: ``weights_only`` loading, networks rebuilt from the stored config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from ganlab.errors import CheckpointError


def load_checkpoint(path: str | Path, option: str = "ckpt") -> dict[str, Any]:
    """The checkpoint's contents (tensors and plain containers only: never executes code).

    Memory-mapped: tensors are read from disk only when used, so a caller that needs a few
    entries (train.py's resume, before Lightning loads the file itself) reads little.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{option}={path} does not exist; give the path of a checkpoints/last.ckpt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise CheckpointError(f"{option}={path} cannot be read ({' '.join(str(e).split())})") from None
    if "ganlab_config" not in ckpt:
        raise CheckpointError(f"{option}={path} has no ganlab config; was it written by ganlab.train?")
    return ckpt


SAFE_TARGETS = ("ganlab.nets.", "ganlab.modules.", "ganlab.data.", "torch.optim.")


def check_targets(conf: Any, where: str = "checkpoint config") -> None:
    """Refuse a stored config whose ``_target_`` names code outside ganlab (and torch.optim)."""
    if isinstance(conf, dict):
        target = conf.get("_target_")
        if target is not None and not str(target).startswith(SAFE_TARGETS):
            raise CheckpointError(
                f"{where} names {target!r}, which is not a ganlab class; refusing to build it"
            )
        for value in conf.values():
            check_targets(value, where)
    elif isinstance(conf, list):
        for value in conf:
            check_targets(value, where)


def build_network(ckpt: dict[str, Any], key: str, prefix: str) -> nn.Module:
    """The network ``model.<key>`` of the checkpoint's config, with the weights under ``prefix``."""
    conf = dict(ckpt["ganlab_config"]["model"][key])
    check_targets(conf)  # a checkpoint must not choose what code runs
    net = instantiate(conf)
    net = net() if not isinstance(net, nn.Module) else net  # _partial_ configs (CycleGAN's pairs)
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    net.load_state_dict(state)
    return net.eval()


def model_kind(ckpt: dict[str, Any]) -> str:
    """'CycleGAN', 'DCGAN', ...: the module class of the run."""
    return str(ckpt["ganlab_config"]["model"]["_target_"]).rsplit(".", 1)[-1]
