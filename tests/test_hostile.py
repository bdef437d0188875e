"""Hostile input, round two: files that claim more memory than they hold, a model zoo that sends too
much or was poisoned, secrets in configs, environment values, crafted resume states and the
values that used to end in a traceback. Each case reproduces the tester's report with real files."""

from __future__ import annotations

import csv
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

import fabricate
import official_arch as oa
from conftest import TINY, TINY_CYCLE, make_cfg, run_module
from ganlab.checkpoint import build_network, load_checkpoint, read_torch_file
from ganlab.cli import one_line, user_error
from ganlab.errors import CheckpointError, ConfigError, DataError
from ganlab.files import check_real_bytes
from ganlab.train import train
from test_official import photos, translate_cfg
from test_pix2pix import TINY_P2P

# --- weights that claim more than their bytes (issue 23, point 4) ---


def as_views(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same keys and shapes, each a stride-0 view of one element: a few KB on disk."""
    return {k: torch.zeros(1, dtype=v.dtype).expand(v.shape) if v.dim() else v for k, v in state.items()}


def test_an_official_file_of_stride0_views_is_refused_before_building(tmp_path: Path) -> None:
    real = oa.ResnetGenerator(3, 3, ngf=16, n_blocks=9).state_dict()
    torch.save(as_views(real), tmp_path / "views.pth")
    assert (tmp_path / "views.pth").stat().st_size < 64_000  # the ~1 MB of weights it claims are not there
    image = photos(tmp_path / "in", n=1)[0]
    cfg = translate_cfg(ckpt=tmp_path / "views.pth", input=image, output=tmp_path / "o.png", device="cpu")
    from ganlab.translate import translate_folder

    with pytest.raises(CheckpointError, match=r"stride-0 or overlapping view.*refusing"):
        translate_folder(cfg)
    assert not (tmp_path / "o.png").exists()


def test_a_ganlab_checkpoint_with_view_weights_is_refused(dcgan_ckpt: Path, tmp_path: Path) -> None:
    ckpt = torch.load(dcgan_ckpt, map_location="cpu", weights_only=True)
    ckpt["state_dict"] = {
        k: (torch.zeros(1).expand(v.shape) if k.startswith("generator.") and v.dim() > 1 else v)
        for k, v in ckpt["state_dict"].items()
    }
    torch.save(ckpt, tmp_path / "views.ckpt")
    with pytest.raises(CheckpointError, match=r"ckpt=.*views\.ckpt holds a tensor of shape .* stride-0"):
        load_checkpoint(tmp_path / "views.ckpt")
    genuine = load_checkpoint(dcgan_ckpt)  # the real file passes and rebuilds
    assert build_network(genuine, "generator", "generator.") is not None


def test_one_storage_under_many_names_is_refused(tmp_path: Path) -> None:
    block = torch.randn(256, 256)  # 256 KB of real bytes, named 64 times: 16 MB claimed
    torch.save({f"layer{i}.weight": block for i in range(64)}, tmp_path / "shared.pth")
    with pytest.raises(CheckpointError, match="one storage under many names"):
        read_torch_file(tmp_path / "shared.pth")
    tied = {"embed.weight": block, "head.weight": block}  # tied weights (two names) are legitimate
    check_real_bytes(tied, "tied")


# --- the model zoo: a size cap, a cache that cannot be poisoned (point 5) ---


def test_the_zoo_cuts_off_an_oversized_download_and_keeps_nothing(
    tmp_path: Path, http_root, monkeypatch
) -> None:
    from ganlab import official
    from ganlab.translate import translate_folder

    base, served = http_root
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(official, "ZOO_URL", base + "{name}.pth")
    monkeypatch.setattr(official, "ZOO_MAX_BYTES", 50_000)
    torch.save(oa.ResnetGenerator(3, 3, ngf=16, n_blocks=9).state_dict(), served / "horse2zebra.pth")
    assert (served / "horse2zebra.pth").stat().st_size > 50_000
    image = photos(tmp_path / "in", n=1)[0]
    cfg = translate_cfg(ckpt="official:horse2zebra", input=image, output=tmp_path / "o.png", device="cpu")
    with pytest.raises(CheckpointError, match=r"larger than .* GB; refusing"):
        translate_folder(cfg)
    hub = tmp_path / "hub" / "checkpoints"
    assert not hub.exists() or not any(hub.iterdir())


def test_a_poisoned_zoo_cache_is_never_used_and_fetched_again(tmp_path: Path, http_root, monkeypatch) -> None:
    from ganlab import official
    from ganlab.translate import translate_folder

    base, served = http_root
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(official, "ZOO_URL", base + "{name}.pth")
    cached = tmp_path / "hub" / "checkpoints" / "cyclegan_horse2zebra.pth"
    cached.parent.mkdir(parents=True)
    torch.save(as_views(oa.ResnetGenerator(3, 3, ngf=16, n_blocks=9).state_dict()), cached)  # poisoned
    image = photos(tmp_path / "in", n=1)[0]
    cfg = translate_cfg(ckpt="official:horse2zebra", input=image, output=tmp_path / "o.png", device="cpu")
    with pytest.raises(CheckpointError, match=r"download .* failed"):  # the server does not have it yet
        translate_folder(cfg)
    assert not cached.exists()  # the bad file is gone, not used
    generator = oa.randomise(oa.ResnetGenerator(3, 3, ngf=4, n_blocks=9), seed=7)
    torch.save(generator.state_dict(), served / "horse2zebra.pth")
    translate_folder(cfg)
    assert (tmp_path / "o.png").is_file() and cached.is_file()


def test_a_pickled_fid_cache_file_is_reported_in_ganlabs_words(tmp_path: Path) -> None:
    from ganlab.metrics.cache import RealStatsCache

    cache = RealStatsCache(tmp_path)
    meta = {"dataset": "x"}
    path = cache.path(meta)
    path.parent.mkdir(parents=True)
    torch.save({"meta": meta, "state": oa.ResnetGenerator(3, 3, ngf=2, n_blocks=1)}, path)  # an object
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.load(meta) is None
    text = " ".join(str(w.message) for w in caught)
    assert "holds a Python object" in text and "weights_only" not in text
    assert not path.exists()


# --- translate counts the whole image, not one tile (point 6) ---


def test_a_huge_native_image_is_refused_from_its_header_whatever_the_tile(tmp_path: Path) -> None:
    from ganlab.translate import translate_folder

    torch.save(oa.ResnetGenerator(3, 3, ngf=2, n_blocks=1).state_dict(), tmp_path / "g.pth")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "huge.png").write_bytes(fabricate.png_claiming(12000, 12000))
    common = {"ckpt": tmp_path / "g.pth", "input": tmp_path / "in", "size": "native", "device": "cpu"}
    cfg = translate_cfg(**common, output=tmp_path / "out", tile=512, max_memory_gb=1)
    with pytest.raises(
        ConfigError, match=r"huge.png \(12000×12000\).*tile=512.*GB of it for the full-size image"
    ):
        translate_folder(cfg)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # two CLI runs, one of them a 4000 × 4000 photo in tiles
def test_tiled_translation_stays_within_max_memory_gb(tmp_path: Path) -> None:
    """Peak RSS of a tiled 16-megapixel translation, over the same command on a small photo, stays
    under the budget it was given (before: ~55 bytes a pixel, 0.9 GB over a 0.5 GB budget)."""
    torch.save(oa.ResnetGenerator(3, 3, ngf=2, n_blocks=1).state_dict(), tmp_path / "g.pth")
    rng = np.random.default_rng(0)
    for name, side in (("small", 64), ("big", 4000)):
        smooth = rng.integers(0, 255, (side // 50 + 2, side // 50 + 2, 3), dtype=np.uint8)
        (tmp_path / name).mkdir()
        Image.fromarray(smooth).resize((side, side), Image.BILINEAR).save(tmp_path / name / "photo.png")
    peak = {}
    for name in ("small", "big"):
        args = [
            f"ckpt={tmp_path / 'g.pth'}",
            f"input={tmp_path / name}",
            f"output={tmp_path / (name + '_out')}",
        ]
        args += ["size=native", "tile=512", "max_memory_gb=0.5", "device=cpu"]
        script = (
            "import resource, sys\nfrom ganlab.translate import main\n"
            "sys.argv = ['translate', *sys.argv[1:]]\n"
            "try:\n    main()\nfinally:\n"
            "    print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr[-2000:]
        peak[name] = int(done.stderr.split("PEAK")[-1].split()[0]) * 1024
    assert Image.open(tmp_path / "big_out" / "photo.png").size == (4000, 4000)
    assert peak["big"] - peak["small"] < 0.5e9, peak


# --- photos are read upright (EXIF orientation) ---


def _sideways_jpeg(path: Path) -> Image.Image:
    """A 60 × 40 photo stored as a camera held sideways stores it: 40 × 60 with orientation 6."""
    upright = Image.new("RGB", (60, 40), (0, 0, 255))
    upright.paste((255, 0, 0), (0, 0, 30, 40))  # left half red
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote (orientation 6)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, quality=95, exif=exif)
    return upright


def test_exif_orientation_is_applied_by_every_reader(tmp_path: Path) -> None:
    from ganlab.data.decode import decode_checked
    from ganlab.data.images import image_size, load_rgb

    upright = np.asarray(_sideways_jpeg(tmp_path / "phone.jpg")).astype(int)
    assert Image.open(tmp_path / "phone.jpg").size == (40, 60)  # stored sideways
    pil = np.asarray(load_rgb(tmp_path / "phone.jpg")).astype(int)
    decoded = decode_checked(tmp_path / "phone.jpg", 3).permute(1, 2, 0).numpy().astype(int)
    assert image_size(tmp_path / "phone.jpg") == (60, 40)
    for read in (pil, decoded):
        assert read.shape == upright.shape and np.abs(read - upright).mean() < 4


# --- secrets: credentials in URLs never reach a file or the console (point 10) ---


def test_credentials_in_urls_are_masked_in_every_file_and_line(tmp_path: Path, mnist_root: Path) -> None:
    """A one-job sweep with a mirror URL holding a password and a token, W&B (offline, every
    checkpoint uploaded) and CSV logging: no file it writes (checkpoints, hparams.yaml, result.json,
    .hydra/, multirun.yaml, summary, train.log, the W&B run and its staged checkpoint copies, which
    the console names) and no console line holds them; the mask does."""
    secret = "s3cr3tPW"
    token = "tok3nXYZ"
    args = [
        "-m",
        *TINY,
        f"paths.data_dir={mnist_root}",
        "logger=[wandb,csv]",
        f"data.mirrors=['http://alice:{secret}@127.0.0.1:9/mnist/','http://127.0.0.1:9/m/?token={token}']",
        "logger.wandb.log_model=all",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    done = run_module("ganlab.train", *args, cwd=tmp_path, env={"WANDB_DATA_DIR": str(tmp_path / "wdata")})
    assert done.returncode == 0, done.stderr[-3000:]
    staging = tmp_path / "wdata" / "artifacts" / "staging"
    assert f"W&B keeps a copy of each in {staging} (outside the run directory)" in done.stdout + done.stderr
    assert any(staging.iterdir())  # what the line says: offline, the staged copies stay until `wandb sync`
    written = [p for p in [*(tmp_path / "sweep").rglob("*"), *staging.rglob("*")] if p.is_file()]
    names = {p.name for p in written}
    assert {"last.ckpt", "hparams.yaml", "result.json", "overrides.yaml", "multirun.yaml"} <= names, names
    assert any(p.suffix == ".wandb" for p in written)
    for path in written:
        data = path.read_bytes()
        assert secret.encode() not in data and token.encode() not in data, path
    assert secret not in done.stdout + done.stderr and token not in done.stdout + done.stderr
    overrides = (tmp_path / "sweep" / "0" / ".hydra" / "overrides.yaml").read_text()
    assert "http://***@127.0.0.1:9/mnist/" in overrides and "token=***" in overrides
    ckpt = torch.load(tmp_path / "sweep" / "0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ganlab_config"]["data"]["mirrors"][0] == "http://***@127.0.0.1:9/mnist/"


def test_a_failed_download_names_the_url_without_its_password(tmp_path: Path) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    done = run_module(
        "ganlab.train",
        *TINY,
        f"paths.data_dir={empty}",
        "data.mirrors=[http://alice:pw123456@127.0.0.1:9/]",
        f"hydra.run.dir={tmp_path / 'run'}",
        "logger=none",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: MNIST not found") and "http://***@127.0.0.1:9/" in last
    assert "pw123456" not in done.stdout + done.stderr


# --- environment values are taken literally (point 11) ---


def test_an_interpolation_in_an_environment_folder_is_refused_not_resolved(tmp_path: Path) -> None:
    env = {"SECRET_TOKEN": "hunter2", "GANLAB_DATA_DIR": "${oc.env:SECRET_TOKEN}"}
    done = run_module("ganlab.train", *TINY, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: GANLAB_DATA_DIR holds an interpolation ('${oc.env:SECRET_TOKEN}'); environment values are "
        "taken literally, never resolved: set GANLAB_DATA_DIR to a plain folder path"
    ]
    assert "hunter2" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []  # no run folder, no folder named after the secret


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/etc/hostname", "GANLAB_DATA_DIR=/etc/hostname is a file, not a folder"),
        ("/proc/self/fd", "GANLAB_DATA_DIR=/proc/self/fd is inside /proc, a kernel file system"),
        ("/sys", "is inside /sys, a kernel file system"),
    ],
)
def test_environment_folders_that_cannot_hold_data_are_one_line(
    monkeypatch, value: str, expected: str
) -> None:
    from ganlab.resolvers import folder_from_env

    monkeypatch.setenv("GANLAB_DATA_DIR", value)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        folder_from_env("GANLAB_DATA_DIR", "data")
    monkeypatch.setenv("GANLAB_DATA_DIR", "/tmp/ganlab data/${x")
    with pytest.raises(ConfigError, match="holds an interpolation"):
        folder_from_env("GANLAB_DATA_DIR", "data")
    monkeypatch.setenv("GANLAB_DATA_DIR", "/tmp/a folder with $dollar")
    assert folder_from_env("GANLAB_DATA_DIR", "data") == "/tmp/a folder with $dollar"  # literally
    monkeypatch.delenv("GANLAB_DATA_DIR")
    assert folder_from_env("GANLAB_DATA_DIR", "data") == "data"


# --- a parallel sweep outlives one dead job (point 12) ---

KILLER = '''
import os, signal
import lightning as L


class KillSelf(L.Callback):
    """SIGKILLs its own process at iteration 3 when the job's seed is ``victim`` (the OOM killer)."""

    def __init__(self, seed, victim):
        self.doomed = seed == victim

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.doomed and module.iteration == 3:
            os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.mark.slow  # a two-job parallel sweep (~12 s): CI's slow step
def test_a_killed_job_of_a_parallel_sweep_fails_alone(tmp_path: Path, mnist_root: Path) -> None:
    (tmp_path / "killer.py").write_text(KILLER)
    sweep = tmp_path / "sweep"
    done = run_module(
        "ganlab.train",
        "-m",
        *TINY,
        f"paths.data_dir={mnist_root}",
        "logger=csv",
        "hydra/launcher=parallel",
        "seed=1,2",
        "+callbacks.kill._target_=killer.KillSelf",
        "+callbacks.kill.seed=${seed}",
        "+callbacks.kill.victim=2",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1].startswith("error: 1 of 2 sweep job(s) did not complete")
    console = done.stdout + done.stderr  # each job's process as quiet as a single run (issue 24)
    for noise in ("litlogger", "set_vital", "LeafSpec", "already configured with model summary", "Warning"):
        assert noise not in console, noise
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    by_job = {r["job"]: r for r in rows}
    assert by_job["0"]["status"] == "completed" and by_job["0"]["iteration"] == "4"
    assert by_job["1"]["status"] == "failed" and "killed by SIGKILL" in by_job["1"]["error"]
    healthy = torch.load(sweep / "0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert healthy["iteration"] == 4
    assert torch.load(sweep / "1" / "checkpoints" / "last.ckpt", weights_only=True)["iteration"] == 2


def test_a_known_set_too_large_is_not_that_set(tmp_path: Path, http_root, monkeypatch) -> None:
    """horse2zebra's cap is its measured size, not data.max_extract_gb: the advice says so."""
    import io
    import zipfile

    from ganlab.data import downloads

    base, served = http_root
    monkeypatch.setitem(downloads.KNOWN_SIZES, "toy", 1000)
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w", zipfile.ZIP_DEFLATED) as zf:
        for split in ("trainA", "trainB", "testA", "testB"):
            zf.writestr(f"toy/{split}/a.png", bytes(2000))
    (served / "toy.zip").write_bytes(blob.getvalue())
    with pytest.raises(Exception, match=r"it is not the official toy: delete it") as err:
        downloads.download_cyclegan("toy", tmp_path / "data", url=base + "toy.zip", max_extract_gb=10)
    assert "max_extract_gb" not in str(err.value)


# --- one line where a traceback was: sizes and depths that cannot train ---


def refusal(run, kind: type[Exception]) -> str:
    """The one line the command would print for what ``run`` raises (hydra.instantiate wraps it)."""
    with pytest.raises(Exception) as raised:
        run()
    error = user_error(raised.value)
    assert isinstance(error, kind), raised.value
    return one_line(error)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fabricate.paired_folder(tmp_path_factory.mktemp("pairs"))


@pytest.fixture(scope="module")
def unpaired(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = fabricate.unpaired_folder(tmp_path_factory.mktemp("unpaired"))
    (root / "trainA" / "zz_corrupt.jpg").unlink()
    return root


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["data.crop_size=0"], r"data.crop_size=0 must be a whole number of pixels from 1 to 4096"),
        (["data.crop_size=-4"], r"data.crop_size=-4 must be"),
        (["data.crop_size=100000"], r"data.crop_size=100000 must be .* from 1 to 4096"),
        (["data.crop_size=40"], r"data.crop_size=40 is larger than data.load_size=36"),
        (
            ["data.crop_size=33"],
            r"turns a 33×33 crop into 36×36; CycleGAN's losses .* data.crop_size=32 or 36",
        ),
        (["data.crop_size=7"], r"turns a 7×7 crop into 8×8"),
    ],
)
def test_cyclegan_crop_sizes_that_cannot_train_are_one_line(
    tmp_path: Path, unpaired: Path, overrides: list[str], expected: str
) -> None:
    cfg = make_cfg(tmp_path, [*TINY_CYCLE, f"data.root={unpaired}", *overrides])
    assert re.search(expected, refusal(lambda: train(cfg), ConfigError))
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["model.generator.num_downs=20"],
            r"model.generator \(UnetGenerator, num_downs=20\) cannot take a 32×32",
        ),
        (
            ["model.discriminator.n_layers=10"],
            r"model.discriminator \(PatchDiscriminator, n_layers=10\) cannot",
        ),
        (
            ["model.discriminator.in_channels=3"],
            r"takes 3-channel images but pix2pix feeds it 6 channels; set model.discriminator.in_channels=6",
        ),
    ],
)
def test_pix2pix_depths_that_cannot_train_are_one_line(
    tmp_path: Path, pairs: Path, overrides: list[str], expected: str
) -> None:
    cfg = make_cfg(tmp_path, [*TINY_P2P, f"data.root={pairs}", "trainer.max_epochs=1", *overrides])
    assert re.search(expected, refusal(lambda: train(cfg), ConfigError))


