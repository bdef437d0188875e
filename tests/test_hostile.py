"""Hostile input, round two: files that claim more memory than they hold, a model zoo that sends too
much or was poisoned, secrets in configs, environment values, crafted resume states and the
values that used to end in a traceback. Each case reproduces the tester's report with real files."""

from __future__ import annotations

import csv
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import official_arch as oa
from conftest import TINY, run_module
from ganlab.checkpoint import build_network, load_checkpoint, read_torch_file
from ganlab.errors import CheckpointError, ConfigError
from ganlab.files import check_real_bytes
from test_official import photos, translate_cfg

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


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header says width × height, with a few bytes of data: only the header is real."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (  # noqa: E731
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_a_huge_native_image_is_refused_from_its_header_whatever_the_tile(tmp_path: Path) -> None:
    from ganlab.translate import translate_folder

    torch.save(oa.ResnetGenerator(3, 3, ngf=2, n_blocks=1).state_dict(), tmp_path / "g.pth")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "huge.png").write_bytes(_png_claiming(12000, 12000))
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


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GANLAB_DATA_DIR": "${oc.env:SECRET_TOKEN}"}, "GANLAB_DATA_DIR holds an interpolation"),
        ({"GANLAB_DATA_DIR": "/etc/hostname"}, "GANLAB_DATA_DIR=/etc/hostname is a file, not a folder"),
        ({"GANLAB_CACHE_DIR": "/proc/self/fd"}, "is inside /proc, a kernel file system"),
    ],
)
def test_environment_folders_are_literal_and_checked(tmp_path: Path, env: dict, expected: str) -> None:
    done = run_module(
        "ganlab.train",
        *TINY,
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        env={"SECRET_TOKEN": "hunter2", **env},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: {done.stderr.strip()[7:]}"]  # one line
    assert expected in done.stderr and "hunter2" not in done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no run folder, no folder named after a secret


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
