"""Past one machine: a real two-node SLURM cluster (tests/slurm/cluster.py, ``nodes=2``). Each node
is a host of its own (network, UTS and mount namespaces: its own address, hostname and hosts file);
slurmctld and the client commands run on a third, ``ctl``, as on a login node. What the README
documents under "Clusters", run across two hosts: DDP with a rank on each, a requeue whose ranks
live on different hosts, a sweep spread over both, and a node lost mid-job. ``make test-slurm``."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

import fabricate
from conftest import TINY, fid_weights
from fabricate import wandb_records
from slurm.cluster import Cluster, missing_binaries, namespaces_unavailable

pytestmark = pytest.mark.slurm

LAUNCHER = [
    "hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10",
]  # fmt: skip
TWO_NODES = ["trainer=ddp_cpu", "hydra.launcher.nodes=2", "hydra.launcher.tasks_per_node=1"]
ONE_NODE = ["trainer=ddp_cpu", "hydra.launcher.nodes=1", "hydra.launcher.tasks_per_node=2"]
# long enough to be signalled or lose a node mid-run: epochs of the whole fabricated set
LONG = ["trainer.max_epochs=100", "trainer.limit_train_batches=null", "logger=csv",
        "callbacks.checkpoint.every_n_iters=1000", "callbacks.samples.every_n_iters=5"]  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"no SLURM here ({', '.join(missing)} missing): run tests/slurm/setup.sh as root")
    why = namespaces_unavailable()
    if why is not None:
        pytest.skip(f"the two-node cluster needs network namespaces: {why}")
    with Cluster(tmp_path_factory.mktemp("slurm2"), nodes=2) as running:
        yield running
    assert not running.leftover, f"processes of the cluster left after it stopped: {running.leftover}"
    assert not running.processes() and not running.remaining_namespaces()


@pytest.fixture(scope="module")
def mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mnist")
    fabricate.mnist(root)
    return root


def tiny(mnist: Path) -> list[str]:
    return [a for a in TINY if a != "~callbacks.progress_bar"] + [f"paths.data_dir={mnist}"]


def train_command(cluster: Cluster, *args: str) -> list[str]:
    """``python -m ganlab.train -m hydra/launcher=slurm …`` on the login host."""
    return cluster.command(sys.executable, "-m", "ganlab.train", "-m", *LAUNCHER, *args)


def env(cluster: Cluster) -> dict[str, str]:
    return {k: v for k, v in {**cluster.env, "WANDB_MODE": "offline"}.items() if k != "HYDRA_FULL_ERROR"}


def sweep(cluster: Cluster, cwd: Path, *args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        train_command(cluster, *args), cwd=cwd, env=env(cluster), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def task_logs(sweep_dir: Path) -> dict[str, str]:
    """submitit's log of every task (``<job>_<task>_log.out`` and ``.err`` together), by file stem."""
    logs: dict[str, str] = {}
    for path in sorted((sweep_dir / ".submitit").rglob("*_log.*")):
        stem = path.name.rsplit("_log.", 1)[0]
        logs[stem] = logs.get(stem, "") + path.read_text(errors="replace")
    return logs


def hosts_of(logs: dict[str, str]) -> dict[str, str]:
    """Task → the host it ran on, as submitit's JobEnvironment reports it (its last start)."""
    found = {}
    for stem, text in logs.items():
        seen = re.findall(r"JobEnvironment\(job_id=\S+, hostname=(\w+)", text)
        if seen:
            found[stem] = seen[-1]
    return found


def summary(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "summary.csv") as f:
        return list(csv.DictReader(f))


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def nothing_half_written(run_dir: Path) -> None:
    """No temporary file left, every checkpoint loads as tensors, every grid decodes."""
    leftovers = [p.name for p in run_dir.rglob("*") if ".tmp" in p.name or p.name.startswith(".tmp")]
    assert not leftovers, leftovers
    for ckpt in (run_dir / "checkpoints").glob("*.ckpt"):
        torch.load(ckpt, weights_only=True)
    for grid in (run_dir / "samples").glob("*.png"):
        Image.open(grid).load()


