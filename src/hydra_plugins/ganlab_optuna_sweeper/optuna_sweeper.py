"""``hydra/sweeper=ganlab_optuna``: Optuna (TPE) over Hydra override syntax, one Hydra job per trial.

``hydra.sweeper.params`` uses Hydra's sweep syntax: ``choice(a, b)``, ``range(1, 5)``,
``interval(1e-5, 1e-3)``, ``tag(log, interval(1e-5, 1e-3))``. Each trial is launched through the
configured launcher (basic, joblib, submitit), so trials are ordinary jobs: own run directory, own
W&B run in the sweep's group. A trial's value is the job's return value (the best FID); failed or
NaN trials are told to Optuna as failed.
"""

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import optuna
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class GanlabOptunaSweeperConf:
    _target_: str = "hydra_plugins.ganlab_optuna_sweeper.optuna_sweeper.GanlabOptunaSweeper"
    direction: str = "minimize"
    n_trials: int = 20
    n_jobs: int = 1
    seed: Optional[int] = None  # noqa: UP045
    study_name: Optional[str] = None  # noqa: UP045
    storage: Optional[str] = None  # noqa: UP045
    params: dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="ganlab_optuna", node=GanlabOptunaSweeperConf, provider="ganlab"
)


def _format(value: Any) -> str:
    """A value as Hydra override text (lists as [a,b])."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(_format(v) for v in value) + "]"
    return str(value)


def suggest(trial: optuna.Trial, override: Override) -> str:
    """The trial's value for one swept parameter, as override text."""
    name, sweep = override.get_key_element(), override.value()
    if isinstance(sweep, ChoiceSweep):
        options = [_format(v) for v in sweep.list]
        return trial.suggest_categorical(name, options)
    if isinstance(sweep, RangeSweep):
        return str(trial.suggest_int(name, int(sweep.start), int(sweep.stop) - 1, step=int(sweep.step or 1)))
    if isinstance(sweep, IntervalSweep):
        log_scale = "log" in sweep.tags
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):
            return str(trial.suggest_int(name, sweep.start, sweep.end, log=log_scale))
        return repr(trial.suggest_float(name, float(sweep.start), float(sweep.end), log=log_scale))
    raise ValueError(f"hydra.sweeper.params.{name}: use choice(...), range(...) or interval(...)")


class GanlabOptunaSweeper(Sweeper):
    def __init__(self, direction: str, n_trials: int, n_jobs: int, seed: int | None, study_name: str | None,
                 storage: str | None, params: dict[str, str]) -> None:  # fmt: skip
        self.direction, self.n_trials, self.n_jobs = direction, n_trials, max(1, n_jobs)
        self.seed, self.study_name, self.storage = seed, study_name, storage
        self.params = dict(params or {})

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[Any]:
        parser = OverridesParser.create()
        fixed = parser.parse_overrides(arguments)
        if any(o.is_sweep_override() for o in fixed):
            raise ValueError(
                "with hparams_search, put swept values in hydra.sweeper.params, not on the command line"
            )
        space = parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()])
        study = optuna.create_study(
            study_name=self.study_name, storage=self.storage, direction=self.direction,
            sampler=optuna.samplers.TPESampler(seed=self.seed), load_if_exists=True,
        )  # fmt: skip
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        done = 0
        while done < self.n_trials:
            trials = [study.ask() for _ in range(min(self.n_jobs, self.n_trials - done))]
            batch = [[*arguments, *(f"{o.get_key_element()}={suggest(t, o)}" for o in space)] for t in trials]
            returns = self.launcher.launch(batch, initial_job_idx=done)
            for trial, ret in zip(trials, returns, strict=True):
                value = ret._return_value if ret.status == JobStatus.COMPLETED else None
                if isinstance(value, int | float) and math.isfinite(value):
                    study.tell(trial, float(value))
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
            done += len(trials)
        self._write_results(study, sweep_dir)
        return returns

    def _write_results(self, study: optuna.Study, sweep_dir: Path) -> None:
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        results: dict[str, Any] = {"direction": self.direction, "n_trials": len(study.trials)}
        if complete:
            results |= {"best_value": study.best_value, "best_params": study.best_params}
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        log.info(f"Optuna: {results}")
