"""MNIST through torchvision's class: the files in ``<data_dir>/MNIST/raw/``, downloaded if absent."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import Tensor
from torchvision.datasets import MNIST

from ganlab.data.archive import gunzip_atomic
from ganlab.data.base import InMemoryImageDataModule
from ganlab.data.downloads import fetch
from ganlab.errors import DataError
from ganlab.registry import register

MAX_UNPACKED = 60_000_000  # the largest IDX file (train images) is 47 MB
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@register
class MNISTDataModule(InMemoryImageDataModule):
    """MNIST digits, 60k train / 10k test, 28×28 native (resized once when ``image_size`` differs).

    Args:
        mirrors: download mirrors replacing torchvision's list (each URL ends with '/').
    """

    fid_name = "mnist"

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 128,
        num_workers: int = 0,
        image_size: int = 28,
        channels: int = 1,
        pin_memory: bool = True,
        seed: int = 0,
        on_device: bool = False,
        resize: str = "resize",
        limit_train: int | None = None,
        download: bool = True,
        mirrors: list[str] | None = None,
    ) -> None:
        super().__init__(
            data_dir, batch_size, num_workers, image_size, channels, pin_memory, seed, on_device,
            resize, limit_train,
        )  # fmt: skip
        self.download, self.mirrors = download, mirrors

    @property
    def raw_dir(self) -> Path:
        return Path(self.data_dir) / "MNIST" / "raw"

    def _missing(self) -> list[str]:
        return [f for f in RAW_FILES if not (self.raw_dir / f).is_file()]

    def prepare_data(self) -> None:
        self._unpack()
        if not self._missing():
            return
        reason = "download disabled (data.download=false)"
        if self.download:
            reason = self._download()
            if reason is None:
                return
        raise DataError(
            f"MNIST not found in {self.raw_dir} and {reason}; expected {', '.join(self._missing())} "
            f"there (or their .gz); put them there or set paths.data_dir=<dir> (or GANLAB_DATA_DIR) "
            "to a folder holding MNIST/raw/"
        )

    def _download(self) -> str | None:
        """torchvision's files from its mirrors (md5-checked, atomic); the reason for failure, or None."""
        mirrors = self.mirrors if self.mirrors is not None else MNIST.mirrors
        errors: list[str] = []
        for filename, md5 in MNIST.resources:
            packed = self.raw_dir / filename
            if (self.raw_dir / filename.removesuffix(".gz")).is_file() or packed.is_file():
                continue
            if not any(self._fetch_one(mirror + filename, packed, md5, errors) for mirror in mirrors):
                return f"the download failed ({'; '.join(errors)})"
        self._unpack()
        return None

    @staticmethod
    def _fetch_one(url: str, packed: Path, md5: str, errors: list[str]) -> bool:
        try:
            fetch(url, packed, MAX_UNPACKED)
        except DataError as e:
            errors.append(str(e))
            return False
        digest = hashlib.md5(packed.read_bytes(), usedforsecurity=False).hexdigest()
        if digest != md5:
            packed.unlink()  # just written by fetch above
            errors.append(f"{url} is not MNIST's file (md5 {digest}, expected {md5})")
            return False
        return True

    def _unpack(self) -> None:
        """The .gz files as distributed, unpacked via a temporary name (a kill leaves no partial IDX)."""
        for name in self._missing():
            packed = self.raw_dir / f"{name}.gz"
            if packed.is_file():
                gunzip_atomic(packed, self.raw_dir / name, MAX_UNPACKED)

    def class_names(self) -> list[str]:
        return [str(d) for d in range(10)]

    def _not_idx(self) -> str | None:
        """The first raw file whose header is not an IDX header (0, 0, 0x08 ubyte, 1 or 3 dims)."""
        for name in RAW_FILES:
            head = (self.raw_dir / name).read_bytes()[:4] if (self.raw_dir / name).is_file() else b""
            if len(head) < 4 or head[:3] != b"\x00\x00\x08" or head[3] not in (1, 3):
                return f"{self.raw_dir / name} is not an MNIST IDX file (it starts with {head!r})"
        return None

    def _dataset(self, train: bool) -> MNIST:
        try:
            return MNIST(self.data_dir, train=train, download=False)
        except Exception as e:
            reason = self._not_idx() or " ".join(str(e).split()) or type(e).__name__
            raise DataError(
                f"cannot read MNIST in {self.raw_dir}: {reason}; delete the damaged files to download "
                "them again"
            ) from None

    def load_split(self, train: bool) -> Tensor:
        return self._dataset(train).data.unsqueeze(1).to(torch.uint8)  # (N, 28, 28) → (N, 1, 28, 28)

    def load_labels(self, train: bool) -> Tensor:
        labels = self._dataset(train).targets.long()
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) <= 9:
            raise DataError(f"MNIST labels in {self.raw_dir} are outside 0..9; the label files are damaged")
        return labels
