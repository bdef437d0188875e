"""Aligned image pairs (pix2pix): ``train/ val/ test/`` of A|B images side by side, as the official
``aligned`` dataset mode reads them."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader
from torchvision.transforms.v2 import functional as TF

from ganlab.data.images import fingerprint, load_rgb, usable_images
from ganlab.data.sets.base import PlainData
from ganlab.data.sets.unpaired import EpochTaggedSampler, Preprocess, _item_seed
from ganlab.data.sources import PairedFolders
from ganlab.errors import ConfigError, DataError
from ganlab.pixels import to_model_range
from ganlab.reference import Reference

DIRECTIONS = ("AtoB", "BtoA")


def split_pair(
    image: Image.Image, direction: str, path: Path | str = "an A|B image"
) -> tuple[Tensor, Tensor]:
    """An A|B image → (source, target) uint8 (3, H, W): the left half is A, the right half B (the
    official split at ⌊w/2⌋); BtoA swaps them. Halves of unequal width (odd w) are resized to match."""
    if image.width < 2:
        raise DataError(
            f"{path} is {image.width}×{image.height} px: an A|B pair holds A and B side by side, so it needs "
            "at least 2 px of width; remove it"
        )
    pixels = TF.pil_to_tensor(image)
    half = pixels.shape[-1] // 2
    a, b = pixels[..., :half], pixels[..., half:]
    if b.shape != a.shape:
        b = TF.resize(b, list(a.shape[-2:]), interpolation=TF.InterpolationMode.BICUBIC)
    return (a, b) if direction == "AtoB" else (b, a)


class PairedImages(Dataset):
    """``{"A": source, "B": target}`` uint8; one draw of crop and flip for both halves (stacked as six
    channels), from (seed, epoch-tagged index): identical after a resume."""

    def __init__(self, paths: list[Path], preprocess: Preprocess, direction: str, seed: int) -> None:
        self.paths, self.preprocess, self.direction, self.seed = paths, preprocess, direction, seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, tagged: int) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(_item_seed(self.seed, tagged))
        path = self.paths[tagged % len(self)]
        a, b = split_pair(load_rgb(path), self.direction, path)
        both = self.preprocess(torch.cat([a, b]), g)  # (6, crop, crop): the same crop and flip
        return {"A": both[:3], "B": both[3:]}


class PairedData(PlainData):
    """``<root>/train/`` (+ ``test/`` or ``val/`` for panels and metrics) of A|B images, or an
    official pix2pix set by name (facades, maps, edges2shoes, edges2handbags, night2day).

    Args:
        direction: AtoB translates the left halves into the right ones; BtoA the reverse.
        preprocess, load_size, crop_size, flip: as the unpaired folders (official: resize 286,
            random crop 256, flip), applied identically to A and B.
    """

    batch_kind = "paired"  # batches are {"A": sources, "B": their targets}

    def __init__(
        self,
        data_dir: str,
        root: str | None = None,
        name: str | None = None,
        url: str | None = None,
        download: bool = True,
        max_extract_gb: float = 20.0,
        direction: str = "AtoB",
        preprocess: str = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        skip_corrupt: bool = False,
        batch_size: int = 1,
        num_workers: int = 4,
        channels: int = 3,
        image_size: int = 256,
        num_panels: int = 4,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if direction not in DIRECTIONS:
            raise ConfigError(f"data.direction={direction} must be AtoB or BtoA")
        if channels != 3:
            raise ConfigError(f"data.channels={channels}: paired folders are read as RGB (3)")
        self.skip_corrupt = skip_corrupt
        self.direction = direction
        self.files = PairedFolders(data_dir, root, name, url, download, max_extract_gb)
        self.preprocess = Preprocess(preprocess, load_size, crop_size, flip)
        self.batch_size, self.num_workers, self.num_panels, self.seed = (
            batch_size,
            num_workers,
            num_panels,
            seed,
        )
        self.paths: dict[str, list[Path]] = {}
        self.train_set: PairedImages | None = None

    @property
    def folder(self) -> Path:
        return self.files.folder

    def prepare_data(self) -> None:
        self.files.prepare()

    def _split(self, split: str, required: bool) -> list[Path]:
        self.files.check_folder()
        folder = self.folder / split
        paths = usable_images(folder, self.skip_corrupt) if folder.is_dir() else []
        if required and not paths:
            raise DataError(f"{folder} holds no images; expected train/ (and test/ or val/) of A|B images")
        return paths

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.paths = {split: self._split(split, split == "train") for split in ("train", "val", "test")}
        self.train_set = PairedImages(self.paths["train"], self.preprocess, self.direction, self.seed)

    def train_dataloader(self) -> StatefulDataLoader:
        assert self.train_set is not None
        return StatefulDataLoader(
            self.train_set,
            sampler=EpochTaggedSampler(len(self.train_set), shuffle=True, seed=self.seed),
            batch_size=self.batch_size,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def on_after_batch_transfer(self, batch: dict[str, Tensor], dataloader_idx: int) -> dict[str, Tensor]:
        return {k: to_model_range(v) for k, v in batch.items()}

    # --- evaluation: whole pairs resized to crop_size² (what G sees at test time) ---
    def eval_split(self, split: str | None = None) -> str:
        """``test`` (else ``val``, else ``train``) unless a split is named; FID and paired metrics use it."""
        self.setup()
        if split == "train":
            return "train"
        if split not in (None, "test"):
            raise ConfigError(f"metrics.reference={split} must be train or test")
        return next(s for s in ("test", "val", "train") if self.paths[s])

    def pairs(self, split: str | None = None, limit: int | None = None) -> tuple[Tensor, Tensor]:
        """uint8 (N, 3, S, S) sources and their targets of the evaluation split."""
        size = self.preprocess.crop_size
        sources, targets = [], []
        name = self.eval_split(split)  # sets up the paths first
        for path in self.paths[name][:limit]:
            a, b = split_pair(load_rgb(path), self.direction, path)
            sources.append(TF.resize(a, [size, size], interpolation=TF.InterpolationMode.BICUBIC))
            targets.append(TF.resize(b, [size, size], interpolation=TF.InterpolationMode.BICUBIC))
        return torch.stack(sources), torch.stack(targets)

    def panel_images(self) -> dict[str, Tensor]:
        sources, targets = self.pairs(limit=self.num_panels)
        return {"A": sources, "B": targets}

    def fid_sources(self) -> dict[str, Tensor]:
        return {"a2b": self.pairs()[0]}

    def fid_references(self, split: str, limit: int | None = None) -> dict[str, Reference]:
        """The targets of the evaluation split (test, else val): translations are scored against them."""
        name = self.eval_split(split)
        transform = f"{self.direction} target half resize {self.preprocess.crop_size} bicubic"
        root = self.folder.resolve()
        files = [p.resolve() for p in self.paths[name][:limit]]
        dataset = f"{root}/{name}#{fingerprint(root, files, transform)}"  # a changed folder: new key
        return {"a2b": Reference(dataset, name, transform, self.pairs(split, limit)[1])}
