"""``hydra/launcher=parallel``: ``n_jobs`` sweep jobs at once on this machine, one process each.

hydra-joblib-launcher runs jobs in a loky pool: when one worker dies (killed, out of memory), loky
declares the pool broken and kills every other worker, the sweep ends in a traceback with no
summary, and the healthy jobs lose their work since their last checkpoint. Here every job is a
fresh ``python`` process of its own (Hydra's ``execute_job``, as joblib runs it, given the
cloudpickled job): a process that dies marks only its own job failed (its ``result.json`` says how
it ended), the other jobs run to their end, and the sweep's summary is written as always.
"""

import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)
CHILD = "from hydra_plugins.ganlab_parallel_launcher.parallel_launcher import run_child; run_child()"


@dataclass
class GanlabParallelLauncherConf:
    _target_: str = "hydra_plugins.ganlab_parallel_launcher.parallel_launcher.GanlabParallelLauncher"
    n_jobs: int = 2  # jobs running at once


ConfigStore.instance().store(
    group="hydra/launcher", name="ganlab_parallel", node=GanlabParallelLauncherConf, provider="ganlab"
)


def run_child() -> None:
    """In a job's own process: run the job given in ``argv[1]``, its JobReturn to ``argv[2]``."""
    from hydra_plugins.hydra_joblib_launcher._core import execute_job

    payload, out = Path(sys.argv[1]), Path(sys.argv[2])
    ret = execute_job(*cloudpickle.loads(payload.read_bytes()))
    try:
        data = cloudpickle.dumps(ret)
    except Exception:  # an exception that does not pickle: its text does
        ret._return_value = RuntimeError(str(ret._return_value))
        data = cloudpickle.dumps(ret)
    part = out.with_suffix(".part")
    part.write_bytes(data)
    part.replace(out)


def how_it_ended(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    if code > 128 and code - 128 in signal.Signals._value2member_map_:
        return f"stopped on {signal.Signals(code - 128).name} (exit {code})"
    return f"exited with status {code} without reporting"


class GanlabParallelLauncher(Launcher):
    def __init__(self, n_jobs: int = 2) -> None:
        self.n_jobs = n_jobs
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: list[list[str]], initial_job_idx: int) -> list[JobReturn]:
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        n_jobs = max(1, int(self.n_jobs) if int(self.n_jobs) > 0 else os.cpu_count() or 1)
        log.info(f"Launching {len(job_overrides)} jobs, {n_jobs} at a time, sweep output dir : {sweep_dir}")
        for idx, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + idx} : {' '.join(filter_overrides(overrides))}")
        state = Singleton.get_state()
        results: dict[int, JobReturn] = {}
        pending = list(enumerate(job_overrides))
        running: dict[int, subprocess.Popen] = {}
        with tempfile.TemporaryDirectory(prefix="ganlab-sweep-") as tmp:
            try:
                while pending or running:
                    while pending and len(running) < n_jobs:
                        i, overrides = pending.pop(0)
                        job = (
                            initial_job_idx + i,
                            overrides,
                            self.hydra_context,
                            self.config,
                            self.task_function,
                        )
                        payload = Path(tmp) / f"{i}.in"
                        payload.write_bytes(cloudpickle.dumps((*job, state)))
                        running[i] = subprocess.Popen(
                            [sys.executable, "-c", CHILD, str(payload), f"{tmp}/{i}.out"]
                        )
                    time.sleep(0.2)
                    for i, proc in list(running.items()):
                        if proc.poll() is not None:
                            del running[i]
                            results[i] = self._collect(i, initial_job_idx, job_overrides[i], proc, Path(tmp))
            except KeyboardInterrupt:  # the jobs got the Ctrl-C too: they save and stop; wait for them
                for proc in running.values():
                    proc.wait()
                raise
        return [results[i] for i in range(len(job_overrides))]

    def _collect(
        self, i: int, first: int, overrides: list[str], proc: subprocess.Popen, tmp: Path
    ) -> JobReturn:
        out = tmp / f"{i}.out"
        if out.is_file():
            with open(out, "rb") as f:
                return pickle.load(f)
        idx = first + i
        message = (
            f"sweep job {idx}'s process {how_it_ended(proc.returncode)} before it finished; the other "
            "jobs went on. Run the sweep again to redo it (it resumes from its last.ckpt)"
        )
        log.error(message)
        run_dir = self._job_dir(idx, overrides)
        from ganlab.sweep import write_result

        write_result(run_dir, {"overrides": list(overrides), "status": "failed", "error": message})
        ret = JobReturn(overrides=list(overrides), working_dir=str(run_dir))
        ret.status, ret._return_value = JobStatus.COMPLETED, None  # failed, and recorded as such
        return ret

    def _job_dir(self, idx: int, overrides: list[str]) -> Path:
        assert self.hydra_context is not None and self.config is not None
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
            sweep_config.hydra.job.num = idx
        return Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
