"""Speed switches train, and the training step never reads a tensor back to the host."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY, make_cfg, run_module
from ganlab.train import train

READBACKS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__")


@pytest.fixture
def readbacks(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Counts host read-backs of tensors made inside training_step (on GPU each is a sync).

    ``counts["wrap"](cls)`` instruments another module class (the DCGAN and CycleGAN are done).
    """
    counts: dict = {"inside": 0}
    state = {"active": False}
    for name in READBACKS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, __original=original, **kwargs):
            # torch.optim reads its step counter, a CPU tensor by design (no device sync): not counted
            if state["active"] and "torch/optim/" not in sys._getframe(1).f_code.co_filename:
                counts["inside"] += 1
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)

    def wrap(cls: type) -> None:
        step = cls.training_step

        def wrapped(self, *args, __step=step, **kwargs):
            state["active"] = True
            try:
                return __step(self, *args, **kwargs)
            finally:
                state["active"] = False

        monkeypatch.setattr(cls, "training_step", wrapped)

    from ganlab.modules.cyclegan import CycleGAN
    from ganlab.modules.dcgan import DCGAN

    wrap(DCGAN)
    wrap(CycleGAN)
    counts["wrap"] = wrap
    return counts


def test_dcgan_step_makes_no_host_readback(tmp_path: Path, mnist_root: Path, readbacks: dict) -> None:
    train(make_cfg(tmp_path, [*TINY, f"paths.data_dir={mnist_root}", "logger=csv"]))
    assert readbacks["inside"] == 0


def test_cyclegan_step_makes_no_host_readback(tmp_path: Path, readbacks: dict) -> None:
    import fabricate
    from test_cyclegan import TINY_CYCLE

    root = fabricate.unpaired_folder(tmp_path / "data")
    (root / "trainA" / "zz_corrupt.jpg").unlink()
    train(make_cfg(tmp_path / "run", [*TINY_CYCLE, f"data.root={root}", "trainer.max_epochs=1"]))
    assert readbacks["inside"] == 0


def test_the_counter_sees_a_readback(readbacks: dict) -> None:
    from ganlab.modules.base import GanModule

    class Probe(GanModule):
        def training_step(self, batch, batch_idx):
            return torch.ones(()).item() + bool(torch.zeros(()))

    readbacks["wrap"](Probe)
    Probe().training_step(None, 0)
    assert readbacks["inside"] == 2


@pytest.mark.parametrize(
    "switches",
    [
        ["trainer.precision=bf16-mixed"],
        ["model.channels_last=true"],
        ["model.optimizer.foreach=true"],
        pytest.param(["model.compile=true"], marks=pytest.mark.slow),  # torch.compile on CPU: ~55 s here
    ],
)
def test_speed_switches_train(tmp_path: Path, mnist_root: Path, switches: list[str]) -> None:
    train(make_cfg(tmp_path, [*TINY, f"paths.data_dir={mnist_root}", "logger=csv", *switches]))
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["iteration"] == 4
    assert not any("_orig_mod" in k for k in ckpt["state_dict"])  # compiled nets keep their keys
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_bench_measures_both_sides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ganlab.bench import run_case

    monkeypatch.chdir(tmp_path)
    result = run_case(
        "dcgan28", torch.device("cpu"), warmup=1, window=2, repeats=2, extra=["model.generator.ngf=8"]
    )
    assert result["ganlab"] > 0 and result["plain"] > 0
    assert result["ratio"] == pytest.approx(result["ganlab"] / result["plain"])
    assert result["unit"] == "img/s" and result["batch"] == 64


@pytest.mark.slow  # a whole benchmark run, 10 s: the slow step
def test_bench_runs_each_switch_set_and_names_it(tmp_path: Path) -> None:
    tiny = ["--device", "cpu", "--cases", "dcgan28", "--warmup", "1", "--window", "1", "--repeats", "2",
            "model.generator.ngf=4", "model.discriminator.ndf=4"]  # fmt: skip
    result = run_module("ganlab.bench", *tiny, "--switches", "eager,channels_last", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("BENCH ")]
    assert [line.split()[2] for line in lines] == ["switch=eager", "switch=channels_last"]
    bad = run_module("ganlab.bench", *tiny, "--switches", "eager,warp", cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("error: --switches warp: not among eager, ")


def test_bench_loader_case_streams_a_folder_against_torchvision(tmp_path: Path) -> None:
    import fabricate

    fabricate.image_folder(tmp_path / "photos", per_class=40)
    result = run_module(
        "ganlab.bench",
        "--cases",
        "loader",
        "--workers",
        "0",
        "--folder",
        str(tmp_path / "photos"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("BENCH loader")]
    fields = dict(item.split("=", 1) for item in line.split()[2:])
    assert float(fields["ganlab"]) > 0 and float(fields["plain"]) > 0 and fields["unit"] == "img/s"
    assert float(fields["ratio"]) == pytest.approx(float(fields["ganlab"]) / float(fields["plain"]), rel=2e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_no_device_sync_inside_the_step_on_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a GPU, torch itself refuses any synchronising call made inside training_step."""
    from ganlab.modules.dcgan import DCGAN

    step = DCGAN.training_step

    def strict(self, *args, **kwargs):
        torch.cuda.set_sync_debug_mode("error")
        try:
            return step(self, *args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(DCGAN, "training_step", strict)
    overrides = [
        *TINY,
        "trainer=gpu",
        "data=synthetic",
        "data.image_size=32",
        "data.on_device=true",
        "logger=csv",
    ]
    train(make_cfg(tmp_path, overrides))
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["iteration"] == 4