def test_a_wandb_run_id_that_is_a_path_is_refused() -> None:
    from ganlab.loggers import wandb_logger

    with pytest.raises(ConfigError, match=r"logger.wandb.id=../../x is not a W&B run id"):
        wandb_logger(mode="disabled", id="../../x")


# --- crafted resume states ---


@pytest.fixture(scope="module")
def mid_epoch(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Path:
    """A DCGAN checkpoint saved mid-epoch (iteration 2 of 4): its sampler state is restored on resume."""
    run = tmp_path_factory.mktemp("mid")
    train(make_cfg(run, [*TINY, f"paths.data_dir={mnist_root}", "logger=none", "max_iters=2"]))
    return run / "checkpoints" / "last.ckpt"


def _sampler_state(ckpt: dict) -> dict:
    return ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["_sampler_iter_state"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c.__setitem__("loops", {"fit_loop": "garbage"}), r"cannot be restored \(AttributeError"),
        (lambda c: c.__setitem__("optimizer_states", [{"state": {}}, 3]), r"cannot be restored \(KeyError"),
        (lambda c: c.__setitem__("rng_state", 1.5), r"rng_state is float, not a generator state"),
        (lambda c: c.__setitem__("rng_states", "x"), r"rng_states is str, not one generator state per rank"),
        (lambda c: _sampler_state(c).__setitem__("samples_yielded", "x"), r"samples_yielded is str 'x'"),
        (
            lambda c: _sampler_state(c)["sampler_iter_state"].__setitem__("generator", 1.5),
            r"sampler_iter_state.generator is float",
        ),
    ],
)
def test_crafted_resume_states_are_one_line(
    tmp_path: Path, mnist_root: Path, mid_epoch: Path, edit, expected: str
) -> None:
    ckpt = torch.load(mid_epoch, map_location="cpu", weights_only=True)
    edit(ckpt)
    torch.save(ckpt, tmp_path / "crafted.ckpt")
    cfg = make_cfg(
        tmp_path / "run",
        [
            *TINY,
            f"paths.data_dir={mnist_root}",
            "logger=none",
            "max_iters=4",
            f"ckpt_path={tmp_path / 'crafted.ckpt'}",
        ],
    )
    with pytest.raises(CheckpointError, match=expected):
        train(cfg)


