"""Sweeps: multirun with W&B groups, a failing job, submitit_local, DDP on 2 CPU processes, search."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import TINY, fid_weights, make_cfg, run_module
from fabricate import inception_weights, wandb_records
from ganlab.errors import ConfigError
from ganlab.sweep import assign_gpu, check_multirun_ddp
from ganlab.train import CONFIG_DIR, train

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def sweep_args(mnist_root: Path, sweep_dir: Path) -> list[str]:
    return [*TINY, f"paths.data_dir={mnist_root}", f"hydra.sweep.dir={sweep_dir}"]


def run_info(run_dir: Path) -> dict:
    """group, name and exit code of the W&B offline run in a job directory."""
    (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    info: dict = {}
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            info |= {"group": record.run.run_group, "name": record.run.display_name, "id": record.run.run_id}
        elif kind == "exit":
            info["exit_code"] = record.exit.exit_code
    return info


def read_summary(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "summary.csv") as f:
        return list(csv.DictReader(f))


def test_multirun_groups_wandb_runs_and_records_a_failed_job(tmp_path: Path, mnist_root: Path) -> None:
    sweep = tmp_path / "multirun" / "2026-01-01" / "12-00-00"
    result = run_module(
        "ganlab.train", "-m", *sweep_args(mnist_root, sweep), "model.lr=1e-4,2e-4", "data.download=false",
        f"paths.data_dir={mnist_root},{tmp_path / 'no_data'}", cwd=tmp_path,
    )  # fmt: skip
    # every job ran, and the sweep exits 1 after its summary because two failed
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith("error: 2 of 4 sweep job(s) did not complete")
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    runs = {p.name: run_info(p) for p in jobs}
    assert len({r["id"] for r in runs.values()}) == 4  # a W&B run per job ...
    assert {r["group"] for r in runs.values()} == {"multirun-2026-01-01-12-00-00"}  # ... in one group
    assert sum("model.lr=0.0001" in r["name"] for r in runs.values()) == 2
    rows = read_summary(sweep)
    for row in rows:  # the jobs without data failed, the others completed
        job, bad = str(row["job"]), "no_data" in row["overrides"]
        assert row["status"] == ("failed" if bad else "completed")
        assert (sweep / job / "error.txt").is_file() == bad
        assert runs[job]["exit_code"] == (1 if bad else 0)  # the failed W&B run is marked failed
        if bad:
            assert "MNIST not found" in (sweep / job / "error.txt").read_text()
    assert sum(r["status"] == "failed" for r in rows) == 2
    assert "2 not completed" in (sweep / "summary.txt").read_text()


@pytest.mark.slow  # CLI runs (~15-25 s); in CI's slow step
def test_submitit_local_sweep(tmp_path: Path, mnist_root: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run_module(
        "ganlab.train", "-m", *sweep_args(mnist_root, sweep), "seed=0,1", "logger=none",
        "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["status"] for r in read_summary(sweep)] == ["completed", "completed"]
    for job in ("0", "1"):
        assert torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=True)["iteration"] == 4


@pytest.mark.parametrize("model", ["dcgan", pytest.param("cyclegan", marks=pytest.mark.slow)])
def test_ddp_on_two_cpu_processes(tmp_path: Path, mnist_root: Path, model: str) -> None:
    if model == "dcgan":
        args = [*TINY, f"paths.data_dir={mnist_root}"]
    else:
        import fabricate

        root = fabricate.unpaired_folder(tmp_path / "unpaired")
        (root / "trainA" / "zz_corrupt.jpg").unlink()
        from test_cyclegan import TINY_CYCLE

        args = [*TINY_CYCLE, f"data.root={root}", "trainer.max_epochs=1", "logger=wandb"]
    run = tmp_path / "run"
    result = run_module(
        "ganlab.train", *args, "trainer=ddp_cpu", f"hydra.run.dir={run}", cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    # DCGAN: limit_train_batches=4 per rank; CycleGAN: 6 items split over 2 ranks at batch 1 → 3
    assert ckpt["iteration"] == (4 if model == "dcgan" else 3)
    assert len(list(run.glob("wandb/offline-run-*"))) == 1  # rank 0 logs, once


def test_multirun_with_lightning_ddp_is_refused_in_one_line(tmp_path: Path) -> None:
    cfg = OmegaConf.create({"trainer": {"strategy": "ddp_find_unused_parameters_true", "devices": 2}})
    with pytest.raises(ConfigError, match="launcher"):
        check_multirun_ddp(cfg, {"multirun": True})
    check_multirun_ddp(cfg, {"multirun": False})  # a single DDP run is fine
    result = run_module(
        "ganlab.train",
        "-m",
        "trainer=ddp_cpu",
        "seed=0,1",
        "metrics=none",
        f"hydra.sweep.dir={tmp_path}",
        cwd=tmp_path,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors and "hydra #2070" in errors[0]


def test_sweep_jobs_get_their_own_gpu() -> None:
    cfg = OmegaConf.create({"sweep_gpus": 3, "trainer": {"accelerator": "auto", "devices": 1}})
    for num, gpu in ((0, 0), (1, 1), (4, 1)):
        assign_gpu(cfg, {"multirun": True, "num": num})
        assert cfg.trainer.devices == [gpu] and cfg.trainer.accelerator == "gpu"


def test_a_repeated_job_resumes_its_run_directory(tmp_path: Path, mnist_root: Path) -> None:
    """What a requeued SLURM job does: same run dir → continue from its last.ckpt."""
    args = [*TINY, f"paths.data_dir={mnist_root}", "logger=none", "trainer.max_epochs=1"]
    train(make_cfg(tmp_path, args))
    train(make_cfg(tmp_path, [*args[:-1], "trainer.max_epochs=2"]))
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["iteration"] == 8


@pytest.mark.slow  # two trials of training, 9 s: the slow step
def test_two_trial_optuna_search(tmp_path: Path, mnist_root: Path) -> None:
    weights = inception_weights(tmp_path / "w.pth")
    sweep = tmp_path / "search"
    result = run_module(
        "ganlab.train", "hparams_search=dcgan_fid", "hydra.sweeper.n_trials=2",
        *[a for a in sweep_args(mnist_root, sweep) if a != "metrics=none"], "logger=csv",
        *fid_weights(weights), "metrics.fid.feature=64", "metrics.num_fake=16",
        "metrics.num_real=16", "metrics.kid.subset_size=8", f"paths.cache_dir={tmp_path / 'cache'}",
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    rows = read_summary(sweep)
    assert results.n_trials == 2 and len(rows) == 2
    assert results.best_value == pytest.approx(min(float(r["best_fid"]) for r in rows))
    assert set(results.best_params) == {
        "model.lr",
        "model.lr_d",
        "model.optimizer.betas",
        "model.n_critic",
        "model.loss",
    }


@pytest.mark.parametrize(("trainer", "gpus"), [("cpu", 0), ("ddp_cpu", 0), ("default", 1), ("ddp", 2)])
def test_slurm_jobs_ask_for_gpus_only_for_a_gpu_trainer(trainer: str, gpus: int) -> None:
    """hydra/launcher=slurm: a CPU trainer asks SLURM for no GPUs (a cluster without GPUs would
    refuse the job); otherwise one per device."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", ["hydra/launcher=slurm", f"trainer={trainer}"], return_hydra_config=True)
    assert cfg.hydra.launcher.gpus_per_node == gpus


