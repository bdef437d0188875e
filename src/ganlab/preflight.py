"""What a run needs from outside (its data, its metrics' weights), checked from the config alone,
before Lightning, torchvision's models, wandb or torch-fidelity are imported and before Hydra makes
the run directory: missing data answers as fast as a misspelt key, and leaves nothing behind.

The run checks again once its data module and callbacks exist (a plugin's data module is checked
only then); what this found is there by then, so that second check is quick.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganlab.data.sources import source_of
from ganlab.errors import DataError, GanlabError, raise_all
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
