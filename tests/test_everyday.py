"""Everyday use, second round: a quick and truthful stop, advice that works for the tool at hand, a
quiet console."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import lightning as L
import pytest
import torch

import fabricate
from conftest import TINY, make_cfg
from ganlab.cli import quiet_third_party
from ganlab.errors import DataError, Interrupted
from ganlab.train import train


class SignalAt(L.Callback):
    """Sends this process ``signum`` after iteration ``at`` (as ``kill`` or Ctrl-C would)."""

    def __init__(self, at: int, signum: int = signal.SIGTERM) -> None:
        self.at, self.signum = at, signum

    def on_train_batch_end(self, trainer, module, *args) -> None:
        if module.iteration == self.at:
            os.kill(os.getpid(), self.signum)


class CountValidation(L.Callback):
    runs = 0

    def on_validation_start(self, trainer, module) -> None:
        CountValidation.runs += 1


def test_a_signal_stops_after_the_batch_without_a_validation_pass(tmp_path: Path, mnist_root: Path) -> None:
    """SIGTERM mid-epoch: the iteration is saved and the run ends; Lightning's early-stop path used to
    run a whole validation pass first (~21 s on MNIST)."""
    CountValidation.runs = 0
    cfg = make_cfg(
        tmp_path,
        [
            *TINY,
            f"paths.data_dir={mnist_root}",
            "logger=none",
            "trainer.max_epochs=100",
            "trainer.limit_train_batches=null",
            "+callbacks.signal._target_=test_everyday.SignalAt",
            "+callbacks.signal.at=2",
            "+callbacks.count._target_=test_everyday.CountValidation",
        ],
    )
    with pytest.raises(Interrupted, match="stopped by SIGTERM after iteration 2"):
        train(cfg)
    assert CountValidation.runs == 0


def test_the_stop_reason_is_the_true_one_and_said_once(tmp_path: Path, mnist_root: Path, caplog) -> None:
    quiet_third_party()  # as every command does: Lightning's own reason is dropped
    caplog.set_level(logging.INFO)
    overrides = [*TINY, f"paths.data_dir={mnist_root}", "logger=none", "trainer.max_epochs=5", "max_iters=3"]
    train(make_cfg(tmp_path / "a", overrides))
    said = [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()]
    assert said == ["training stopped: max_iters=3 reached (iteration 3)"], said
    caplog.clear()
    train(make_cfg(tmp_path / "b", [*TINY, f"paths.data_dir={mnist_root}", "logger=none"]))
    said = [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()]
    assert said == ["training stopped: trainer.max_epochs=1 reached (iteration 4)"], said


# --- advice that works for the tool at hand ---


def test_evaluate_without_inception_weights_never_advises_metrics_none(tmp_path: Path, monkeypatch) -> None:
    """Offline, evaluate named "metrics=none" as a way out; evaluate metrics=none then said that leaves
    nothing to evaluate. It names only the ways to get the weights; training still offers both."""
    from hydra import compose, initialize_config_dir

    from ganlab.evaluate import evaluate
    from ganlab.metrics.inception import MissingWeightsError, resolve_weights
    from ganlab.train import CONFIG_DIR

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    folders = [fabricate.image_folder(tmp_path / name, per_class=2) for name in ("real", "fake")]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("evaluate", [f"real={folders[0]}", f"fake={folders[1]}", "device=cpu"])
    with pytest.raises(MissingWeightsError) as err:
        evaluate(cfg)
    assert "metrics.fid.weights_path=<file>" in str(err.value) and "metrics=none" not in str(err.value)
    with pytest.raises(MissingWeightsError, match=r"or turn FID off with metrics=none$"):
        resolve_weights(None, download=False)  # what a training run's preflight says


def test_a_failed_translation_set_download_says_where_to_put_the_data(tmp_path: Path, http_root) -> None:
    from ganlab.data.downloads import download_cyclegan, download_pix2pix

    base, _ = http_root
    data = tmp_path / "data"
    with pytest.raises(DataError) as err:
        download_cyclegan("horse2zebra", data, url=f"{base}horse2zebra.zip")
    assert (
        f"download {base}horse2zebra.zip and unzip it in {data} (giving {data / 'horse2zebra'}/trainA"
        in str(err.value)
    )
    assert "data.root=" in str(err.value)
    with pytest.raises(DataError) as err:
        download_pix2pix("facades", data, url=f"{base}facades.tar.gz")
    assert f"unpack it in {data} (giving {data / 'facades'}/train/ of A|B images)" in str(err.value)
    assert not data.exists()  # nothing half-made, not even the folder made for the download


def test_the_export_extra_advice_names_this_checkout(monkeypatch, tmp_path: Path) -> None:
    import sys

    from ganlab.errors import ConfigError
    from ganlab.export import export_onnx

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were not installed
    with pytest.raises(ConfigError) as err:
        export_onnx(None)  # type: ignore[arg-type]  (the check comes first)
    assert str(err.value) == (
        "format=onnx needs the export extra (onnx, onnxruntime): "
        f"pip install '{repo}[export]' (this checkout)"
    )


# --- a quiet console ---


def test_a_short_epoch_is_said_once_in_ganlabs_words(tmp_path: Path, mnist_root: Path, caplog) -> None:
    import warnings

    quiet_third_party()
    caplog.set_level(logging.INFO)
    overrides = [*TINY, f"paths.data_dir={mnist_root}", "logger=csv", "trainer.log_every_n_steps=50"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        quiet_third_party()  # its filters, inside this block's fresh filter list
        train(make_cfg(tmp_path, overrides))
    assert not [w for w in caught if "logging interval" in str(w.message)]
    said = [r.getMessage() for r in caplog.records if "metrics are logged every" in r.getMessage()]
    assert said == [
        "metrics are logged every 50 iterations, more than an epoch's 4 batches: the curves get a point "
        "every few epochs (trainer.log_every_n_steps=<n> for more)"
    ]


# --- start fast: what a command imports before it answers ---

PROBE = """
import runpy, sys
sys.argv = [{module!r}, *{args!r}]
try:
    runpy.run_module({module!r}, run_name="__main__")