def test_the_genuine_mid_epoch_checkpoint_resumes(tmp_path: Path, mnist_root: Path, mid_epoch: Path) -> None:
    cfg = make_cfg(
        tmp_path,
        [*TINY, f"paths.data_dir={mnist_root}", "logger=none", "max_iters=4", f"ckpt_path={mid_epoch}"],
    )
    train(cfg)
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["iteration"] == 4


# --- crafted official files and photos translate cannot take ---


def _last_conv_index(state: dict) -> int:
    return max(int(k.split(".")[1]) for k in state if re.fullmatch(r"model\.\d+\.weight", k))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda: {
                **(s := oa.ResnetGenerator(3, 3, ngf=4, n_blocks=2).state_dict()),
                f"model.{_last_conv_index(s)}.weight": torch.tensor(1.0),
            },
            r"is a state dict but not an official CycleGAN/pix2pix network",
        ),
        (
            lambda: oa.UnetGenerator(3, 3, 9, ngf=4).state_dict(),
            r"unet_512 .* cannot take a 256×256 image .* crop_size=512",
        ),
        (
            lambda: oa.ResnetGenerator(1, 3, ngf=4, n_blocks=2).state_dict(),
            r"takes 1-channel images; translate reads photos as RGB",
        ),
    ],
)
def test_official_files_translate_cannot_use_are_one_line(tmp_path: Path, make, expected: str) -> None:
    from ganlab.translate import translate_folder

    torch.save(make(), tmp_path / "g.pth")
    image = photos(tmp_path / "in", n=1)[0]
    cfg = translate_cfg(ckpt=tmp_path / "g.pth", input=image, output=tmp_path / "o.png", device="cpu")
    with pytest.raises((CheckpointError, ConfigError), match=expected):
        translate_folder(cfg)
    assert not (tmp_path / "o.png").exists()


