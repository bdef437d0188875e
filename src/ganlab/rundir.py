"""The run directory: values, data and weights are checked before Hydra creates it, and a folder
ganlab did not create is never removed (a config error in ``hydra.run.dir=<your folder>`` leaves it
as it was)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganlab.cli import report, user_error
from ganlab.errors import ConfigError, GanlabError
from ganlab.plugins import load_plugins
from ganlab.preflight import check_parts, preflight_config
from ganlab.validate import check_run

HYDRA_ONLY = {".hydra", "train.log", "result.json"}  # what a run that never started leaves
# run directories that existed before this process's Hydra run began (set by CheckFirst)
EXISTING_RUN_DIRS: set[Path] = set()
# folders above a run directory that Hydra is about to create (outputs/<date>/): removed with it
NEW_PARENTS: set[Path] = set()


class CheckFirst(Callback):
    """Hydra callback: a single run's values, data and metric weights are checked before Hydra
    creates (or writes into) the run directory, so a typo or missing data never touches a folder,
    and a run directory that existed before the run is remembered: ganlab never removes a folder
    it did not create. Nothing here imports Lightning (``ganlab.signatures``, ``ganlab.preflight``)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            load_plugins(config.get("plugins"))  # before the values: a plugin's classes are checked too
        except ConfigError as e:
            report(e)
            sys.exit(1)
        run_dir = Path(str(config.hydra.run.dir))
        if run_dir.exists():
            EXISTING_RUN_DIRS.add(run_dir.resolve())
        NEW_PARENTS.update(p for p in run_dir.resolve().parents if not p.exists())
        plain = OmegaConf.to_container(config, resolve=False)
        plain.pop("hydra", None)
        plain.setdefault("paths", {})["output_dir"] = str(run_dir)
        try:
            early = OmegaConf.create(plain)
            OmegaConf.to_container(early, resolve=True)
        except OmegaConfBaseException as e:
            error = user_error(e)
            if isinstance(error, ConfigError):  # a resolver's refusal (an environment value): now
                report(error)
                sys.exit(1)
            return  # an interpolation that needs the job (hydra:...): the job checks it
        try:
            check_run(early, static=True)  # imports no class: the run checks the rest
            # what the run needs from outside, before Lightning is imported or the directory made
            preflight_config(OmegaConf.to_container(early, resolve=True))
            check_parts(early)  # what only a constructor says: networks on the meta device (torch)
        except GanlabError as e:  # Hydra turns a callback's exception into a warning: exit here
            report(e)
            sys.exit(1)


def discard_run_dir(run_dir: Path) -> None:
    """A config error trains nothing: its run directory goes, unless this process did not create it
    or it holds anything else (an earlier run's checkpoints, a user's files), which is never touched."""
    if not run_dir.is_dir() or run_dir.resolve() in EXISTING_RUN_DIRS:
        return
    if not {p.name for p in run_dir.iterdir()} <= HYDRA_ONLY:
        return
    for name in HYDRA_ONLY - {".hydra"}:
        (run_dir / name).unlink(missing_ok=True)
    hydra_dir = run_dir / ".hydra"
    if hydra_dir.is_dir() and {p.name for p in hydra_dir.iterdir()} <= {
        "config.yaml",
        "hydra.yaml",
        "overrides.yaml",
    }:
        for p in hydra_dir.iterdir():
            p.unlink()
        hydra_dir.rmdir()
    if not any(run_dir.iterdir()):
        run_dir.rmdir()
        for parent in run_dir.resolve().parents:  # outputs/<date>/ if this run made it and it is empty
            if parent not in NEW_PARENTS or any(parent.iterdir()):
                break
            parent.rmdir()


def user_folder(cfg: DictConfig) -> bool:
    """Whether this run's directory existed before the run (the user's, or an earlier run's)."""
    return Path(cfg.paths.output_dir).resolve() in EXISTING_RUN_DIRS