except SystemExit as e:
    code = e.code
heavy = ("torch", "lightning", "torchvision", "wandb", "torch_fidelity")
print("CODE", code if isinstance(code, int) else 1, *[m for m in heavy if m in sys.modules], file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("module", "args", "allowed"),
    [
        ("ganlab.train", ["model.lrr=1"], set()),  # Hydra's composition error
        ("ganlab.train", ["model.lr=abc"], set()),  # the value table, before any class
        ("ganlab.train", ["--help"], set()),
        ("ganlab.train", ["--cfg", "job"], set()),
        ("ganlab.generate", ["--help"], set()),
        ("ganlab.translate", ["--help"], set()),
    ],
)
def test_help_and_config_errors_answer_before_torch_is_imported(
    tmp_path: Path, module: str, args: list[str], allowed: set[str]
) -> None:
    import subprocess
    import sys

    code = "code = 0\n" + PROBE.format(module=module, args=args)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    status, *imported = done.stderr.strip().splitlines()[-1].split()[1:]
    assert set(imported) <= allowed, f"{module} {args} imported {imported} before answering"
    assert int(status) == (1 if "=" in " ".join(args) else 0), done.stderr[-1000:]


def test_translating_an_official_file_never_imports_lightning(tmp_path: Path) -> None:
    import subprocess
    import sys

    from PIL import Image

    import official_arch as oa

    torch.save(oa.ResnetGenerator(3, 3, ngf=4, n_blocks=1).state_dict(), tmp_path / "g.pth")
    Image.new("RGB", (40, 40), (10, 200, 30)).save(tmp_path / "p.png")
    args = [f"ckpt={tmp_path / 'g.pth'}", f"input={tmp_path / 'p.png'}", f"output={tmp_path / 'o.png'}"]
    code = "code = 0\n" + PROBE.format(module="ganlab.translate", args=args)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    status, *imported = done.stderr.strip().splitlines()[-1].split()[1:]
    assert status == "0" and imported == ["torch"], done.stderr[-1500:]
    assert Image.open(tmp_path / "o.png").size == (256, 256)  # the official test's crop


