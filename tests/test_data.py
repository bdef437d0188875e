"""DataModules on fabricated files in torchvision's formats; downloads against a local server."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import fabricate
from ganlab.data.archive import safe_extract
from ganlab.data.cifar10 import CIFAR10DataModule
from ganlab.data.mnist import MNISTDataModule
from ganlab.errors import DataError


def first_batch(dm) -> torch.Tensor:
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    return dm.on_after_batch_transfer(batch, 0)


def test_mnist_batches_are_float_in_model_range(tmp_path: Path) -> None:
    arrays = fabricate.mnist(tmp_path, n_train=64, n_test=16)
    dm = MNISTDataModule(str(tmp_path), batch_size=8, download=False)
    batch = first_batch(dm)
    assert batch.shape == (8, 1, 28, 28) and batch.dtype == torch.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0
    # the pixels are the file's pixels, mapped x ↦ x / 127.5 − 1
    expected = torch.from_numpy(arrays["train"]).float() / 127.5 - 1
    assert all((expected == img[0]).all(dim=(1, 2)).any() for img in batch)
    assert len(dm.test_set) == 16


def test_mnist_resize_and_channels(tmp_path: Path) -> None:
    fabricate.mnist(tmp_path, n_train=32, n_test=8)
    dm = MNISTDataModule(str(tmp_path), batch_size=4, image_size=32, channels=3, download=False)
    assert first_batch(dm).shape == (4, 3, 32, 32)


def test_mnist_gz_files_are_unpacked(tmp_path: Path) -> None:
    fabricate.mnist(tmp_path, n_train=32, n_test=8, gz=True)
    dm = MNISTDataModule(str(tmp_path), batch_size=4, download=False)
    assert first_batch(dm).shape == (4, 1, 28, 28)
    assert (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_mnist_failed_download_names_folder_files_and_fix(tmp_path: Path, http_root) -> None:
    url, _ = http_root  # serves nothing: every file is a 404
    dm = MNISTDataModule(str(tmp_path / "empty"), mirrors=[url])
    with pytest.raises(DataError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "empty" / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "404" in message
    assert "paths.data_dir" in message


def test_mnist_unreachable_server_is_the_same_one_line_error(tmp_path: Path) -> None:
    dm = MNISTDataModule(str(tmp_path), mirrors=["http://127.0.0.1:9/"])  # discard port: refused
    with pytest.raises(DataError, match=r"download failed.*paths.data_dir"):
        dm.prepare_data()


def test_mnist_without_download_says_so(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="download disabled"):
        MNISTDataModule(str(tmp_path), download=False).prepare_data()


def test_mnist_truncated_file_is_reported(tmp_path: Path) -> None:
    fabricate.mnist(tmp_path, n_train=32, n_test=8)
    images = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    dm = MNISTDataModule(str(tmp_path), download=False)
    with pytest.raises(DataError, match="cannot read MNIST"):
        dm.setup("fit")


def test_cifar10_batches_keep_rgb_planes(tmp_path: Path) -> None:
    arrays = fabricate.cifar10(tmp_path, per_batch=8, n_test=8)
    dm = CIFAR10DataModule(str(tmp_path), batch_size=40, download=False, verify_checksums=False)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == 40
    stored = torch.from_numpy(arrays["train"][3])  # (3, 32, 32): R plane first
    assert torch.equal(dm.train_set[3], stored)
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch.shape == (40, 3, 32, 32) and batch.min() >= -1 and batch.max() <= 1


def test_cifar10_checksums_reject_unofficial_files(tmp_path: Path) -> None:
    fabricate.cifar10(tmp_path, per_batch=4, n_test=4)
    dm = CIFAR10DataModule(str(tmp_path), download=False)
    with pytest.raises(DataError, match="verify_checksums=false"):
        dm.setup("fit")


def test_cifar10_failed_download(tmp_path: Path, http_root) -> None:
    url, _ = http_root
    dm = CIFAR10DataModule(str(tmp_path), url=url + "cifar-10-python.tar.gz")
    with pytest.raises(DataError) as err:
        dm.prepare_data()
    assert "cifar-10-batches-py" in str(err.value) and "data_batch_1" in str(err.value)
    assert not (tmp_path / "cifar-10-batches-py").exists()


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    return path


def test_safe_extract_tar_and_zip(tmp_path: Path) -> None:
    safe_extract(_tar(tmp_path / "a.tar.gz", {"set/x.txt": b"x"}), tmp_path / "out", "set", 100)
    assert (tmp_path / "out" / "set" / "x.txt").read_bytes() == b"x"
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as zf:
        zf.writestr("other/y.txt", "y")
    safe_extract(tmp_path / "b.zip", tmp_path / "out", "other", 100)
    assert (tmp_path / "out" / "other" / "y.txt").read_text() == "y"


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_safe_extract_refuses_escaping_members(tmp_path: Path, kind: str) -> None:
    if kind == "tar":
        archive = _tar(tmp_path / "evil.tar.gz", {"ok.txt": b"1", "../escaped.txt": b"2"})
    else:
        archive = tmp_path / "evil.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("ok.txt", "1")
            zf.writestr("../escaped.txt", "2")
    with pytest.raises(DataError, match="outside"):
        safe_extract(archive, tmp_path / "out", "ok.txt", 100)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out" / "ok.txt").exists()  # nothing half-extracted


def test_safe_extract_damaged_archive(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar.gz", {"set/x.bin": np.arange(50000, dtype=np.int64).tobytes()})
    archive.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(DataError):
        safe_extract(archive, tmp_path / "out", "set", 1 << 20)
    assert not (tmp_path / "out" / "set").exists()


def test_mnist_with_a_jpeg_for_an_idx_file_names_it(tmp_path: Path) -> None:
    """The reason is never empty: torchvision's bare assertion becomes the file and what it starts with."""
    fabricate.mnist(tmp_path, n_train=32, n_test=8)
    images = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(b"\xff\xd8\xff\xe0" + bytes(600))  # a JPEG header
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte is not an MNIST IDX file .*xff\\xd8"):
        MNISTDataModule(str(tmp_path), download=False).setup("fit")