# --- data files ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2\nSmiling Young\na.jpg 1 -1\nb.jpg 1 x\n", r"line 4 is not a file name and 2 values"),
        ("2\nSmiling Young\na.jpg 1 -1\nb.jpg 1\n", r"line 4 is not a file name and 2 values"),
        ("2\n", r"has no header"),
    ],
)
def test_a_damaged_celeba_attribute_file_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    from ganlab.data.sets.celeba import read_attributes

    (tmp_path / "list_attr_celeba.txt").write_text(text)
    with pytest.raises(DataError, match=expected):
        read_attributes(tmp_path / "list_attr_celeba.txt")


def test_an_a_b_image_too_narrow_to_split_is_one_line() -> None:
    from ganlab.data.sets.paired import split_pair

    for size in ((1, 1), (1, 40)):
        with pytest.raises(DataError, match=r"p.png is 1×\d+ px: an A\|B pair .* at least 2 px"):
            split_pair(Image.new("RGB", size), "AtoB", "p.png")
    a, b = split_pair(Image.new("RGB", (2, 1)), "AtoB", "p.png")
    assert a.shape == b.shape == (3, 1, 1)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--cases", "foo"], "error: --cases foo: not among dcgan28"),
        (["--cases", "loader", "--folder", "/nonexistent"], "error: --folder /nonexistent: not a folder"),
        (["--workers", "-1"], "error: --workers -1: must be ≥ 0"),
        (["--device", "bogus"], "error: --device bogus: not a torch device"),
    ],
)
def test_bench_options_are_one_line(monkeypatch, args: list[str], expected: str) -> None:
    from ganlab import bench

    monkeypatch.setattr(sys, "argv", ["ganlab-bench", *args])
    with pytest.raises(SystemExit) as stopped:
        bench.main()
    assert str(stopped.value).startswith(expected)


def test_an_output_that_is_a_folder_is_one_line_even_with_overwrite(dcgan_ckpt: Path, tmp_path: Path) -> None:
    from ganlab.export import export_onnx
    from ganlab.train import CONFIG_DIR

    (tmp_path / "g.onnx").mkdir()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "export", [f"ckpt={dcgan_ckpt}", "format=onnx", f"output={tmp_path / 'g.onnx'}", "overwrite=true"]
        )
    assert re.fullmatch(
        r".*g\.onnx is a folder; give a file name .*", refusal(lambda: export_onnx(cfg), ConfigError)
    )
    assert (tmp_path / "g.onnx").is_dir() and not list(tmp_path.glob(".g.onnx*"))


def test_ctrl_c_while_a_command_starts_is_one_line(dcgan_ckpt: Path, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "ganlab.generate", f"ckpt={dcgan_ckpt}", f"output={tmp_path / 'out'}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    time.sleep(1.0)  # importing torch and Lightning
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode in (-signal.SIGINT, 130), err
    assert err.strip().splitlines() == ["error: interrupted (Ctrl-C) while starting; nothing was run"], err
    assert not (tmp_path / "out").exists()
