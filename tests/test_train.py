"""Real training runs: Hydra config → Lightning Trainer → checkpoints, samples, W&B offline."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from conftest import TINY, fid_weights, make_cfg, run_module
from fabricate import wandb_keys, wandb_records
from ganlab.errors import ConfigError, NonFiniteLossError
from ganlab.train import train


def data_args(root: Path) -> list[str]:
    return [f"paths.data_dir={root}"]


def wandb_run_file(run_dir: Path) -> Path:
    """The run's offline file, complete: it ends with the run's exit record."""
    (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    kinds = [r.WhichOneof("record_type") for r in wandb_records(run_file)]
    assert "exit" in kinds, f"{run_file} is not complete: {kinds[-5:]}"
    return run_file


def test_dcgan_mnist_run_writes_checkpoint_samples_and_wandb(tmp_path: Path, mnist_root: Path) -> None:
    cfg = make_cfg(tmp_path, [*TINY, *data_args(mnist_root), "logger=wandb"])
    train(cfg)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)  # plain containers
    assert ckpt["iteration"] == 4
    assert ckpt["ganlab_config"]["model"]["loss"] == "non_saturating"
    assert sorted(p.name for p in (tmp_path / "samples").glob("*.png")) == [
        "fixed_noise_0000002.png",
        "fixed_noise_0000004.png",
    ]
    run_file = wandb_run_file(tmp_path)
    assert ckpt["wandb_run_id"] in run_file.name
    history = wandb_keys(run_file, "history")
    for key in (
        "train/loss_d",
        "train/loss_g",
        "train/d_real",
        "train/d_fake",
        "train/lr_g",
        "train/lr_d",
        "val/d_real",
        "samples/fixed_noise/_type",
    ):
        assert key in history, key
    config = wandb_keys(run_file, "config")
    assert {"model", "data", "trainer", "seed"} <= config
    summaries = {  # lower-is-better metrics keep their minimum in the W&B summary
        r.metric.glob_name or r.metric.name: r.metric.summary
        for r in wandb_records(run_file)
        if r.WhichOneof("record_type") == "metric"
    }
    assert summaries["val/fid*"].min and not summaries["val/fid*"].max and summaries["val/psnr"].max
    assert not [r for r in wandb_records(run_file) if r.WhichOneof("record_type") == "artifact"]


@pytest.mark.slow  # two runs with FID
def test_log_model_uploads_last_and_best_as_artifacts(
    tmp_path: Path, mnist_root: Path, weights: Path
) -> None:
    """``logger.wandb.log_model=true``: last.ckpt and best.ckpt, each a version of the run's model
    artifact with its alias, when training ends; ``all``: at every save."""
    common = [*TINY, *data_args(mnist_root), "logger=wandb", "metrics=fid", *fid_weights(weights)]
    common += ["metrics.num_fake=16", "metrics.fid.feature=64", "metrics.kid.subset_size=8"]
    common += [f"paths.cache_dir={tmp_path / 'cache'}"]
    for mode, expected in (("true", [["best"], ["last"]]), ("all", [["best"], ["last"], ["last"], ["last"]])):
        run_dir = tmp_path / mode
        train(make_cfg(run_dir, [*common, f"logger.wandb.log_model={mode}"]))
        records = [
            r for r in wandb_records(wandb_run_file(run_dir)) if r.WhichOneof("record_type") == "artifact"
        ]
        assert sorted(sorted(set(r.artifact.aliases) - {"latest"}) for r in records) == expected
        files = {tuple(e.path for e in r.artifact.manifest.contents) for r in records}
        assert files == {("last.ckpt",), ("best.ckpt",)}
        assert all(r.artifact.type == "model" and r.artifact.name.startswith("model-") for r in records)


def read_csv_losses(run_dir: Path) -> dict[int, tuple[float, float]]:
    """step → (loss_d, loss_g) from Lightning's CSV logger."""
    (path,) = run_dir.glob("csv/version_*/metrics.csv")
    out = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            if row.get("train/loss_d"):
                out[int(row["step"])] = (
                    float(row["train/loss_d"]),
                    float(row["train/loss_g"] or "nan"),
                )
    return out