def _probe(module: str, args: list[str], cwd: Path) -> tuple[str, list[str], str]:
    import subprocess
    import sys

    code = "code = 0\n" + PROBE.format(module=module, args=args)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=180)
    status, *imported = done.stderr.strip().splitlines()[-1].split()[1:]
    return status, imported, done.stderr[-1500:]


@pytest.mark.parametrize("tool", ["generate", "explore", "export"])
def test_tools_on_a_ganlab_checkpoint_never_import_lightning(
    tmp_path: Path, dcgan_ckpt: Path, tool: str
) -> None:
    """A DCGAN run's last.ckpt: the tools rebuild its generator from the registry's networks and
    know ganlab's module by name, without importing the LightningModule (nor wandb, torch-fidelity)."""
    output = tmp_path / ("out.onnx" if tool == "export" else "out.png")
    extra = ["format=onnx"] if tool == "export" else []
    args = [f"ckpt={dcgan_ckpt}", f"output={output}", *extra]
    status, imported, err = _probe(f"ganlab.{tool}", args, tmp_path)
    assert status == "0" and output.is_file(), err
    assert not {"lightning", "wandb", "torch_fidelity"} & set(imported), f"{tool} imported {imported}"


def test_translating_a_ganlab_cyclegan_never_imports_lightning(tmp_path: Path) -> None:
    from PIL import Image

    from conftest import TINY_CYCLE

    photos = fabricate.unpaired_folder(tmp_path / "photos")
    (photos / "trainA" / "zz_corrupt.jpg").unlink()
    train(make_cfg(tmp_path / "run", [*TINY_CYCLE, f"data.root={photos}"]))
    Image.new("RGB", (40, 40), (10, 200, 30)).save(tmp_path / "p.png")
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    args = [f"ckpt={ckpt}", f"input={tmp_path / 'p.png'}", f"output={tmp_path / 'o.png'}"]
    status, imported, err = _probe("ganlab.translate", args, tmp_path)
    assert status == "0" and imported == ["torch"], err
    assert Image.open(tmp_path / "o.png").size == (32, 32)  # the run's crop


@pytest.mark.parametrize("form", ["checkpoint", "folders"])
def test_evaluate_names_missing_weights_before_lightning(tmp_path: Path, dcgan_ckpt: Path, form: str) -> None:
    """Missing Inception weights are said before Lightning is imported (evaluate never needs it)."""
    from PIL import Image

    for name in ("real", "fake"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / name / f"{i}.png")
    given = [f"ckpt={dcgan_ckpt}"] if form == "checkpoint" else ["real=real", "fake=fake"]
    status, imported, err = _probe("ganlab.evaluate", [*given, "metrics.fid.weights_path=none.pth"], tmp_path)
    assert status == "1" and "metrics.fid.weights_path=none.pth does not exist" in err, err
    assert "lightning" not in imported, imported


def _cyclegan_run(tmp_path: Path) -> Path:
    from conftest import TINY_CYCLE

    photos = fabricate.unpaired_folder(tmp_path / "photos")
    (photos / "trainA" / "zz_corrupt.jpg").unlink()
    train(make_cfg(tmp_path / "run", [*TINY_CYCLE, f"data.root={photos}", "model.ema.decay=0.5"]))
    return tmp_path / "run" / "checkpoints" / "last.ckpt"


SCORE = [
    "metrics.fid.feature=64",
    "metrics.kid.subset_size=4",
    "num_fake=8",
    "metrics.num_real=16",
    "device=cpu",
]


