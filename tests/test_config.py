"""Every config group option composes, and instantiates into the real objects."""

from pathlib import Path

import lightning as L
import pytest
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

from conftest import make_cfg
from ganlab.data.base import InMemoryImageDataModule
from ganlab.data.folder import ImageFolderDataModule
from ganlab.errors import ConfigError
from ganlab.modules.base import GanModule
from ganlab.modules.cyclegan import CycleGAN
from ganlab.modules.dcgan import DCGAN
from ganlab.modules.pix2pix import Pix2Pix
from ganlab.train import build_callbacks, build_loggers, check_pairing

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


PAIRS = (
    [("dcgan", d) for d in ("mnist", "cifar10", "synthetic", "image_folder", "celeba")]
    + [("cyclegan", d) for d in ("horse2zebra", "unpaired_folder", "synthetic_unpaired")]
    + [("pix2pix", d) for d in ("facades", "paired_folder")]
)


@pytest.mark.parametrize("data", options("data"))
@pytest.mark.parametrize("model", options("model"))
def test_model_data_pairs_instantiate_or_are_refused(tmp_path: Path, model: str, data: str) -> None:
    root = [f"data.root={tmp_path}"] if data == "image_folder" else []  # mandatory: the user's folder
    cfg = make_cfg(tmp_path, [f"model={model}", f"data={data}", *root])
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model)
    assert isinstance(module, GanModule)
    if (model, data) not in PAIRS:
        with pytest.raises(ConfigError, match="trains on"):
            check_pairing(module, datamodule, cfg)
        return
    check_pairing(module, datamodule, cfg)
    if isinstance(module, DCGAN):  # the networks take their shape from the data
        assert isinstance(datamodule, InMemoryImageDataModule | ImageFolderDataModule)
        assert module.generator.image_size == cfg.data.image_size == datamodule.image_size
        assert module.discriminator.channels == cfg.data.channels
    elif isinstance(module, Pix2Pix):  # official: U-Net-256, D on concat(A, B)
        assert module.generator.size_multiple == cfg.data.crop_size == 256
        assert module.discriminator.net[0].in_channels == 2 * cfg.data.channels
    else:
        assert isinstance(module, CycleGAN) and module.g_a is not module.g_b
        assert cfg.data.image_size == 256


@pytest.mark.parametrize("trainer", options("trainer"))
def test_trainer_options_compose(tmp_path: Path, trainer: str) -> None:
    cfg = make_cfg(tmp_path, [f"trainer={trainer}", "trainer.max_epochs=3", "trainer.limit_train_batches=5"])
    assert cfg.trainer.max_epochs == 3
    assert cfg.trainer.limit_train_batches == 5
    if cfg.trainer.accelerator in ("cpu", "auto"):
        trainer_obj = instantiate(cfg.trainer, logger=False)
        assert isinstance(trainer_obj, L.Trainer)
        assert trainer_obj.max_epochs == 3


@pytest.mark.parametrize("logger", options("logger"))
def test_logger_options_instantiate(tmp_path: Path, logger: str) -> None:
    cfg = make_cfg(tmp_path, [f"logger={logger}"])
    loggers = build_loggers(cfg, {})
    expected = {"wandb": WandbLogger, "csv": CSVLogger, "tensorboard": TensorBoardLogger}
    assert len(loggers) == (logger in expected)
    assert all(isinstance(x, expected[logger]) for x in loggers)


def test_callbacks_instantiate(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, ["max_iters=7"])
    names = [type(c).__name__ for c in build_callbacks(cfg, {})]
    assert names == [
        "FIDCallback",
        "LastCheckpoint",
        "SampleGrid",
        "NetworkSummary",
        "ProgressBar",
        "RunConfig",
        "StopSignal",
        "IterationBudget",
    ]


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_compose(tmp_path: Path, experiment: str) -> None:
    cfg = make_cfg(tmp_path, [f"experiment={experiment}"])
    module = instantiate(cfg.model)
    assert (cfg.trainer.max_epochs or module.default_max_epochs) >= 1


def test_data_dir_defaults_to_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANLAB_DATA_DIR", "/somewhere/else")
    assert make_cfg(tmp_path, []).data.data_dir == "/somewhere/else"
    monkeypatch.delenv("GANLAB_DATA_DIR")
    assert make_cfg(tmp_path, []).data.data_dir == "data"
    assert make_cfg(tmp_path, ["paths.data_dir=/d"]).data.data_dir == "/d"


@pytest.mark.parametrize("data", ["image_folder", "unpaired_folder", "paired_folder", "celeba"])
def test_loader_workers_default_to_the_usable_cpus_at_most_four(tmp_path: Path, data: str) -> None:
    """On a 2-core machine the folders start 2 workers, not 4 (torch's "suggested max number of
    worker" warning, twice per run); an explicit value is kept."""
    import os

    cfg = make_cfg(tmp_path, [f"data={data}"])
    assert cfg.data.num_workers == min(4, len(os.sched_getaffinity(0)))
    assert make_cfg(tmp_path, [f"data={data}", "data.num_workers=3"]).data.num_workers == 3
