"""Files are data: every attack of the files-are-data issue, reproduced, ends in one line with
nothing executed, deleted, overwritten or exhausted."""

from __future__ import annotations

import base64
import copy
import io
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import fabricate
from conftest import TINY_CYCLE, make_cfg, run_module
from ganlab.checkpoint import build_datamodule, build_module, build_network, check_config
from ganlab.data.archive import safe_extract
from ganlab.data.downloads import download_cyclegan
from ganlab.data.images import load_rgb, readable_images
from ganlab.data.mnist import MNISTDataModule
from ganlab.errors import CheckpointError, DataError
from ganlab.metrics.inception import InceptionFeatures, WrongWeightsError, resolve_weights
from ganlab.train import train
from ganlab.translate import run_generator, run_tiled


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = fabricate.unpaired_folder(tmp_path_factory.mktemp("unpaired"))
    (root / "trainA" / "zz_corrupt.jpg").unlink()
    return root


@pytest.fixture(scope="module")
def cyclegan_ckpt(tmp_path_factory: pytest.TempPathFactory, photos: Path) -> Path:
    run = tmp_path_factory.mktemp("cyclegan")
    train(make_cfg(run, [*TINY_CYCLE, f"data.root={photos}"]))
    return run / "checkpoints" / "last.ckpt"


def craft(source: Path, out: Path, edit) -> Path:
    """A copy of a real checkpoint with its stored config edited, still plain data (weights_only)."""
    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    edit(ckpt)
    torch.save(ckpt, out)
    torch.load(out, weights_only=True)  # the hostile file passes weights_only loading
    return out


def copy_payload(victim: Path, marker: Path) -> dict[str, Any]:
    # starts with "ganlab.data.": the old prefix allow-list let it through, and Hydra called shutil.copy
    return {"_target_": "ganlab.data.archive.shutil.copy", "src": str(victim), "dst": str(marker)}