def test_dcgan_cifar10_run(tmp_path: Path, cifar_root: Path) -> None:
    cfg = make_cfg(
        tmp_path,
        [
            *TINY,
            *data_args(cifar_root),
            "data=cifar10",
            "data.verify_checksums=false",
            "logger=csv",
        ],
    )
    train(cfg)
    losses = read_csv_losses(tmp_path)
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(v)).all() for v in losses.values())
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("loss", ["minimax", "least_squares", "hinge"])
def test_other_objectives_and_stabilisers_train(tmp_path: Path, mnist_root: Path, loss: str) -> None:
    cfg = make_cfg(
        tmp_path,
        [
            *TINY,
            *data_args(mnist_root),
            "logger=csv",
            f"model.loss={loss}",
            "model.n_critic=2",
            "model.instance_noise=0.1",
            "model.instance_noise_iters=3",
            "model.label_smoothing=0.1",
        ],
    )
    train(cfg)
    # n_critic=2: four D steps, two G steps (Adam's step counts), in four iterations
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    opt_g, opt_d = ckpt["optimizer_states"]
    assert ckpt["iteration"] == 4
    assert int(opt_g["state"][0]["step"]) == 2 and int(opt_d["state"][0]["step"]) == 4
    assert all(torch.isfinite(torch.tensor(v[0])) for v in read_csv_losses(tmp_path).values())


def test_resume_continues_exactly(tmp_path: Path, mnist_root: Path) -> None:
    """Stop mid-epoch, resume: the next losses equal those of an uninterrupted run."""
    common = [*TINY, *data_args(mnist_root), "logger=csv", "trainer.max_epochs=3"]
    train(make_cfg(tmp_path / "full", [*common, "max_iters=7"]))
    train(make_cfg(tmp_path / "first", [*common, "max_iters=3"]))  # stops inside epoch 0
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["iteration"] == 3
    train(make_cfg(tmp_path / "resumed", [*common, "max_iters=7", f"ckpt_path={ckpt}"]))

    full, resumed = read_csv_losses(tmp_path / "full"), read_csv_losses(tmp_path / "resumed")
    assert len(full) == 7 and len(resumed) == 4  # iterations 4–7, across the epoch boundary
    for step, losses in resumed.items():
        assert losses == pytest.approx(full[step], rel=1e-5, abs=1e-6), step
    assert torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["iteration"] == 7


def test_a_finished_budget_trains_nothing_on_resume(
    tmp_path: Path, mnist_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Resuming a run that reached max_iters (by ckpt_path or by its own run directory) says so and
    trains nothing: it once ran one iteration more each time."""
    common = [*TINY, *data_args(mnist_root), "logger=none", "trainer.max_epochs=3", "max_iters=3"]
    train(make_cfg(tmp_path / "a", common))
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    with caplog.at_level("INFO"):
        train(make_cfg(tmp_path / "a", common))  # auto-resume of the same run directory
        train(make_cfg(tmp_path / "b", [*common, f"ckpt_path={last}"]))
    assert last.read_bytes() == before and torch.load(last, weights_only=True)["iteration"] == 3
    assert not (tmp_path / "b" / "checkpoints").exists()
    assert caplog.text.count("max_iters=3 is reached: nothing to train") == 2


def test_resume_applies_a_changed_learning_rate(
    tmp_path: Path, mnist_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``ckpt_path=… model.lr=1e-5``: the resumed run trains at 1e-5 (the NaN advice "lower model.lr"
    works on a resumed run), says so in one line, and keeps Adam's moments."""
    common = [*TINY, *data_args(mnist_root), "logger=none", "trainer.max_epochs=3"]
    train(make_cfg(tmp_path / "first", [*common, "max_iters=3"]))
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    with caplog.at_level(logging.INFO):
        train(make_cfg(tmp_path / "b", [*common, "max_iters=5", f"ckpt_path={ckpt}", "model.lr=1e-5"]))
    (line,) = [r.getMessage() for r in caplog.records if "changed optimizer settings" in r.getMessage()]
    assert "G lr 0.001 → 1e-05" in line and "D lr 0.001 → 1e-05" in line
    resumed = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)
    assert [s["param_groups"][0]["lr"] for s in resumed["optimizer_states"]] == [1e-5, 1e-5]
    assert int(resumed["optimizer_states"][1]["state"][0]["step"]) == 5  # moments continued, not reset
    caplog.clear()
    with caplog.at_level(logging.INFO):  # unchanged settings: nothing to say
        train(make_cfg(tmp_path / "c", [*common, "max_iters=4", f"ckpt_path={ckpt}"]))
    assert not [r for r in caplog.records if "changed optimizer settings" in r.getMessage()]