# --- several processes: a lost rank, SLURM's layout ---


def _lose_a_rank(rank: int, port: int, out: str) -> None:
    """Rank 1 dies as a lost node's process would (no goodbye); rank 0's next collective fails."""
    import datetime
    import os

    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
        timeout=datetime.timedelta(seconds=30),
    )  # fmt: skip
    dist.barrier()
    if rank == 1:
        os._exit(0)
    try:
        for _ in range(50):
            dist.all_reduce(torch.ones(1000))
    except Exception as e:  # what the backend raises, as Lightning would see it
        from ganlab.sweep import lost_peer

        Path(out).write_text(str(lost_peer(e, Path(out).with_name("last.ckpt"))))


def test_a_lost_rank_is_one_line_naming_its_host(tmp_path: Path) -> None:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "said.txt"
    (tmp_path / "last.ckpt").touch()  # what the run saved before
    ctx = mp.get_context("spawn")
    ranks = [ctx.Process(target=_lose_a_rank, args=(rank, port, str(out))) for rank in (0, 1)]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(timeout=60)
    said = out.read_text()
    host = socket.gethostbyaddr("127.0.0.1")[0]
    assert said.startswith(f"lost the DDP rank on {host} (127.0.0.1) mid-training"), said
    assert f"saved up to {tmp_path / 'last.ckpt'}" in said and "resumes from it" in said


@pytest.mark.parametrize(
    ("env", "layout"),
    [
        ({"SLURM_JOB_ID": "7", "SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_NNODES": "2",
          "SLURM_NTASKS_PER_NODE": "1"}, (2, 1)),
        ({"SLURM_JOB_ID": "7", "SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_STEP_NUM_NODES": "2",
          "SLURM_STEP_TASKS_PER_NODE": "4(x2)"}, (2, 4)),
        ({"SLURM_JOB_ID": "7", "SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_NNODES": "2"}, (2, 2)),
        ({"SLURM_JOB_ID": "7", "SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_NNODES": "1"}, None),
        ({}, None),
    ],
)  # fmt: skip
def test_a_slurm_job_of_several_tasks_sets_the_trainers_layout(monkeypatch, env: dict, layout) -> None:
    from omegaconf import DictConfig

    from ganlab.sweep import adopt_slurm_layout, slurm_layout

    for key in ("SLURM_JOB_ID", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_NNODES", "SLURM_NTASKS_PER_NODE",
                "SLURM_STEP_NUM_NODES", "SLURM_STEP_TASKS_PER_NODE"):  # fmt: skip
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert slurm_layout() == layout
    cfg = OmegaConf.create({"trainer": {"devices": 2}})
    OmegaConf.set_struct(cfg, True)
    assert isinstance(cfg, DictConfig)
    adopt_slurm_layout(cfg)
    expected = {"devices": 2} if layout is None else {"devices": layout[1], "num_nodes": layout[0]}
    assert OmegaConf.to_container(cfg.trainer) == expected