def copying_checkpoint(source: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(a copy of ``source`` whose generator config names shutil.copy, the file that copy would make)."""
    marker, victim = tmp_path / "copied", tmp_path / "victim.txt"
    victim.write_text("secret")
    payload = copy_payload(victim, marker)
    edit = lambda c: c["ganlab_config"]["model"].update(generator=payload)  # noqa: E731
    return craft(source, tmp_path / "evil.ckpt", edit), marker


def one_line_refusal(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]


# --- 1. a checkpoint's stored config never chooses code ---


@pytest.mark.parametrize("tool", ["generate", "explore", "evaluate", "train"])
def test_dcgan_tools_refuse_a_config_naming_code(tool: str, dcgan_ckpt: Path, tmp_path: Path) -> None:
    evil, marker = copying_checkpoint(dcgan_ckpt, tmp_path)
    args = {
        "generate": ["ganlab.generate", f"ckpt={evil}", f"output={tmp_path / 'out'}"],
        "explore": ["ganlab.explore", f"ckpt={evil}", f"output={tmp_path / 'walk.png'}"],
        "evaluate": ["ganlab.evaluate", f"ckpt={evil}", "metrics.fid.weights_path=nonexistent.pth"],
        "train": ["ganlab.train", f"ckpt_path={evil}", "logger=none", "metrics=none", "trainer=cpu"],
    }[tool]
    result = run_module(*args, cwd=tmp_path)
    one_line_refusal(result, "model.generator._target_", "ganlab.data.archive.shutil.copy", "nothing was run")
    assert not marker.exists()


def test_translate_refuses_a_config_naming_code(cyclegan_ckpt: Path, photos: Path, tmp_path: Path) -> None:
    evil, marker = copying_checkpoint(cyclegan_ckpt, tmp_path)
    result = run_module(
        "ganlab.translate",
        f"ckpt={evil}",
        f"input={photos / 'testA'}",
        f"output={tmp_path / 'out'}",
        cwd=tmp_path,
    )
    one_line_refusal(result, "model.generator._target_", "shutil.copy")
    assert not marker.exists() and not (tmp_path / "out").exists()


def _chain(marker: Path) -> dict[str, Any]:
    """The issue's chain: torch.load(weights_only=False) of bytes decoded from base64, all named
    by strings under the old allow-listed prefixes."""
    blob = base64.b64encode(pickle.dumps({"x": 1})).decode()
    return {
        "_target_": "torch.optim.optimizer.torch.load",
        "f": {
            "_target_": "ganlab.data.archive.tarfile.io.BytesIO",
            "initial_bytes": {"_target_": "ganlab.data.archive.zipfile.binascii.a2b_base64", "data": blob},
        },
        "weights_only": False,
    }


def _set(path: str, value: Any):
    def edit(ckpt: dict) -> None:
        *parents, last = path.split(".")
        node = ckpt["ganlab_config"] if parents and parents[0] in ("model", "data") else ckpt
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


HOSTILE = [  # (what is edited, its value, what the one line must name)
    ("model.optimizer", "CHAIN", "model.optimizer._target_ names 'torch.optim.optimizer.torch.load'"),
    (
        "model._target_",
        "ganlab.modules.dcgan.torch.load",
        "model._target_ names 'ganlab.modules.dcgan.torch.load'",
    ),
    ("model.generator._target_", "ganlab.nets.dcgan.nn.Module", "model.generator._target_"),
    (
        "model.generator.ngf",
        {"_target_": "os.getcwd"},
        "model.generator.ngf holds a nested config naming 'os.getcwd'",
    ),
    ("model.generator._args_", ["rm"], "model.generator._args_ is not a plain argument"),
    ("model.generator._partial_", "yes", "model.generator._partial_ is not true or false"),
    ("model.generator.evil", 1, "model.generator.evil is not an argument of Generator"),
    ("model.generator.ngf", 10**9, "model.generator.ngf is 1000000000, above the limit"),
    ("model.loss", {"_target_": "builtins.eval"}, "model.loss._target_ names 'builtins.eval', which is not"),
    (
        "data._target_",
        "ganlab.data.archive.shutil.rmtree",
        "data._target_ names 'ganlab.data.archive.shutil.rmtree'",
    ),
    ("data.image_size", 1 << 20, "data.image_size is 1048576, above the limit of 4096"),
    ("wandb_run_id", "../../../home", "wandb_run_id is '../../../home', not a W&B run id"),
]


@pytest.mark.parametrize(
    ("path", "value", "expected"), HOSTILE, ids=[h[0] + "=" + str(h[1])[:12] for h in HOSTILE]
)
def test_hostile_configs_are_refused_naming_the_key(dcgan_ckpt, tmp_path, path, value, expected) -> None:
    value = _chain(tmp_path / "m") if value == "CHAIN" else value
    ckpt = torch.load(craft(dcgan_ckpt, tmp_path / "e.ckpt", _set(path, value)), weights_only=True)
    with pytest.raises(CheckpointError, match=expected.replace("(", r"\(").replace("[", r"\[")) as err:
        check_config(ckpt)
        build_module(ckpt)
    assert "\n" not in str(err.value)


def test_a_pickled_object_in_a_checkpoint_is_refused_without_running(
    dcgan_ckpt: Path, tmp_path: Path
) -> None:
    marker, evil = tmp_path / "ran", tmp_path / "pickle.ckpt"
    torch.save({**torch.load(dcgan_ckpt, weights_only=True), "extra": _Touch(marker)}, evil)
    result = run_module("ganlab.generate", f"ckpt={evil}", f"output={tmp_path / 'out'}", cwd=tmp_path)
    one_line_refusal(result, "holds a Python object (io.open)", "nothing was run")
    assert not marker.exists() and "weights_only" not in result.stderr


def test_a_genuine_checkpoint_rebuilds_from_the_registry(dcgan_ckpt: Path, tmp_path: Path) -> None:
    ckpt = torch.load(dcgan_ckpt, weights_only=True)
    check_config(ckpt)
    module = build_module(ckpt)
    net = build_network(ckpt, "generator", "generator.")
    z = torch.randn(2, net.latent_dim)
    assert torch.equal(module.generator.eval()(z), net(z))  # same weights either way
    dm = build_datamodule(ckpt, str(tmp_path))
    assert type(dm).__name__ == "MNISTDataModule" and dm.data_dir == str(tmp_path)
    assert dm.mirrors is None  # a file never chooses where ganlab downloads from
    ckpt["ganlab_config"]["data"]["data_dir"] = str(tmp_path / "a folder the file names")
    assert build_datamodule(ckpt, None).data_dir == "data"  # nor where it writes: the user's default


def test_a_config_larger_than_its_weights_is_refused_before_allocating(
    dcgan_ckpt: Path, tmp_path: Path
) -> None:
    # ngf 60000 would allocate tens of GB; the meta-device probe compares shapes first
    ckpt = torch.load(
        craft(dcgan_ckpt, tmp_path / "big.ckpt", _set("model.generator.ngf", 60000)), weights_only=True
    )
    with pytest.raises(CheckpointError, match=r"do not fit model\.generator"):
        build_network(ckpt, "generator", "generator.")
    with pytest.raises(CheckpointError, match="the file holds"):
        build_module(ckpt)


# --- 2. a weights file never runs code ---


class _Touch:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_code_as_inception_weights_never_runs(tmp_path: Path) -> None:
    marker, evil = tmp_path / "ran", tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save({"conv.weight": _Touch(marker)}, evil)
    torch.load(evil, weights_only=False)  # the payload is real: an unsafe load runs it ...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(
        WrongWeightsError, match=r"not torch-fidelity's Inception weights \(sha256 [0-9a-f]{16}"
    ):
        resolve_weights(str(evil))
    assert resolve_weights(str(evil), allow_other=True) == evil  # deliberate use ...
    with pytest.raises(WrongWeightsError, match="holds a Python object") as refused:
        InceptionFeatures(evil, dim=64)  # ... still reads tensors only
    assert "weights_only" not in str(refused.value)
    real, fake = tmp_path / "real", tmp_path / "fake"
    for folder in (real, fake):
        folder.mkdir()
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(folder / f"{i}.png")
    for extra in ([], ["metrics.fid.allow_other_weights=true"]):
        result = run_module(
            "ganlab.evaluate", f"real={real}", f"fake={fake}", f"metrics.fid.weights_path={evil}", *extra,
            f"paths.cache_dir={tmp_path / 'cache'}", cwd=tmp_path,
        )  # fmt: skip
        one_line_refusal(result, str(evil))
    assert not marker.exists()


# --- 3. downloads and extraction never delete the user's folders ---


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return buffer.getvalue()


def _toy(name: str = "toy") -> dict[str, bytes]:
    return {f"{name}/{s}/0.png": _png() for s in ("trainA", "trainB", "testA", "testB")}


def test_an_extra_top_level_folder_in_a_download_leaves_user_data_alone(tmp_path: Path, http_root) -> None:
    url, served = http_root
    data = tmp_path / "data"
    notes = data / "MNIST" / "raw" / "notes.txt"
    notes.parent.mkdir(parents=True)
    notes.write_text("my notes")
    (served / "toy.zip").write_bytes(_zip({**_toy(), "MNIST/raw/notes.txt": b"replaced", "MNIST/x": b"x"}))
    target = download_cyclegan("toy", data, url=url + "toy.zip")
    assert notes.read_text() == "my notes" and sorted(p.name for p in notes.parent.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in target.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert sorted(p.name for p in data.iterdir()) == ["MNIST", "toy"]  # no staging left, zip removed


def test_a_partial_user_folder_is_never_replaced(tmp_path: Path, http_root) -> None:
    url, served = http_root
    data = tmp_path / "data"
    (data / "toy" / "trainA").mkdir(parents=True)
    (data / "toy" / "labels.csv").write_text("mine")
    (served / "toy.zip").write_bytes(_zip(_toy()))
    with pytest.raises(DataError, match=r"already exists but is not a complete download.*move it away"):
        download_cyclegan("toy", data, url=url + "toy.zip")
    assert (data / "toy" / "labels.csv").read_text() == "mine"
    assert sorted(p.name for p in data.iterdir()) == ["toy"]  # nothing downloaded either


def test_an_archive_that_unpacks_beyond_the_cap_is_refused(tmp_path: Path, http_root) -> None:
    url, served = http_root
    bomb = {**_toy(), "toy/trainA/zeros.png": bytes(8_000_000)}  # 8 MB of zeros: a 8 kB download
    (served / "bomb.zip").write_bytes(_zip(bomb))
    assert (served / "bomb.zip").stat().st_size < 50_000
    data = tmp_path / "data"
    with pytest.raises(DataError, match=r"more than the 0\.001 GB allowed"):
        download_cyclegan("toy", data, url=url + "bomb.zip", max_extract_gb=0.001)
    written = sum(p.stat().st_size for p in data.rglob("*") if p.is_file() and p.suffix != ".zip")
    assert written == 0 and not (data / "toy").exists()


def test_a_download_larger_than_the_cap_is_cut_off(tmp_path: Path, http_root) -> None:
    url, served = http_root
    (served / "toy.zip").write_bytes(_zip({**_toy(), "toy/trainA/noise.png": os.urandom(3_000_000)}))
    data = tmp_path / "data"
    with pytest.raises(DataError, match=r"larger than 0\.001 GB"):
        download_cyclegan("toy", data, url=url + "toy.zip", max_extract_gb=0.001)
    assert not data.exists()  # no .part, no zip, no folder (not even the one made for the zip)


def _tar_with(path: Path, members: list[tarfile.TarInfo], blobs: list[bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, blob in zip(members, blobs, strict=True):
            tf.addfile(info, io.BytesIO(blob) if info.isfile() else None)
    return path


def test_tar_setuid_bits_and_owners_are_dropped(tmp_path: Path) -> None:
    info = tarfile.TarInfo("set/tool")
    info.size, info.mode, info.uid, info.gid = 4, 0o4777, 12345, 12345
    archive = _tar_with(tmp_path / "a.tar.gz", [info], [b"#!/b"])
    out = safe_extract(archive, tmp_path / "out", "set", 1000)
    stat = (out / "tool").stat()
    assert stat.st_mode & 0o7777 == 0o644 and stat.st_uid == os.getuid()


def test_tar_running_size_cap_and_links(tmp_path: Path) -> None:
    big = tarfile.TarInfo("set/big")
    big.size = 5000
    with pytest.raises(DataError, match="unpacks to more than"):
        safe_extract(_tar_with(tmp_path / "b.tar.gz", [big], [bytes(5000)]), tmp_path / "out", "set", 4000)
    assert not (tmp_path / "out" / "set").exists()
    link = tarfile.TarInfo("set/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(DataError, match="link or device"):
        safe_extract(_tar_with(tmp_path / "l.tar.gz", [link], [b""]), tmp_path / "out", "set", 4000)


def test_a_kill_while_unpacking_mnist_leaves_no_partial_file(tmp_path: Path) -> None:
    fabricate.mnist(tmp_path, n_train=60000, n_test=16, gz=True)
    raw = tmp_path / "MNIST" / "raw"
    code = (
        "from ganlab.data.mnist import MNISTDataModule as M; "
        f"M({str(tmp_path)!r}, download=False).prepare_data()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 120
    while not list(raw.glob(".train-images-idx3-ubyte.part*")):  # the unpacking has begun
        assert proc.poll() is None and time.monotonic() < deadline, "unpacking finished before the kill"
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (raw / "train-images-idx3-ubyte").exists()  # no partial IDX under the real name
    dm = MNISTDataModule(str(tmp_path), download=False)
    dm.prepare_data()  # the next run unpacks again and works
    assert dm.load_split(train=True).shape == (60000, 1, 28, 28)


def test_a_truncated_gz_leaves_nothing_that_looks_unpacked(tmp_path: Path) -> None:
    fabricate.mnist(tmp_path, gz=True)
    packed = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    packed.write_bytes(packed.read_bytes()[:1000])
    with pytest.raises(DataError, match="is damaged"):
        MNISTDataModule(str(tmp_path), download=False).prepare_data()
    assert not (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()


# --- 4. no tool writes over its input or over existing files ---


@pytest.mark.slow
def test_translate_never_overwrites_its_input(cyclegan_ckpt: Path, photos: Path, tmp_path: Path) -> None:
    source = shutil.copytree(photos / "testA", tmp_path / "photos")
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    ckpt = f"ckpt={cyclegan_ckpt}"
    for output in (source, source / "translated", tmp_path):
        result = run_module("ganlab.translate", ckpt, f"input={source}", f"output={output}", cwd=tmp_path)
        one_line_refusal(result, "set overwrite=true")
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before
    out = tmp_path / "out"
    assert (
        run_module("ganlab.translate", ckpt, f"input={source}", f"output={out}", cwd=tmp_path).returncode == 0
    )
    first = sorted(out.iterdir())[0]
    first.write_bytes(b"mine")
    again = run_module("ganlab.translate", ckpt, f"input={source}", f"output={out}", cwd=tmp_path)
    one_line_refusal(again, str(first), "already exist")
    assert first.read_bytes() == b"mine"
    forced = run_module(
        "ganlab.translate", ckpt, f"input={source}", f"output={out}", "overwrite=true", cwd=tmp_path
    )
    assert forced.returncode == 0 and first.read_bytes() != b"mine"


def test_generate_and_explore_never_replace_files(dcgan_ckpt: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "00001.png").write_bytes(b"mine")
    (tmp_path / "walk.png").write_bytes(b"mine too")
    gen = run_module(
        "ganlab.generate", f"ckpt={dcgan_ckpt}", "n=3", f"output={tmp_path / 'out'}", cwd=tmp_path
    )
    one_line_refusal(gen, "00001.png", "overwrite=true")
    walk = run_module("ganlab.explore", f"ckpt={dcgan_ckpt}", f"output={tmp_path / 'walk.png'}", cwd=tmp_path)
    one_line_refusal(walk, "walk.png", "overwrite=true")
    assert (tmp_path / "out" / "00001.png").read_bytes() == b"mine"
    assert (tmp_path / "walk.png").read_bytes() == b"mine too"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00001.png"]


def limited(result_args: list[str], kib: int, cwd: Path) -> subprocess.CompletedProcess:
    """``args`` run again under a file-size limit of ``kib`` KiB (``ulimit -f``): every write past it
    fails with EFBIG, as a nearly full disk fails with ENOSPC."""
    env = {**os.environ, "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        ["bash", "-c", f'ulimit -f {kib} && exec "$@"', "bash", *result_args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow  # four CLI runs; CI's slow step
def test_overwrite_on_a_full_disk_keeps_every_old_file(
    cyclegan_ckpt: Path, dcgan_ckpt: Path, photos: Path, tmp_path: Path
) -> None:
    """translate and generate with overwrite=true: a write that fails leaves the old file whole, is
    one line naming the path, and exits 1 (before, both exited 0 with truncated files)."""
    source = shutil.copytree(photos / "testA", tmp_path / "photos")
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    args = [sys.executable, "-m", "ganlab.translate", f"ckpt={cyclegan_ckpt}", f"input={source}",
            f"output={source}", "overwrite=true", "size=native"]  # fmt: skip
    result = limited(args, 1, tmp_path)  # every image here is over 1 KiB
    one_line_refusal(result, "cannot write", str(source), "File too large")
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before
    grid = tmp_path / "grid.png"
    gen = [sys.executable, "-m", "ganlab.generate", f"ckpt={dcgan_ckpt}", "n=16", f"output={grid}"]
    assert subprocess.run([*gen, "seed=0"], cwd=tmp_path, capture_output=True).returncode == 0
    old = grid.read_bytes()
    result = limited([*gen, "seed=1", "overwrite=true"], len(old) // 2048, tmp_path)
    one_line_refusal(result, f"cannot write {grid}", "File too large")
    assert grid.read_bytes() == old
    assert not list(tmp_path.rglob("*.tmp"))


# --- 5. no silent corruption, no exhaustion ---


def _saved(tmp_path: Path, image: Image.Image, name: str) -> Path:
    path = tmp_path / name
    image.save(path)
    return path


def test_every_pil_mode_converts_with_known_pixels_or_is_refused(tmp_path: Path) -> None:
    gray16 = np.array([[0, 65535], [257, 32896]], dtype=np.uint16)
    png16 = _saved(tmp_path, Image.fromarray(gray16), "gray16.png")
    assert Image.open(png16).mode == "I;16"  # what Pillow makes of a 16-bit PNG
    assert Image.open(png16).convert("RGB").getpixel((0, 1)) == (255, 255, 255)  # PIL's own: white
    expected = np.array([[0, 255], [1, 128]], dtype=np.uint8)
    assert np.array_equal(np.asarray(load_rgb(png16)), np.repeat(expected[..., None], 3, axis=2))
    tiff16 = _saved(tmp_path, Image.fromarray(gray16.astype(">u2")), "big-endian.tif")
    assert np.array_equal(np.asarray(load_rgb(tiff16))[..., 0], expected)
    known = {
        "L": (Image.new("L", (2, 2), 77), (77, 77, 77)),
        "1": (Image.new("1", (2, 2), 1), (255, 255, 255)),
        "RGBA": (Image.new("RGBA", (2, 2), (10, 20, 30, 0)), (10, 20, 30)),
        "LA": (Image.new("LA", (2, 2), (90, 5)), (90, 90, 90)),
        "CMYK": (Image.new("CMYK", (2, 2), (0, 255, 255, 0)), (255, 0, 0)),
    }
    for mode, (image, rgb) in known.items():
        path = _saved(tmp_path, image, f"{mode}.{'tif' if mode == 'CMYK' else 'png'}")
        assert load_rgb(path).getpixel((1, 1)) == rgb, mode
    palette = Image.new("P", (2, 2), 1)
    palette.putpalette([0, 0, 0, 11, 22, 33] + [0] * 762)
    assert load_rgb(_saved(tmp_path, palette, "p.png")).getpixel((0, 0)) == (11, 22, 33)
    floats = _saved(tmp_path, Image.fromarray(np.ones((2, 2), dtype=np.float32)), "float.tif")
    with pytest.raises(DataError, match="pixel mode F"):
        readable_images(tmp_path, "input")
    floats.unlink()
    assert len(readable_images(tmp_path, "input")) == 8


def test_a_huge_image_is_named_as_a_bomb_with_the_way_to_raise_the_limit(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "huge.png").write_bytes(fabricate.png_claiming(20000, 20000))
    with pytest.raises(
        DataError, match=r"huge.png has 400,000,000 pixels, above the decompression-bomb limit"
    ) as err:
        readable_images(tmp_path, "input")
    assert "GANLAB_MAX_IMAGE_PIXELS" in str(err.value) and "unreadable" not in str(err.value)
    monkeypatch.setenv("GANLAB_MAX_IMAGE_PIXELS", "500000000")
    with pytest.raises(DataError, match="unreadable image"):  # past the limit: its data is missing
        readable_images(tmp_path, "input")


@pytest.mark.slow
def test_native_translation_too_large_for_memory_is_refused_or_tiled(
    cyclegan_ckpt: Path, tmp_path: Path
) -> None:
    source = tmp_path / "big"
    source.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (96, 80, 3), dtype=np.uint8)).save(source / "photo.png")
    args = [
        "ganlab.translate",
        f"ckpt={cyclegan_ckpt}",
        f"input={source}",
        "size=native",
        "max_memory_gb=0.00025",  # 250 kB: the 80×96 photo's own buffers (24 bytes a pixel) fit
    ]
    refused = run_module(*args, f"output={tmp_path / 'a'}", cwd=tmp_path)
    one_line_refusal(
        refused, "photo.png (80×96)", "largest tile that fits beside the full-size image", "tile="
    )
    assert not (tmp_path / "a").exists()
    suggested = refused.stderr.split("use tile=")[1].split()[0]
    tiled = run_module(*args, f"tile={suggested}", f"output={tmp_path / 'b'}", cwd=tmp_path)
    assert tiled.returncode == 0, tiled.stderr
    assert Image.open(tmp_path / "b" / "photo.png").size == (80, 96)


def test_tiles_blend_into_the_untiled_result_for_a_pointwise_network() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 3, kernel_size=1), nn.Tanh()).eval()
    image = torch.randint(0, 256, (1, 3, 70, 90), dtype=torch.uint8)
    whole = run_generator(net, image)
    for tile, overlap in ((32, 8), (40, 0), (64, 16)):
        assert (run_tiled(net, image, tile, overlap).int() - whole.int()).abs().max() <= 1
    # a network with spatial context: seams are blended, every pixel written
    ctx = nn.Sequential(nn.Conv2d(3, 3, kernel_size=3, padding=1), nn.Tanh()).eval()
    out = run_tiled(ctx, image, 32, 8)
    assert out.shape == image.shape and (out.int() - run_generator(ctx, image).int()).abs().float().mean() < 2


def test_the_crafted_checkpoints_are_still_valid_torch_files(dcgan_ckpt: Path, tmp_path: Path) -> None:
    # the attacks above are plain-data files: weights_only loading alone cannot stop them
    evil = craft(dcgan_ckpt, tmp_path / "e.ckpt", _set("model.optimizer", _chain(tmp_path / "m")))
    loaded = torch.load(evil, weights_only=True)
    assert loaded["ganlab_config"]["model"]["optimizer"]["_target_"] == "torch.optim.optimizer.torch.load"
    assert (
        copy.deepcopy(loaded["state_dict"]).keys()
        == torch.load(dcgan_ckpt, weights_only=True)["state_dict"].keys()
    )