@pytest.mark.parametrize("family", ["DCGAN", "CycleGAN"])
def test_evaluate_of_a_ganlab_checkpoint_never_imports_lightning(
    tmp_path: Path, dcgan_ckpt: Path, mnist_root: Path, weights: Path, family: str
) -> None:
    """evaluate rebuilds ganlab's own data set without Lightning's base (``ganlab.data.sets``) and
    scores the generators alone: a whole FID/KID of a run, with Lightning and wandb never imported.
    It imported Lightning to rebuild the LightningModule and LightningDataModule."""
    from conftest import fid_weights

    ckpt = dcgan_ckpt if family == "DCGAN" else _cyclegan_run(tmp_path)
    args = [f"ckpt={ckpt}", *fid_weights(weights), *SCORE, f"data_dir={mnist_root}",
            f"paths.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    status, imported, err = _probe("ganlab.evaluate", args, tmp_path)
    assert status == "0" and not {"lightning", "wandb"} & set(imported), err  # torch-fidelity: FID's


@pytest.mark.parametrize("family", ["DCGAN", "CycleGAN"])
def test_evaluate_scores_the_networks_as_the_module_does(
    tmp_path: Path, mnist_root: Path, weights: Path, family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The networks-only scoring of ganlab's own modules gives the same numbers, to the bit, as the
    rebuilt LightningModule's fid_sources/fid_generate (the path a plugin's module takes), EMA
    copies included; ema=false scores the raw weights, which differ."""
    from hydra import compose, initialize_config_dir

    import ganlab.evaluate as ev
    from conftest import fid_weights
    from ganlab.train import CONFIG_DIR

    if family == "DCGAN":
        train(make_cfg(tmp_path / "run", [*TINY, f"paths.data_dir={mnist_root}", "logger=none",
                                          "model.ema.decay=0.5"]))  # fmt: skip
        ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    else:
        ckpt = _cyclegan_run(tmp_path)

    def scores(*extra: str) -> dict:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            given = [f"ckpt={ckpt}", f"data_dir={mnist_root}", f"paths.cache_dir={tmp_path / 'c'}"]
            cfg = compose("evaluate", [*given, *fid_weights(weights), *SCORE, *extra])
        result = ev.evaluate(cfg)
        result["protocol"].pop("cache")
        return result

    own, raw = scores(), scores("ema=false")
    with monkeypatch.context() as patch:
        patch.setattr(ev, "builtin_module", lambda ckpt: None)  # as a plugin's module: the whole module
        assert scores() == own
        assert scores("ema=false") == raw
    assert raw != own


def test_each_builtin_data_module_is_its_plain_data_set_with_lightnings_base() -> None:
    """evaluate builds the plain class (``checkpoint.BUILTIN_DATA``) where training builds the
    registered LightningDataModule: every built-in data module is in that table, and is its plain
    data set with Lightning's base added and nothing else, so both run the same code."""
    import lightning as L
    from hydra.utils import get_object

    from ganlab import registry
    from ganlab.checkpoint import BUILTIN_DATA, register_builtins

    register_builtins()
    assert {n for n in registry.names("data") if registry.is_builtin("data", n)} == set(BUILTIN_DATA)
    for name, plain in BUILTIN_DATA.items():
        cls, data_set = registry.lookup("data", name), get_object(plain)
        assert cls.__mro__[1] is data_set and issubclass(cls, L.LightningDataModule), name
        assert not issubclass(data_set, L.LightningDataModule), plain
        added = set(vars(cls)) - {"__module__", "__qualname__", "__doc__", "__firstlineno__",
                                  "__static_attributes__"}  # fmt: skip
        assert not added and cls.__doc__ == data_set.__doc__, (name, added)


def test_a_plugin_module_still_gets_its_whole_check(tmp_path: Path, dcgan_ckpt: Path) -> None:
    """Only ganlab's own modules are known by name: a module the registry does not hold is refused
    in one line, naming the plugin to pass, as before (the tools cannot skip the check)."""
    ckpt = torch.load(dcgan_ckpt, weights_only=True)
    ckpt["ganlab_config"]["model"]["_target_"] = "mypkg.gans.MyGAN"
    ckpt["ganlab_plugins"] = ["mypkg"]
    torch.save(ckpt, tmp_path / "plugin.ckpt")
    status, _, err = _probe("ganlab.generate", [f"ckpt={tmp_path / 'plugin.ckpt'}", "output=o.png"], tmp_path)
    assert status == "1" and "pass plugins=[mypkg]" in err, err


def test_image_extensions_are_torchvisions() -> None:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    from ganlab.data import images

    assert images.IMG_EXTENSIONS == IMG_EXTENSIONS


def test_hydra_flags_that_exclude_each_other_are_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "ganlab.train", "-m", "seed=0,1", "--cfg", "job"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-1500:]
    assert done.stderr.strip().splitlines() == [
        "error: Only one of --run, --multirun, --cfg, --info and --shell_completion can be specified; "
        "run them as separate commands"
    ]
