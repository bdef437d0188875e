"""train's checks before Lightning: every value against its class read from ganlab's source
(``ganlab.signatures``), then the data and the metrics' weights (``ganlab.preflight``), all before
Hydra makes the run directory."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from hydra.utils import get_object
from omegaconf import OmegaConf

import fabricate
from ganlab import signatures
from ganlab.data import sources
from ganlab.errors import DataError
from ganlab.preflight import preflight_config

CONF = Path(__file__).resolve().parents[1] / "conf"
HEAVY = ("torch", "lightning", "torchvision", "wandb", "torch_fidelity", "torchmetrics")
PROBE = """
import runpy, sys
sys.argv = ["ganlab.train", *{args!r}]
code = 0
try:
    runpy.run_module("ganlab.train", run_name="__main__")
except SystemExit as e:
    code = e.code
heavy = [m for m in {heavy!r} if m in sys.modules]
print("CODE", code if isinstance(code, int) else 1, *heavy, file=sys.stderr)
"""


def train_probe(tmp_path: Path, *args: str) -> tuple[int, list[str], str]:
    """``python -m ganlab.train <args>`` in a fresh process: exit status, the heavy packages it had
    imported when it answered, and its stderr."""
    code = PROBE.format(args=[*args, f"hydra.run.dir={tmp_path / 'run'}"], heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=180
    )
    status, *imported = done.stderr.strip().splitlines()[-1].split()[1:]
    return int(status), imported, done.stderr


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("mnist", "MNIST not found in"),
        ("weights", "metrics.fid.weights_path="),
        ("folder", "does not exist; expected a folder with trainA/, trainB/"),
        ("value", "data.download=maybe must be true or false"),
        ("net", "ganlab.nets.resnet.ResnetGenerator has no argument nblocks"),
        ("loss", "model.loss=wgan is not a registered GAN loss"),
    ],
)
def test_missing_data_weights_and_bad_values_answer_before_lightning(
    tmp_path: Path, mnist_root: Path, case: str, said: str
) -> None:
    """Each is one line and exit 1, said before torch (or Lightning, torchvision, wandb,
    torch-fidelity) is imported, and the run directory is never made."""
    args = {
        "mnist": [f"paths.data_dir={tmp_path / 'empty'}", "data.download=false", "metrics=none"],
        "weights": [f"paths.data_dir={mnist_root}", f"metrics.fid.weights_path={tmp_path / 'no.pth'}"],
        "folder": [
            "model=cyclegan",
            "data=unpaired_folder",
            f"data.root={tmp_path / 'nope'}",
            "metrics=none",
        ],
        "value": [f"paths.data_dir={mnist_root}", "data.download=maybe", "metrics=none"],
        "loss": [f"paths.data_dir={tmp_path / 'empty'}", "model.loss=wgan"],  # said before missing data
        "net": [
            "model=cyclegan",
            "data=unpaired_folder",
            f"data.root={tmp_path}",
            "+model.generator.nblocks=2",
        ],
    }[case]
    status, imported, err = train_probe(tmp_path, *args)
    assert status == 1 and said in err, err[-2000:]
    assert err.count("error:") == 1, err[-2000:]
    allowed = {"torch"} if case == "loss" else set()  # a name ganlab does not ship: the registry's
    assert set(imported) <= allowed, f"{case}: {imported} imported before answering"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("size", "error: model.generator.image_size=7 is not supported by DCGAN; use b·2^k"),
        ("norm", "error: model.discriminator.norm=bogus must be one of instance, batch"),
        ("memory", "error: model.generator asks for more memory than this machine has"),
        ("partial", "error: model.generator asks for more memory than this machine has"),
        ("data", "error: data.labels=colour must be one of none, folders"),
    ],
)
def test_what_only_a_constructor_said_answers_before_lightning(
    tmp_path: Path, mnist_root: Path, case: str, said: str
) -> None:
    """Values only a class's constructor refused, all said after Lightning before. The DCGAN sizes
    (``validate.TARGET_RULES``) and the networks' norm choices (``Literal`` hints) are now judged
    with nothing imported; what is left to a constructor is met by building the networks on
    torch's meta device and ganlab's data set as its plain class, before Lightning (wandb,
    torch-fidelity) is imported: a network too large for this machine is refused from its meta
    shapes (it was allocated, for seconds, first), also one CycleGAN builds twice from a partial
    config. No run directory is made."""
    if case in ("norm", "partial"):
        fabricate.unpaired_folder(tmp_path / "photos")
    if case == "data":
        fabricate.image_folder(tmp_path / "faces", per_class=2)
    cycle = ["model=cyclegan", "data=unpaired_folder", f"data.root={tmp_path / 'photos'}"]
    args = {
        "size": ["model.generator.image_size=7"],
        "norm": [*cycle, "+model.discriminator.norm=bogus"],
        "memory": ["model.generator.ngf=100000"],
        "partial": [*cycle, "model.generator.ngf=100000"],
        "data": ["data=image_folder", f"data.root={tmp_path / 'faces'}", "data.labels=colour"],
    }[case]
    status, imported, err = train_probe(tmp_path, *args, f"paths.data_dir={mnist_root}", "metrics=none")
    assert status == 1 and said in err and err.count("error:") == 1, err[-2000:]
    if case in ("size", "norm"):
        assert imported == [], imported
    assert not {"lightning", "wandb", "torch_fidelity", "torchmetrics"} & set(imported), imported
    assert not (tmp_path / "run").exists()


def test_the_run_still_checks_what_it_could_not_read_before(tmp_path: Path, mnist_root: Path) -> None:
    """A value of a class from a package whose source is not read (a user's own module) is checked
    once the run imports it: still one line, exit 1, and no run directory left."""
    (tmp_path / "myopt.py").write_text(
        "import torch\n\n\nclass Adam2(torch.optim.Adam):\n"
        "    def __init__(self, params, lr: float = 1e-3, gamma: float = 1.0, **kwargs):\n"
        "        super().__init__(params, lr=lr, **kwargs)\n"
    )
    status, imported, err = train_probe(
        tmp_path, f"paths.data_dir={mnist_root}", "metrics=none", "model.optimizer._target_=myopt.Adam2",
        "+model.optimizer.gamma=abc",
    )  # fmt: skip
    assert status == 1 and "model.optimizer.gamma=abc must be a number" in err, err[-2000:]
    assert err.count("error:") == 1 and "lightning" in imported, err[-2000:]
    assert not (tmp_path / "run").exists()


def test_lightnings_trainer_values_answer_before_lightning(tmp_path: Path, mnist_root: Path) -> None:
    """The Trainer's signature is read from Lightning's source, its aliases followed through
    imports (``precision: Optional[_PRECISION_INPUT]``): a bad precision or a key the Trainer does
    not take answers before Lightning is imported. Both answered after it (about 3 s)."""
    status, imported, err = train_probe(
        tmp_path, f"paths.data_dir={mnist_root}", "metrics=none", "trainer.precision=abc", "+trainer.foo=1"
    )
    assert status == 1 and err.count("error:") == 1, err[-2000:]
    assert "trainer.precision=abc must be one of 64, 32, 16, transformer-engine" in err, err[-2000:]
    assert "lightning.pytorch.Trainer has no argument foo" in err, err[-2000:]
    assert imported == [] and not (tmp_path / "run").exists(), imported


def _config_targets() -> list[str]:
    found = set()
    for path in CONF.rglob("*.yaml"):
        for line in path.read_text().splitlines():
            key, _, value = line.strip().partition(":")
            if key == "_target_" and value.strip().split(".")[0] in signatures.READABLE:
                found.add(value.strip())
    return sorted(found)


@pytest.mark.parametrize("target", _config_targets())
def test_a_signature_read_from_source_is_inspects(target: str) -> None:
    """For every class or function a config names (ganlab's, Lightning's Trainer and loggers,
    torch's Adam): the parameters, ``**kwargs`` and hints read from its source are what ``inspect``
    says of the imported object (a hint the reader does not know is left out: any value passes it,
    as the run's own check then judges). A constructor it cannot read is left to the run."""
    module, _, name = target.rpartition(".")
    static = signatures._static(module, name, depth=0)  # never the sys.modules shortcut
    obj = get_object(target)
    if static is None:  # only a constructor from another package (Lightning's ModelSummary …)
        init = obj.__init__ if inspect.isclass(obj) else obj
        assert not getattr(init, "__module__", "builtins").startswith("ganlab"), f"{target}: not read"
        return
    live = signatures.inspected(obj)
    assert live is not None
    assert (static.params, static.open_kwargs) == (live.params, live.open_kwargs)
    for param, hint in static.hints.items():
        assert hint == live.hints[param], (param, hint, live.hints[param])
    plain = {int, float, str, bool, type(None)}
    for param in set(live.hints) - set(static.hints):  # unknown to the reader: only hints of objects
        parts = typing.get_args(live.hints[param]) or (live.hints[param],)
        assert not all(isinstance(p, type) and p in plain for p in parts), param


def test_a_class_the_reader_cannot_follow_is_left_to_the_run() -> None:
    assert signatures.read_signature("mypkg.nets.Mine") is None  # not ganlab's: imported later
    assert signatures.read_signature("ganlab.nets.dcgan.NoSuchClass") is None


def test_names_copied_from_torchvision_and_torch_fidelity_agree() -> None:
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
    from torchvision.datasets import CIFAR10, MNIST, CelebA

    from ganlab.metrics.inception import URL_INCEPTION_V3 as ours

    assert ours == URL_INCEPTION_V3
    assert tuple(name.removesuffix(".gz") for name, _ in MNIST.resources) == sources.MNIST_RAW_FILES
    assert CIFAR10.base_folder == sources.CIFAR10_FOLDER
    assert sorted(sources.CIFAR10_FILES) == sorted(
        [name for name, _ in CIFAR10.train_list + CIFAR10.test_list] + [CIFAR10.meta["filename"]]
    )
    assert CIFAR10.filename == sources.CIFAR10_ARCHIVE
    assert CelebA.base_folder == sources.CELEBA_FOLDER
    assert {sources.CELEBA_PARTITION, sources.CELEBA_ATTRIBUTES} <= {name for _, _, name in CelebA.file_list}


@pytest.mark.parametrize("target", sorted(sources.SOURCES))
def test_a_source_takes_its_data_modules_defaults(target: str) -> None:
    """The preflight builds a source from the config alone: a key the config leaves out must mean
    what the data module's default means."""
    module = inspect.signature(get_object(target)).parameters
    if "kwargs" in module:  # CelebA: the folder module's parameters too
        module = {
            **inspect.signature(get_object("ganlab.data.folder.ImageFolderDataModule")).parameters,
            **module,
        }
    for name, param in inspect.signature(sources.SOURCES[target]).parameters.items():
        assert name in module, f"{target} has no parameter {name}"
        if (
            param.default is not inspect.Parameter.empty
            and module[name].default is not inspect.Parameter.empty
        ):
            ours = param.default
            if name == "url" and ours is None:  # the official URL, filled in when downloading
                continue
            assert ours == module[name].default, (target, name)


def test_preflight_names_the_missing_data_and_weights_together(tmp_path: Path) -> None:
    cfg = {
        "data": {
            "_target_": "ganlab.data.mnist.MNISTDataModule",
            "data_dir": str(tmp_path),
            "download": False,
        },
        "metrics": {
            "_target_": "ganlab.metrics.callback.FIDCallback",
            "fid": {"weights_path": str(tmp_path / "w")},
        },
    }
    with pytest.raises(DataError, match=r"MNIST not found .* — and — metrics\.fid\.weights_path="):
        preflight_config(cfg)


def test_preflight_prepares_what_is_there_and_skips_a_plugins_data(tmp_path: Path) -> None:
    """.gz files as distributed are unpacked by the preflight itself; a data module that is not
    ganlab's is left to its own prepare_data (the run calls it)."""
    fabricate.mnist(tmp_path, gz=True)
    cfg = OmegaConf.create(
        {"data": {"_target_": "ganlab.data.mnist.MNISTDataModule", "data_dir": str(tmp_path)}}
    )
    preflight_config(OmegaConf.to_container(cfg))
    assert (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    preflight_config({"data": {"_target_": "mypkg.Data", "data_dir": str(tmp_path / "none")}})


HUB_ENVIRONMENTS = [
    {},
    {"TORCH_HOME": "/opt/th"},
    {"XDG_CACHE_HOME": "/xdg"},
    {"TORCH_HOME": "~/t", "XDG_CACHE_HOME": "/x"},
]


@pytest.mark.parametrize("env", HUB_ENVIRONMENTS)
def test_the_hub_folder_is_torchs_without_importing_torch(monkeypatch: pytest.MonkeyPatch, env: dict) -> None:
    """The preflight finds weights in torch.hub's folder without importing torch: the same folder."""
    import torch

    from ganlab.metrics.hub import hub_dir_from_environment

    for name in ("TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert hub_dir_from_environment() == Path(torch.hub.get_dir())


def test_the_builtin_names_the_values_are_judged_by_are_ganlabs() -> None:
    from ganlab.losses import LOSSES
    from ganlab.modules.augment import POLICIES
    from ganlab.validate import BUILTIN_NAMES

    assert set(BUILTIN_NAMES["loss"]) == set(LOSSES)
    assert set(BUILTIN_NAMES["augment"]) == set(POLICIES)


def test_a_failed_download_leaves_no_folder_it_made(tmp_path: Path, http_root) -> None:
    """paths.data_dir=<a folder that does not exist> and the mirrors fail: one line, and the data
    folder the download made for its files is gone again (nothing is left to be mistaken for data)."""
    base, _ = http_root  # serves nothing: every file is missing
    data_dir = tmp_path / "typo" / "data"
    mnist = "ganlab.data.mnist.MNISTDataModule"
    cfg = {"data": {"_target_": mnist, "data_dir": str(data_dir), "mirrors": [base]}}
    with pytest.raises(DataError, match=r"MNIST not found .* the download failed"):
        preflight_config(cfg)
    assert not (tmp_path / "typo").exists()
    (tmp_path / "kept").mkdir()  # a folder that was there before is never removed
    cfg["data"]["data_dir"] = str(tmp_path / "kept")
    with pytest.raises(DataError):
        preflight_config(cfg)
    assert (tmp_path / "kept").is_dir() and not (tmp_path / "kept" / "MNIST").exists()