def test_ddp_over_two_nodes_equals_two_ranks_on_one(cluster: Cluster, mnist: Path, tmp_path: Path) -> None:
    """One job, a rank on each host (gloo over the namespaces' addresses, MASTER_ADDR from the node
    list): the same weights and iterations as the same job as two ranks on one node, and one
    checkpoint, one set of grids and one W&B run, all written by global rank 0."""
    two = sweep(cluster, tmp_path, *tiny(mnist), *TWO_NODES, "seed=0", f"hydra.sweep.dir={tmp_path / 'two'}")
    assert two.returncode == 0, two.stderr[-3000:] + cluster.logs()
    one = sweep(
        cluster,
        tmp_path,
        *tiny(mnist),
        *ONE_NODE,
        "seed=0",
        "logger=csv",
        f"hydra.sweep.dir={tmp_path / 'one'}",
    )
    assert one.returncode == 0, one.stderr[-3000:] + cluster.logs()

    logs = task_logs(tmp_path / "two")
    assert sorted(hosts_of(logs).values()) == ["n1", "n2"], logs  # one rank on each host
    assert len(set(hosts_of(task_logs(tmp_path / "one")).values())) == 1
    (rank0,) = [text for stem, text in logs.items() if stem.endswith("_0")]
    assert "SLURM job" in rank0 and "trainer.num_nodes=2 trainer.devices=1" in rank0

    run = tmp_path / "two" / "0"
    a, b = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True), weights(tmp_path / "one" / "0")
    assert a["iteration"] == 4  # limit_train_batches=4, each rank its shard
    assert a["ganlab_config"]["trainer"]["num_nodes"] == 2
    for name, tensor in a["state_dict"].items():
        assert torch.allclose(tensor, b[name], rtol=1e-5, atol=1e-6), name
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.ckpt"]
    assert any((run / "samples").glob("*.png"))
    (wandb_run,) = run.glob("wandb/offline-run-*")  # one W&B run, not one per node
    runs = [
        r for r in wandb_records(next(wandb_run.glob("run-*.wandb"))) if r.WhichOneof("record_type") == "run"
    ]
    assert runs and runs[0].run.run_group.endswith("-two")
    (rank1,) = [text for stem, text in logs.items() if stem.endswith("_1")]
    assert "W&B" not in rank1 and "training stopped" not in rank1  # rank 1 says nothing of its own
    assert [r["status"] for r in summary(tmp_path / "two")] == ["completed"]
    nothing_half_written(run)


