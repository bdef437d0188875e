"""MNIST through torchvision's class: the files in ``<data_dir>/MNIST/raw/``, downloaded if absent."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import torch
from torch import Tensor
from torchvision.datasets import MNIST

from ganlab.data.archive import network_timeout
from ganlab.data.base import InMemoryImageDataModule
from ganlab.errors import DataError

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


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
        download: bool = True,
        mirrors: list[str] | None = None,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, image_size, channels, pin_memory, seed, on_device)
        self.download, self.mirrors = download, mirrors

    @property
    def raw_dir(self) -> Path:
        return Path(self.data_dir) / "MNIST" / "raw"

    def _missing(self) -> list[str]:
        return [f for f in RAW_FILES if not (self.raw_dir / f).is_file()]

    def prepare_data(self) -> None:
        for name in self._missing():  # the .gz files as distributed: unpack them in place
            packed = self.raw_dir / f"{name}.gz"
            if packed.is_file():
                try:
                    with gzip.open(packed) as src, open(self.raw_dir / name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                except (OSError, EOFError) as e:
                    (self.raw_dir / name).unlink(missing_ok=True)
                    raise DataError(f"{packed} is damaged ({e}); delete it and run again") from None
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
        """Download with torchvision; the reason for failure, or None on success."""
        cls = MNIST if self.mirrors is None else type("MNIST", (MNIST,), {"mirrors": self.mirrors})
        try:
            with network_timeout():
                cls(self.data_dir, train=True, download=True)
        except Exception as e:  # torchvision raises RuntimeError/URLError/OSError per mirror
            return f"the download failed ({' '.join(str(e).split())})"
        return None

    def load_split(self, train: bool) -> Tensor:
        try:
            dataset = MNIST(self.data_dir, train=train, download=False)
        except Exception as e:
            raise DataError(
                f"cannot read MNIST in {self.raw_dir} ({' '.join(str(e).split())}); "
                "delete the damaged files to download them again"
            ) from None
        return dataset.data.unsqueeze(1).to(torch.uint8)  # (N, 28, 28) → (N, 1, 28, 28)
