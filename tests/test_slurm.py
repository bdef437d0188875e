"""Sweeps on a real one-node SLURM cluster (tests/slurm/cluster.py): what the README documents for
clusters, run against slurmctld/slurmd rather than submitit_local. ``make test-slurm``."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import fabricate
from conftest import TINY
from fabricate import wandb_records
from slurm.cluster import Cluster, missing_binaries

pytestmark = pytest.mark.slurm

# CPU jobs on a 2-CPU node: no GPUs to ask for, one CPU and a little memory per task
LAUNCHER = [
    "hydra/launcher=slurm", "hydra.launcher.partition=debug",  # trainer=cpu: no GPUs asked for
    "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=10",
]  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"no SLURM here ({', '.join(missing)} missing): run tests/slurm/setup.sh as root")
    if os.geteuid() != 0:
        pytest.skip("the one-node cluster runs slurmd as root (job credentials, cgroup-free launch)")
    with Cluster(tmp_path_factory.mktemp("slurm")) as running:
        yield running
    assert not running.leftover, f"processes of the cluster left after it stopped: {running.leftover}"
    assert not running.processes()


@pytest.fixture(scope="module")
def mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mnist")
    fabricate.mnist(root)
    return root


def sweep(cluster: Cluster, cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m ganlab.train -m hydra/launcher=slurm …``: submitit submits with sbatch and waits."""
    env = {**cluster.env, "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    command = [sys.executable, "-m", "ganlab.train", "-m", *LAUNCHER, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def summary(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "summary.csv") as f:
        return list(csv.DictReader(f))


def tiny(mnist: Path) -> list[str]:
    return [a for a in TINY if a != "~callbacks.progress_bar"] + [f"paths.data_dir={mnist}"]


def test_a_sweep_is_two_slurm_jobs(cluster: Cluster, mnist: Path, tmp_path: Path) -> None:
    """seed=0,1: two SLURM jobs, two run directories, two offline W&B runs in one group, and a
    summary listing both as completed."""
    result = sweep(cluster, tmp_path, *tiny(mnist), "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert result.returncode == 0, result.stderr[-3000:] + cluster.logs()
    jobs = [j.name for j in (tmp_path / "sweep" / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", j.name)]
    assert len(jobs) == 2  # one SLURM job per sweep point (an array job: <id>_0, <id>_1)
    rows = summary(tmp_path / "sweep")
    assert [r["status"] for r in rows] == ["completed", "completed"]
    groups = set()
    for job in ("0", "1"):
        run_dir = tmp_path / "sweep" / job
        assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["iteration"] == 4
        (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
        groups |= {r.run.run_group for r in wandb_records(run_file) if r.WhichOneof("record_type") == "run"}
    assert len(groups) == 1 and next(iter(groups)).endswith("-sweep")  # named after the sweep dir


def test_a_failing_job_does_not_stop_the_other(cluster: Cluster, mnist: Path, tmp_path: Path) -> None:
    result = sweep(cluster, tmp_path, *tiny(mnist), "model.lr=1e-3,-1", f"hydra.sweep.dir={tmp_path / 's'}")
    assert result.returncode == 1  # the sweep says a job failed, after its summary
    assert [r["status"] for r in summary(tmp_path / "s")] == ["completed", "failed"]
    assert "model.lr=-1 must be > 0" in (tmp_path / "s" / "1" / "error.txt").read_text()
    assert (tmp_path / "s" / "0" / "checkpoints" / "last.ckpt").is_file()


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# the example plugin (README "Your own GAN"): the lab networks in the relativistic GAN, named by the
# user's own config folder and loaded through plugins=, in every job and in the requeued one
PLUGIN = ["--config-dir", str(EXAMPLES / "conf"), "experiment=lab"]  # Hydra: the flag before any override


@pytest.mark.parametrize("model", ["dcgan", "plugin"])
def test_a_signalled_job_is_requeued_and_resumes_exactly(
    cluster: Cluster, mnist: Path, tmp_path: Path, model: str
) -> None:
    """SIGUSR2 (what SLURM sends before a time limit, at submitit's --signal): the iteration
    finishes and is saved, submitit requeues the job, the requeued job resumes from that last.ckpt
    and ends with the weights of an uninterrupted run; also for a plugin's GAN."""
    budget = [*tiny(mnist), "trainer.max_epochs=100", "trainer.limit_train_batches=null", "max_iters=40"]
    budget += ["callbacks.checkpoint.every_n_iters=1000", "callbacks.samples.every_n_iters=5"]
    budget = [*(PLUGIN if model == "plugin" else []), *budget, "logger=csv"]
    env = {**cluster.env, "WANDB_MODE": "offline", "PYTHONPATH": str(EXAMPLES)}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "ganlab.train", "-m", *budget, *LAUNCHER, "seed=3",
         f"hydra.sweep.dir={tmp_path / 's'}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    cluster.signal_when_training(launcher, tmp_path / "s" / "0" / "samples")
    output = cluster.finish(launcher, timeout=600)
    assert launcher.returncode == 0, output[-3000:] + cluster.logs()
    (log,) = (tmp_path / "s" / ".submitit").glob("*/*_0_log.out")
    text = log.read_text() + "".join(p.read_text() for p in log.parent.glob("*_0_log.err"))
    assert "Requeued job" in text and "resuming from this run directory's" in text, text[-3000:]
    resumed = torch.load(tmp_path / "s" / "0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["iteration"] == 40
    assert resumed["ganlab_plugins"] == (["ganlab_examples"] if model == "plugin" else [])
    assert json.loads((tmp_path / "s" / "0" / "result.json").read_text())["status"] == "completed"

    reference = tmp_path / "ref"  # the same run, uninterrupted, on this machine
    local = subprocess.run(
        [sys.executable, "-m", "ganlab.train", *budget, "seed=3", f"hydra.run.dir={reference}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr[-2000:]
    expected = torch.load(reference / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for name, tensor in resumed["state_dict"].items():
        assert torch.equal(tensor, expected[name]), name


def test_ddp_as_one_slurm_job_with_two_tasks(cluster: Cluster, mnist: Path, tmp_path: Path) -> None:
    """trainer=ddp_cpu (2 ranks, gloo) as one job of 2 SLURM tasks: the ranks are SLURM's, not
    Lightning's launcher (which cannot run under -m)."""
    result = sweep(
        cluster, tmp_path, *tiny(mnist), "trainer=ddp_cpu", "hydra.launcher.tasks_per_node=2",
        "seed=0", f"hydra.sweep.dir={tmp_path / 's'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:] + cluster.logs()
    ckpt = torch.load(tmp_path / "s" / "0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["iteration"] == 4  # limit_train_batches=4 per rank
    assert [r["status"] for r in summary(tmp_path / "s")] == ["completed"]