class PoisonD(L.Callback):
    """Makes D's weights NaN before iteration 3, as a diverging run would."""

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if module.iteration == 2:
            with torch.no_grad():
                next(module.discriminator.parameters()).fill_(float("nan"))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path, mnist_root: Path) -> None:
    cfg = make_cfg(
        tmp_path,
        [
            *TINY,
            *data_args(mnist_root),
            "logger=csv",
            "+callbacks.poison._target_=test_train.PoisonD",
        ],
    )
    with pytest.raises(NonFiniteLossError) as err:
        train(cfg)
    message = str(err.value)
    assert "\n" not in message and "NaN" in message and "last.ckpt" in message
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["iteration"] == 2
    assert all(torch.isfinite(t).all() for t in ckpt["state_dict"].values() if t.is_floating_point())


# --- the command line, as users run it ---


def test_cli_missing_data_is_one_line(tmp_path: Path) -> None:
    result = run_module(
        "ganlab.train",
        f"paths.data_dir={tmp_path / 'nowhere'}",
        "data.mirrors=[http://127.0.0.1:9/]",
        "metrics=none",
        f"hydra.run.dir={tmp_path / 'run'}",
        "logger=wandb",  # offline (run_module): a preflight failure leaves no W&B run
        cwd=tmp_path,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: MNIST not found in") and "paths.data_dir" in last
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "run").exists()  # nothing ran: no run folder, no offline W&B run in it
    assert "wandb sync" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        pytest.param("model.no_such_key=1", "no_such_key", marks=pytest.mark.slow),
        ("model=no_such_model", "no_such_model"),
        pytest.param("+trainer.max_steps=10", "max_iters", marks=pytest.mark.slow),
        pytest.param("model.loss=wgan", "non_saturating", marks=pytest.mark.slow),
        ("+model.foo=1", "foo"),
        ("model.lrr=1", "model has no key lrr; did you mean model.lr?"),  # the closest key, not Hydra's "+"
        ("lr=1", "the config has no key lr; did you mean model.lr?"),  # a key that lives in a group
        pytest.param("model.ndf=3", "did you mean model.discriminator.ndf?", marks=pytest.mark.slow),
        pytest.param("trainer.max_epoch=1", "did you mean trainer.max_epochs?", marks=pytest.mark.slow),
    ],
)
def test_cli_config_errors_are_one_line(tmp_path: Path, override: str, expected: str) -> None:
    result = run_module("ganlab.train", override, "logger=none", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0]
    assert "Traceback" not in result.stderr