def test_a_signalled_two_node_job_is_requeued_and_resumes_exactly(
    cluster: Cluster, mnist: Path, tmp_path: Path
) -> None:
    """SIGUSR2 to both ranks (SLURM's warning before a time limit): both stop after the same
    iteration, rank 0 saves it, submitit requeues the job, which resumes on two nodes and ends with
    the weights of the uninterrupted two-node run."""
    budget = [*tiny(mnist), *LONG, "max_iters=40", *TWO_NODES, "seed=3"]
    launcher = subprocess.Popen(
        train_command(cluster, *budget, f"hydra.sweep.dir={tmp_path / 's'}"),
        cwd=tmp_path, env=env(cluster), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    cluster.signal_when_training(launcher, tmp_path / "s" / "0" / "samples")
    output = cluster.finish(launcher)
    assert launcher.returncode == 0, output[-3000:] + cluster.logs()
    logs = task_logs(tmp_path / "s")
    (rank0,) = [text for stem, text in logs.items() if stem.endswith("_0")]
    assert "Requeued job" in rank0 and "resuming from this run directory's" in rank0, rank0[-3000:]
    assert sorted(hosts_of(logs).values()) == ["n1", "n2"]  # the requeued job: two hosts again
    resumed = torch.load(tmp_path / "s" / "0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["iteration"] == 40

    reference = sweep(cluster, tmp_path, *budget, f"hydra.sweep.dir={tmp_path / 'ref'}")
    assert reference.returncode == 0, reference.stderr[-3000:]
    expected = weights(tmp_path / "ref" / "0")
    for name, tensor in resumed["state_dict"].items():
        assert torch.allclose(tensor, expected[name], rtol=1e-5, atol=1e-6), name
    nothing_half_written(tmp_path / "s" / "0")


def test_a_sweep_of_four_jobs_spreads_over_both_nodes(
    cluster: Cluster, mnist: Path, tmp_path: Path, weights_file: Path
) -> None:
    """seed=0..3, one task each: jobs on both hosts, four run directories, one W&B group, a whole
    summary; the FID real statistics computed by one job and read from the shared cache by the
    other three (the cache folder is shared, as on a cluster's shared file system)."""
    cache = tmp_path / "cache"
    fid = [*fid_weights(weights_file), "metrics.fid.feature=64", "metrics.num_fake=16", "metrics.num_real=16",
           "metrics.kid.subset_size=8", f"paths.cache_dir={cache}", "metrics.every_n_epochs=1"]  # fmt: skip
    args = [a for a in tiny(mnist) if a != "metrics=none"]
    result = sweep(cluster, tmp_path, *args, *fid, "seed=0,1,2,3", f"hydra.sweep.dir={tmp_path / 's'}")
    assert result.returncode == 0, result.stderr[-3000:] + cluster.logs()
    rows = summary(tmp_path / "s")
    assert [r["status"] for r in rows] == ["completed"] * 4 and all(r["final_fid"] for r in rows)
    assert set(hosts_of(task_logs(tmp_path / "s")).values()) == {"n1", "n2"}
    groups = set()
    for job in range(4):
        (run_file,) = (tmp_path / "s" / str(job)).glob("wandb/offline-run-*/run-*.wandb")
        groups |= {r.run.run_group for r in wandb_records(run_file) if r.WhichOneof("record_type") == "run"}
    assert len(groups) == 1
    assert len(list((cache / "fid-real").glob("*.pt"))) == 1
    said = [(tmp_path / "s" / str(job) / "train.log").read_text() for job in range(4)]
    assert sum("real statistics from the cache" in text for text in said) == 3  # computed once


def test_a_lost_node_is_named_and_the_requeued_job_finishes(
    cluster: Cluster, mnist: Path, tmp_path: Path
) -> None:
    """n2 is lost mid-job (every process on it killed by PID, slurmd first among them): rank 0 on
    n1 fails its next collective and says which node it lost, leaving nothing half written; SLURM
    cancels the job for the node failure and requeues it; once n2 is back the job resumes from
    rank 0's last checkpoint and finishes its budget."""
    budget = [*tiny(mnist), *LONG, "callbacks.checkpoint.every_n_iters=5", "max_iters=40", *TWO_NODES]
    launcher = subprocess.Popen(
        train_command(cluster, *budget, "seed=5", f"hydra.sweep.dir={tmp_path / 's'}"),
        cwd=tmp_path, env=env(cluster), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    run = tmp_path / "s" / "0"
    deadline = time.monotonic() + 300
    while not (run / "checkpoints" / "last.ckpt").is_file():
        assert launcher.poll() is None and time.monotonic() < deadline, cluster.logs()
        time.sleep(0.2)
    assert cluster.kill_node("n2")
    while "lost the DDP rank" not in (run / "train.log").read_text():  # rank 0 noticed
        assert launcher.poll() is None and time.monotonic() < deadline, cluster.logs()
        time.sleep(0.2)
    said = (run / "error.txt").read_text()
    assert re.search(r"lost the DDP rank on n2 \(\S+\) mid-training", said), said
    assert f"saved up to {run / 'checkpoints' / 'last.ckpt'}" in said
    nothing_half_written(run)
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["iteration"]
    while "n2" not in cluster.run("sinfo", "-h", "-t", "down", "-o", "%N").stdout:  # SLURM saw it go
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.5)
    cluster.start_node("n2")  # the node comes back (ReturnToService=2): the requeued job runs
    output = cluster.finish(launcher)
    assert launcher.returncode == 0, output[-3000:] + cluster.logs()
    (job,) = [p.name for p in (tmp_path / "s" / ".submitit").iterdir() if p.name.isdigit()]
    assert "Restarts=1" in cluster.run("scontrol", "show", "job", job).stdout  # SLURM requeued it
    final = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["iteration"] == 40 > saved
    assert [r["status"] for r in summary(tmp_path / "s")] == ["completed"]
    assert "resuming from this run directory's" in (run / "train.log").read_text()
    nothing_half_written(run)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fabricate.inception_weights(tmp_path_factory.mktemp("inception") / "weights.pth")
