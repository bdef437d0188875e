"""CIFAR-10 through torchvision's class: ``<data_dir>/cifar-10-batches-py/``, downloaded if absent."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torchvision.datasets import CIFAR10

from ganlab.data.sets.base import InMemoryImageData
from ganlab.data.sources import Cifar10Files
from ganlab.errors import DataError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class CIFAR10Data(InMemoryImageData):
    """CIFAR-10, 50k train / 10k test, 32×32 RGB (resized once when ``image_size`` differs).

    Args:
        verify_checksums: check each batch file's md5 on load, as torchvision does; false accepts
            re-packed copies (and the small files the tests fabricate).
        url: where the archive is fetched from (torchvision's official URL by default).
        max_extract_gb: the most the archive may unpack to; more is refused.
    """

    fid_name = "cifar10"

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 128,
        num_workers: int = 0,
        image_size: int = 32,
        channels: int = 3,
        pin_memory: bool = True,
        seed: int = 0,
        on_device: bool = False,
        resize: str = "resize",
        limit_train: int | None = None,
        download: bool = True,
        verify_checksums: bool = True,
        url: str = CIFAR10.url,
        max_extract_gb: float = 0.2,
    ) -> None:
        super().__init__(
            data_dir, batch_size, num_workers, image_size, channels, pin_memory, seed, on_device,
            resize, limit_train,
        )  # fmt: skip
        self.verify_checksums = verify_checksums
        self.files = Cifar10Files(data_dir, download, url, max_extract_gb)

    @property
    def folder(self) -> Path:
        return self.files.folder

    def _dataset_class(self) -> type[CIFAR10]:
        if self.verify_checksums:
            return CIFAR10
        unchecked = {
            "train_list": [[name, None] for name, _ in CIFAR10.train_list],
            "test_list": [[name, None] for name, _ in CIFAR10.test_list],
            "meta": {**CIFAR10.meta, "md5": None},
        }
        return type("CIFAR10", (CIFAR10,), unchecked)

    def prepare_data(self) -> None:
        self.files.prepare()

    def class_names(self) -> list[str]:
        return list(CLASSES)

    def _dataset(self, train: bool) -> CIFAR10:
        try:
            return self._dataset_class()(self.data_dir, train=train, download=False)
        except Exception as e:
            raise DataError(
                f"cannot read CIFAR-10 in {self.folder} ({' '.join(str(e).split())}); delete the "
                "folder to download it again, or set data.verify_checksums=false for a re-packed copy"
            ) from None

    def load_split(self, train: bool) -> Tensor:
        return torch.from_numpy(self._dataset(train).data).permute(0, 3, 1, 2).contiguous()  # NHWC → NCHW

    def load_labels(self, train: bool) -> Tensor:
        labels = torch.tensor(self._dataset(train).targets, dtype=torch.long)
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) <= 9:
            raise DataError(f"CIFAR-10 labels in {self.folder} are outside 0..9; the files are damaged")
        return labels
