"""Random uint8 images held in memory: the "fake" data of benchmarks (no decoding, no disk)."""

from __future__ import annotations

import torch
from torch import Tensor

from ganlab.data.sets.base import InMemoryImageData, UInt8Images
from ganlab.pixels import to_model_range


class SyntheticImagesData(InMemoryImageData):
    """``size`` random images (C, S, S) per split, drawn from ``seed``."""

    def __init__(self, size: int = 4096, **kwargs) -> None:
        super().__init__(data_dir=".", **kwargs)
        self.size = size

    @property
    def fid_name(self) -> str:  # type: ignore[override]
        """The images are drawn from the seed: another seed is another data set in the FID cache."""
        return f"synthetic(seed={self.seed},size={self.size})"

    def load_split(self, train: bool) -> Tensor:
        g = torch.Generator().manual_seed(self.seed + (0 if train else 1))
        shape = (self.size, self.channels, self.image_size, self.image_size)
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)

    def prepare_data(self) -> None:
        pass


class SyntheticUnpairedData(SyntheticImagesData):
    """Two domains of random images; batches are ``{"A", "B"}`` as from unpaired folders."""

    batch_kind = "unpaired"

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            images = self.load_split(True)
            half = len(images) // 2
            self.train_set = _Pairs(images[:half], images[half:])
            self.test_set = self.train_set

    def on_after_batch_transfer(self, batch: dict[str, Tensor], dataloader_idx: int) -> dict[str, Tensor]:
        return {k: to_model_range(v) for k, v in batch.items()}


class _Pairs(UInt8Images):
    def __init__(self, a: Tensor, b: Tensor) -> None:
        super().__init__(a)
        self.b = b

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:
        return {"A": self.images[indices], "B": self.b[indices]}
