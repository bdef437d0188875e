"""What a run needs from outside (its data, its metrics' weights), checked from the config alone,
before Lightning, torchvision's models, wandb or torch-fidelity are imported and before Hydra makes
the run directory: missing data answers as fast as a misspelt key, and leaves nothing behind.
Then what only a constructor can say (``check_parts``): the model's networks are built on torch's
meta device and ganlab's own data set as its plain class, still before Lightning.

The run checks again once its data module and callbacks exist (a plugin's data module is checked
only then); what this found is there by then, so that second check is quick.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from ganlab.cli import one_line
from ganlab.data.sources import source_of
from ganlab.errors import ConfigError, DataError, GanlabError, raise_all
from ganlab.sweep import is_rank_zero

FID_CALLBACK = "ganlab.metrics.callback.FIDCallback"


def preflight_config(cfg: Mapping[str, Any]) -> None:
    """The checkpoint given to resume from, refused first if it names code or is damaged (the run's
    classes are imported for it: a resume pays for Lightning here); then the built-in data set's
    files (checked, downloaded when allowed) and the FID, LPIPS and VGG weights the ``metrics``
    settings need: everything missing in one line (``DataError``)."""
    if cfg.get("ckpt_path"):  # a resume: the run's own classes (its command line is trusted) first
        from ganlab.checkpoint import resume_info
        from ganlab.plugins import register_run_parts

        register_run_parts(dict(cfg))
        resume_info(str(cfg["ckpt_path"]))
    problems: list[GanlabError] = []
    data = cfg.get("data") or {}
    source = None
    try:
        source = source_of(data)
        if source is not None and is_rank_zero():  # the other ranks wait for rank 0's data in the run
            source.prepare()
    except GanlabError as e:
        problems.append(e)
    metrics = cfg.get("metrics") or {}
    if metrics.get("_target_") == FID_CALLBACK:
        from ganlab.metrics.weights import find_weights

        paired = source.paired if source is not None else False
        try:
            find_weights(
                metrics.get("fid") or {}, metrics.get("lpips") or {}, metrics.get("vgg") or {},
                bool(metrics.get("prc")), paired,
            )  # fmt: skip
        except GanlabError as e:
            problems.append(e)
    raise_all(problems, DataError)


def build(conf: DictConfig, key: str) -> Any:
    """``instantiate`` with a constructor's refusal as one line naming the config node: a value
    a class rejects (``data.image_size=7`` for DCGAN) or a size that cannot be allocated
    (``model.generator.ngf=100000``) is the user's to fix, not a traceback."""
    from hydra.utils import instantiate  # here: it takes a tenth of a second to import

    try:
        return instantiate(conf)
    except InstantiationException as e:
        node = re.search(r"full_key: (\S+)", str(e))
        raise _refusal(node.group(1) if node else key, e.__cause__) or e from None


def _raise_refusal(where: str, error: BaseException) -> None:
    """Raise a constructor's refusal (``ValueError``, ``ConfigError``) as one line; anything else (a
    plugin's network that cannot be built on the meta device) is left for the run to meet."""
    cause = error.__cause__ if isinstance(error, InstantiationException) else error
    refusal = _refusal(where, cause)
    if refusal is not None:
        raise refusal from None


def _check_size(net: Any, where: str) -> None:
    """A network whose weights alone exceed this machine's memory is refused now, not after
    seconds or minutes of allocating them (``model.generator.ngf=100000``)."""
    needed = sum(t.numel() * t.element_size() for t in [*net.parameters(), *net.buffers()])
    here = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > here:
        raise ConfigError(
            f"{where} asks for more memory than this machine has ({needed / 2**30:,.0f} GiB of "
            f"weights, {here / 2**30:,.0f} GiB here); lower its widths or sizes"
        )


def _refusal(where: str, cause: BaseException | None) -> ConfigError | None:
    """A constructor's refusal as one line naming the config node, or None (not the user's)."""
    if isinstance(cause, ConfigError):
        return cause
    if isinstance(cause, ValueError):
        return ConfigError(f"{where}: {one_line(cause)}")
    if isinstance(cause, RuntimeError | MemoryError) and "alloc" in str(cause).lower():
        return ConfigError(
            f"{where} asks for more memory than this machine has ({one_line(cause)[:160]}); "
            "lower its widths or sizes"
        )
    return None


def check_parts(cfg: DictConfig) -> None:
    """What only a constructor says, before Lightning: every network of ``model`` (a sub-config
    whose class is a ``torch.nn.Module``; a partial one is called once) built on torch's ``meta``
    device, which takes no memory and draws nothing (a plugin network's own checks; a width whose
    weights exceed this machine's memory), and ganlab's own data set built as its plain class
    (``data.labels=colour``). Imports torch and those classes' modules; a class that cannot be
    imported is left to the run, which names it."""
    import torch
    from hydra.utils import get_object, instantiate

    from ganlab.checkpoint import plain_data_class

    model = cfg.get("model")
    for key, node in model.items() if isinstance(model, DictConfig) else []:
        if not (isinstance(node, DictConfig) and "_target_" in node):
            continue
        try:
            cls = get_object(str(node._target_))
        except Exception:  # the run's own check names it
            continue
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            continue
        try:
            with torch.device("meta"):
                net = instantiate(node)
                net = net() if node.get("_partial_") else net
        except Exception as e:  # a refusal is the user's, in one line; the run builds the rest again
            _raise_refusal(f"model.{key}", e)
            continue
        _check_size(net, f"model.{key}")
    data = cfg.get("data")
    cls = plain_data_class(data.get("_target_")) if isinstance(data, DictConfig) else None
    if cls is not None:
        values = OmegaConf.to_container(data, resolve=True)
        try:
            cls(**{k: v for k, v in values.items() if not (k.startswith("_") and k.endswith("_"))})
        except Exception as e:  # as for the networks
            _raise_refusal("data", e)
