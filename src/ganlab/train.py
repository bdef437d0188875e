"""Train a GAN: ``python -m ganlab.train [overrides]`` (Hydra; see conf/train.yaml).

This module is the command's entry and nothing more: Hydra composes the config and answers
``--help``, ``--cfg job`` and a misspelt key before torch or Lightning is imported; the run itself
is ``ganlab.training`` (imported by the job). ``ganlab.train.train`` and the other names of the run
are reached through here too, imported when first asked for.
"""

from __future__ import annotations

import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from ganlab.cli import config_dir, run_cli

CONFIG_DIR = config_dir()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    from ganlab.training import run_job

    return run_job(cfg)


def main() -> None:
    """Console entry point (``ganlab-train``): user errors become one line and exit status 1; a sweep
    in which any job did not complete exits 1 after its summary."""
    run_cli(_hydra_main)
    from ganlab.sweep import LAST_SWEEP

    if LAST_SWEEP["failed"]:
        print(
            f"error: {LAST_SWEEP['failed']} of {LAST_SWEEP['jobs']} sweep job(s) did not complete; "
            f"see {LAST_SWEEP['dir']}/summary.txt and each job's error.txt",
            file=sys.stderr,
        )
        sys.exit(1)


def __getattr__(name: str) -> Any:
    """``from ganlab.train import train`` (and the run's other names): from ``ganlab.training``."""
    if name.startswith("__"):
        raise AttributeError(name)
    import ganlab.training

    return getattr(ganlab.training, name)


if __name__ == "__main__":
    main()
