"""MNIST through torchvision's class: the files in ``<data_dir>/MNIST/raw/``, downloaded if absent."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torchvision.datasets import MNIST

from ganlab.data.sets.base import InMemoryImageData
from ganlab.data.sources import MNIST_RAW_FILES, MnistFiles
from ganlab.errors import DataError


class MNISTData(InMemoryImageData):
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
        self.files = MnistFiles(data_dir, download, mirrors)

    @property
    def raw_dir(self) -> Path:
        return self.files.raw_dir

    @property
    def mirrors(self) -> list[str] | None:
        return self.files.mirrors

    def prepare_data(self) -> None:
        self.files.prepare()

    def class_names(self) -> list[str]:
        return [str(d) for d in range(10)]

    def _not_idx(self) -> str | None:
        """The first raw file whose header is not an IDX header (0, 0, 0x08 ubyte, 1 or 3 dims)."""
        for name in MNIST_RAW_FILES:
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