def test_a_config_error_never_touches_a_folder_ganlab_did_not_create(
    tmp_path: Path, mnist_root: Path
) -> None:
    """``hydra.run.dir=<your folder>`` with a typo: one line, exit 1, the folder and its files as
    they were (it was removed, train.log appended to and result.json replaced); a run directory
    ganlab would have created is never made."""
    mine = tmp_path / "u"
    mine.mkdir()
    (mine / "train.log").write_text("notes\n")
    (mine / "result.json").write_text("{}")
    result = run_module("ganlab.train", "model.lr=abc", f"hydra.run.dir={mine}", cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1 and errors == ["error: model.lr=abc must be a number (a learning rate)"]
    assert sorted(p.name for p in mine.iterdir()) == ["result.json", "train.log"]
    assert (mine / "train.log").read_text() == "notes\n" and (mine / "result.json").read_text() == "{}"
    fresh = run_module("ganlab.train", "data.batch_size=-4", cwd=tmp_path)
    assert fresh.returncode == 1 and not (tmp_path / "outputs").exists()
    # a value the class's own rule refuses (DCGAN's sizes, judged before anything is built): one
    # line, and no folder made
    later = run_module(
        "ganlab.train", "model.generator.image_size=7", "logger=none", "metrics=none",
        f"paths.data_dir={mnist_root}", cwd=tmp_path,
    )  # fmt: skip
    errors = [line for line in later.stderr.splitlines() if line.startswith("error:")]
    assert later.returncode == 1 and "Traceback" not in later.stderr
    assert errors == [
        "error: model.generator.image_size=7 is not supported by DCGAN; use b·2^k with 4 ≤ b ≤ 7, k ≥ 1 "
        "(e.g. 28, 32, 64, 128)"
    ]
    assert not (tmp_path / "outputs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with a CUDA device")
def test_gpu_trainer_without_a_gpu_says_what_to_use(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no CUDA device: use trainer=cpu or trainer=auto"):
        train(make_cfg(tmp_path / "run", ["trainer=gpu", "logger=none"]))


def test_cli_train_then_resume(tmp_path: Path, mnist_root: Path) -> None:
    """The quick start, shrunk: train, then resume from last.ckpt into the same W&B run."""
    args = [*[a for a in TINY if a != "~callbacks.progress_bar"], *data_args(mnist_root)]  # as users see it
    first = run_module("ganlab.train", *args, f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    console = first.stdout + first.stderr
    synced = re.search(r"upload it with `wandb sync (\S+)`", console)  # named once the folder exists
    assert synced and Path(synced.group(1)).is_dir() and "wandb sync" not in console[: synced.start()]
    assert not re.search(
        r"^wandb:", console, re.MULTILINE
    )  # no banner or end-of-run tables offline: the console has them
    assert "FLOPs" not in console and "Modules in" not in console and "generator" in console
    assert "GPU available" in (tmp_path / "a" / "train.log").read_text()  # train.log is not empty
    bar = first.stdout[first.stdout.rfind("Epoch 0") :]  # the console shows training (the bar may wrap)
    assert "it/s" in bar and "loss_d:" in bar and "loss_g:" in bar and "v_num" not in first.stdout
    assert "├── model" in first.stdout and "lr: 0.001" in first.stdout  # the composed config, resolved
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    second = run_module(
        "ganlab.train",
        *args,
        "trainer.max_epochs=2",
        f"ckpt_path={ckpt}",
        f"hydra.run.dir={tmp_path / 'b'}",
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr[-2000:]
    resumed = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["iteration"] == 8
    assert resumed["wandb_run_id"] == torch.load(ckpt, weights_only=True)["wandb_run_id"]
    assert (tmp_path / "b" / "samples" / "fixed_noise_0000008.png").is_file()


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)], ids=["SIGTERM", "SIGINT"]
)
def test_cli_stop_signal_saves_the_current_iteration_and_resumes(
    tmp_path: Path, mnist_root: Path, signum: signal.Signals
) -> None:
    """A killed run (SIGTERM) or Ctrl-C (SIGINT) finishes its iteration, saves it with a final grid,
    exits 128 + the signal number with status "interrupted"; resume continues there."""
    run_dir = tmp_path / "a"
    args = [
        *TINY,
        *data_args(mnist_root),
        "logger=csv",
        "trainer.max_epochs=1000",
        "trainer.limit_train_batches=null",
        "callbacks.checkpoint.every_n_iters=1000000",
        "callbacks.samples.every_n_iters=3",
    ]
    env = {**os.environ, "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganlab.train", *args, f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    samples = run_dir / "samples"
    deadline = time.monotonic() + 120
    while not (samples.exists() and any(samples.glob("*.png"))):  # training is under way
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, stderr[-2000:]
    error = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and signum.name in error[0] and "after iteration" in error[0], stderr[-2000:]
    assert "Traceback" not in stderr
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    logged = read_csv_losses(run_dir)
    assert saved["iteration"] >= 3 and saved["iteration"] == max(logged) + 1  # the last one done
    assert (samples / f"fixed_noise_{saved['iteration']:07d}.png").is_file()  # a final grid
    assert json.loads((run_dir / "result.json").read_text())["status"] == "interrupted"

    cfg = [
        *args,
        "max_iters=" + str(saved["iteration"] + 2),
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
    ]
    train(make_cfg(tmp_path / "b", cfg))
    resumed = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["iteration"] == saved["iteration"] + 2


def test_tensorboard_logger_and_loader_workers(tmp_path: Path, mnist_root: Path) -> None:
    cfg = make_cfg(tmp_path, [*TINY, *data_args(mnist_root), "logger=tensorboard", "data.num_workers=2"])
    train(cfg)
    assert list(tmp_path.glob("tensorboard/version_*/events.out.tfevents.*"))
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["iteration"] == 4


@pytest.mark.parametrize("extra", [[], ["model.conditional=true"]], ids=["unconditional", "conditional"])
def test_on_device_batches_resume_exactly(tmp_path: Path, mnist_root: Path, extra: list[str]) -> None:
    """data.on_device: batches (with labels when conditional) indexed on the training device; same
    resume guarantee."""
    common = [
        *TINY,
        *data_args(mnist_root),
        "logger=csv",
        "trainer.max_epochs=3",
        *extra,
        "data.on_device=true",
    ]
    train(make_cfg(tmp_path / "full", [*common, "max_iters=7"]))
    train(make_cfg(tmp_path / "first", [*common, "max_iters=3"]))
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(make_cfg(tmp_path / "resumed", [*common, "max_iters=7", f"ckpt_path={ckpt}"]))
    full, resumed = read_csv_losses(tmp_path / "full"), read_csv_losses(tmp_path / "resumed")
    assert len(full) == 7 and sorted(resumed) == [3, 4, 5, 6]
    for step, losses in resumed.items():
        assert losses == pytest.approx(full[step], rel=1e-5, abs=1e-6), step
    # and it is a different data path from the DataLoader one (another order), not a no-op
    train(make_cfg(tmp_path / "loader", [*common[:-1], "max_iters=2"]))
    assert read_csv_losses(tmp_path / "loader")[1] != full[1]


def test_max_iters_governs_when_no_epoch_budget_is_set(
    tmp_path: Path, mnist_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_iters=N trains N iterations, also past the model's default epoch budget (shrunk to one
    epoch of 4 batches here; DCGAN's is 25 epochs)."""
    from ganlab.modules.dcgan import DCGAN

    monkeypatch.setattr(DCGAN, "default_max_epochs", 1)
    train(
        make_cfg(
            tmp_path, [*TINY, *data_args(mnist_root), "logger=none", "trainer.max_epochs=null", "max_iters=6"]
        )
    )
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["iteration"] == 6


def test_first_checkpoint_and_grid_come_early(tmp_path: Path, mnist_root: Path, monkeypatch) -> None:
    """With the 500-iteration cadence a short try still leaves a checkpoint and a grid (first_at)."""
    from ganlab.callbacks import LastCheckpoint

    saved: list[int] = []
    real_save = LastCheckpoint.save

    def recording_save(self, trainer, module):  # the real save, noting the iteration it wrote
        saved.append(module.iteration)
        real_save(self, trainer, module)

    monkeypatch.setattr(LastCheckpoint, "save", recording_save)
    args = [*TINY, *data_args(mnist_root), "logger=none", "trainer.max_epochs=2"]
    args += ["callbacks.checkpoint.every_n_iters=500", "callbacks.samples.every_n_iters=500"]
    args += ["callbacks.checkpoint.first_at=3", "callbacks.samples.first_at=3"]
    train(make_cfg(tmp_path, args))
    assert saved == [3, 4, 8]  # early, then the two epoch ends
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "fixed_noise_0000003.png", "fixed_noise_0000008.png"
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("stop", [6, 8], ids=["mid-epoch", "epoch-end"])
def test_ddp_resume_continues_exactly(tmp_path: Path, mnist_root: Path, stop: int) -> None:
    """trainer=ddp_cpu (2 ranks): each rank's noise stream and its shard's position are in the file,
    so the resumed run ends with the weights of the uninterrupted one (8 batches an epoch a rank)."""
    common = [
        *TINY, *data_args(mnist_root), "trainer=ddp_cpu", "trainer.limit_train_batches=null",
        "trainer.max_epochs=100", "logger=none", f"callbacks.checkpoint.every_n_iters={stop}",
    ]  # fmt: skip
    for name, extra in (("full", ["max_iters=12"]), ("first", [f"max_iters={stop}"])):
        done = run_module("ganlab.train", *common, *extra, f"hydra.run.dir={tmp_path / name}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["rng_states"].shape[0] == 2  # one stream a rank
    done = run_module(
        "ganlab.train", *common, "max_iters=12", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'resumed'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    full = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for name, tensor in resumed.items():
        assert torch.equal(tensor, full[name]), name
