"""CIFAR-10 through torchvision's class: ``<data_dir>/cifar-10-batches-py/``, downloaded if absent."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import download_url

from ganlab.data.archive import refuse_existing, safe_extract
from ganlab.data.base import InMemoryImageDataModule
from ganlab.errors import DataError
from ganlab.fetch import network_timeout
from ganlab.registry import register

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@register
class CIFAR10DataModule(InMemoryImageDataModule):
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
        self.download, self.verify_checksums, self.url = download, verify_checksums, url
        self.max_extract_gb = max_extract_gb

    @property
    def folder(self) -> Path:
        return Path(self.data_dir) / CIFAR10.base_folder

    def _dataset_class(self) -> type[CIFAR10]:
        if self.verify_checksums:
            return CIFAR10
        unchecked = {
            "train_list": [[name, None] for name, _ in CIFAR10.train_list],
            "test_list": [[name, None] for name, _ in CIFAR10.test_list],
            "meta": {**CIFAR10.meta, "md5": None},
        }
        return type("CIFAR10", (CIFAR10,), unchecked)

    def _expected(self) -> list[str]:
        return [name for name, _ in CIFAR10.train_list + CIFAR10.test_list] + [CIFAR10.meta["filename"]]

    def prepare_data(self) -> None:
        missing = [f for f in self._expected() if not (self.folder / f).is_file()]
        if not missing:
            return
        reason = "download disabled (data.download=false)"
        if self.download:
            refuse_existing(self.folder)  # a partial folder is the user's: never replaced
            try:
                with network_timeout():
                    download_url(self.url, self.data_dir, CIFAR10.filename, CIFAR10.tgz_md5)
                archive = Path(self.data_dir) / CIFAR10.filename
                if not archive.is_file():
                    raise OSError(f"no file at {self.url}")
                safe_extract(
                    archive, Path(self.data_dir), CIFAR10.base_folder, int(self.max_extract_gb * 1e9)
                )
                return
            except DataError:
                raise
            except Exception as e:
                reason = f"the download from {self.url} failed ({' '.join(str(e).split())})"
        raise DataError(
            f"CIFAR-10 not found in {self.folder} and {reason}; expected {', '.join(missing)} there; "
            "put them there or set paths.data_dir=<dir> (or GANLAB_DATA_DIR) to the folder holding "
            f"{CIFAR10.base_folder}/"
        )

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
