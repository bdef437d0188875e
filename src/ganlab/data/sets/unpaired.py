"""Unpaired image folders (``trainA/ trainB/ testA/ testB/``), as the official CycleGAN loader."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, Sampler
from torchdata.stateful_dataloader import StatefulDataLoader
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ganlab.data.images import fingerprint, load_rgb, usable_images
from ganlab.data.sets.base import PlainData, state_ints
from ganlab.data.sources import UnpairedFolders
from ganlab.errors import ConfigError, DataError
from ganlab.pixels import to_model_range
from ganlab.reference import Reference

PREPROCESS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")


MAX_CROP = 4096  # the largest crop ganlab trains on (also what a checkpoint may claim)
CROPPING = ("resize_and_crop", "crop", "scale_width_and_crop")
RESIZING = ("resize_and_crop", "scale_width", "scale_width_and_crop")


class Preprocess:
    """The official ``--preprocess`` choices, drawn from a given generator (reproducible)."""

    def __init__(self, mode: str, load_size: int, crop_size: int, flip: bool) -> None:
        if mode not in PREPROCESS:
            raise ConfigError(f"data.preprocess={mode} is not one of {', '.join(PREPROCESS)}")
        used = [("crop_size", crop_size, MAX_CROP)] if mode in CROPPING else []
        used += [("load_size", load_size, 2 * MAX_CROP)] if mode in RESIZING else []
        for key, value, most in used:  # the sizes this mode uses ("none" uses neither)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise ConfigError(f"data.{key}={value} must be a whole number of pixels from 1 to {most}")
        if mode in ("resize_and_crop", "scale_width_and_crop") and crop_size > load_size:
            raise ConfigError(
                f"data.crop_size={crop_size} is larger than data.load_size={load_size}: images are resized "
                f"to load_size, then cropped; set crop_size ≤ load_size (the official 286 → 256)"
            )
        self.mode, self.load_size, self.crop_size, self.flip = mode, load_size, crop_size, flip

    def _crop(self, image: Tensor, g: torch.Generator) -> Tensor:
        h, w = image.shape[-2:]
        if h < self.crop_size or w < self.crop_size:
            image = TF.resize(image, [max(h, self.crop_size), max(w, self.crop_size)])
            h, w = image.shape[-2:]
        top = int(torch.randint(h - self.crop_size + 1, (), generator=g))
        left = int(torch.randint(w - self.crop_size + 1, (), generator=g))
        return image[..., top : top + self.crop_size, left : left + self.crop_size]

    def __call__(self, pil: Image.Image | Tensor, g: torch.Generator) -> Tensor:
        """PIL image (or uint8 (C, H, W): pix2pix's A and B stacked, one crop and flip) → uint8 (C, H, W)."""
        image = pil if isinstance(pil, Tensor) else TF.pil_to_tensor(pil)
        bicubic = v2.InterpolationMode.BICUBIC
        if self.mode == "resize_and_crop":
            image = TF.resize(image, [self.load_size, self.load_size], interpolation=bicubic)
        elif self.mode.startswith("scale_width"):
            h, w = image.shape[-2:]
            height = max(self.crop_size, round(self.load_size * h / w))
            image = TF.resize(image, [height, self.load_size], interpolation=bicubic)
        if self.mode in ("resize_and_crop", "crop", "scale_width_and_crop"):
            image = self._crop(image, g)
        elif self.mode == "none":  # sides to multiples of 4, as the generator needs
            h, w = image.shape[-2:]
            image = TF.resize(
                image, [max(4, round(h / 4) * 4), max(4, round(w / 4) * 4)], interpolation=bicubic
            )
        if self.flip and torch.rand((), generator=g) < 0.5:
            image = image.flip(-1)
        return image


def _item_seed(seed: int, key: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class UnpairedImages(Dataset):
    """Dict of uint8 images ``{"A", "B"}``: A in order, B drawn at random (or in order if serial).

    Indices carry the epoch (``epoch · len + i``, see ``EpochTaggedSampler``), so the B pick, the
    crop and the flip of every item are a function of (seed, epoch, i): identical after a resume.
    """

    def __init__(
        self, paths_a: list[Path], paths_b: list[Path], preprocess: Preprocess, serial: bool, seed: int
    ) -> None:
        self.paths_a, self.paths_b, self.preprocess = paths_a, paths_b, preprocess
        self.serial, self.seed = serial, seed

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b))

    def __getitem__(self, tagged: int) -> dict[str, Tensor]:
        i = tagged % len(self)
        g = torch.Generator().manual_seed(_item_seed(self.seed, tagged))
        j = i if self.serial else int(torch.randint(len(self.paths_b), (), generator=g))
        a = self.preprocess(load_rgb(self.paths_a[i % len(self.paths_a)]), g)
        b = self.preprocess(load_rgb(self.paths_b[j % len(self.paths_b)]), g)
        return {"A": a, "B": b}


class _EpochOrder:
    """One epoch's order: a permutation drawn from (seed, epoch) alone, so it does not depend on how
    often a loader (or its workers) iterates the sampler; indices tagged with the epoch."""

    def __init__(self, n: int, shuffle: bool, seed: int, epoch: int) -> None:
        self.n, self.shuffle, self.seed, self.i = n, shuffle, seed, 0
        self._start(epoch)

    def _start(self, epoch: int) -> None:
        self.epoch = epoch
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        self.order = torch.randperm(self.n, generator=g).tolist() if self.shuffle else list(range(self.n))

    def __iter__(self) -> _EpochOrder:
        return self

    def __next__(self) -> int:
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return self.order[self.i - 1] + self.epoch * self.n

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "i": self.i}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "i" not in state:  # an older checkpoint (torchdata sampler state): same epoch and position
            self._start(state["offset"] // max(self.n, 1))
            self.i = int(state["inner"].get("samples_yielded", 0))
            return
        epoch, self_i = state_ints(state, ("epoch", "i"))
        self._start(epoch)
        self.i = self_i


class EpochTaggedSampler(Sampler[int]):
    """A resumable random (or sequential) order whose indices are tagged with the epoch."""

    def __init__(self, n: int, shuffle: bool, seed: int) -> None:
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> _EpochOrder:
        return _EpochOrder(self.n, self.shuffle, self.seed, self.epoch)


class UnpairedData(PlainData):
    """``trainA/ trainB/`` (+ ``testA/ testB/`` for panels) under ``root``, or an official set.

    Args:
        root: a folder with trainA/ and trainB/; None uses ``<data_dir>/<name>``.
        name: an official CycleGAN set, downloaded into ``data_dir`` when absent.
        preprocess: resize_and_crop (load_size → random crop_size), crop, scale_width,
            scale_width_and_crop, none.
        serial_batches: pair A[i] with B[i] instead of a random B.
        skip_corrupt: drop unreadable images with one warning instead of stopping.
    """

    batch_kind = "unpaired"  # batches are {"A": images, "B": images}

    def __init__(
        self,
        data_dir: str,
        root: str | None = None,
        name: str | None = "horse2zebra",
        url: str | None = None,
        download: bool = True,
        max_extract_gb: float = 20.0,
        preprocess: str = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        serial_batches: bool = False,
        skip_corrupt: bool = False,
        batch_size: int = 1,
        num_workers: int = 4,
        channels: int = 3,
        image_size: int = 256,
        num_panels: int = 4,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if channels != 3:
            raise ConfigError(f"data.channels={channels}: unpaired folders are read as RGB (3)")
        self.serial_batches, self.skip_corrupt = serial_batches, skip_corrupt
        self.files = UnpairedFolders(data_dir, root, name, url, download, max_extract_gb)
        self.preprocess = Preprocess(preprocess, load_size, crop_size, flip)
        self.batch_size, self.num_workers, self.num_panels, self.seed = (
            batch_size,
            num_workers,
            num_panels,
            seed,
        )
        self.train_set: UnpairedImages | None = None
        self.paths: dict[str, list[Path]] = {}

    @property
    def folder(self) -> Path:
        return self.files.folder

    def prepare_data(self) -> None:
        self.files.prepare()

    def _domain(self, split: str, required: bool) -> list[Path]:
        folder = self.folder / split
        if not self.files.check_split(split):
            return []
        paths = usable_images(folder, self.skip_corrupt)
        if required and not paths:
            kinds = ", ".join(sorted(IMG_EXTENSIONS))
            raise DataError(f"{folder} holds no images that can be read ({kinds})")
        return paths

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        for split in ("trainA", "trainB"):
            self.paths[split] = self._domain(split, required=True)
        for split in ("testA", "testB"):
            self.paths[split] = self._domain(split, required=False)
        self.train_set = UnpairedImages(
            self.paths["trainA"], self.paths["trainB"], self.preprocess, self.serial_batches, self.seed
        )

    def train_dataloader(self) -> StatefulDataLoader:
        assert self.train_set is not None
        sampler = EpochTaggedSampler(len(self.train_set), shuffle=not self.serial_batches, seed=self.seed)
        return StatefulDataLoader(
            self.train_set,
            sampler=sampler,
            batch_size=self.batch_size,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(self.seed + 1),
        )

    def panel_images(self) -> dict[str, Tensor]:
        """Fixed uint8 images per domain for translation panels: the first test (else train) images."""
        return {domain: self._resized(self._source_paths(domain)[: self.num_panels]) for domain in ("A", "B")}

    def _source_paths(self, domain: str) -> list[Path]:
        return self.paths.get(f"test{domain}") or self.paths[f"train{domain}"]

    def _resized(self, paths: list[Path]) -> Tensor:
        """Whole images resized to crop_size², uint8 (N, 3, S, S): what G sees at test time."""
        size = self.preprocess.crop_size
        center = Preprocess("resize_and_crop", size, size, flip=False)
        g = torch.Generator()
        return torch.stack([center(load_rgb(p), g) for p in paths])

    def _split_paths(self, split: str, domain: str) -> tuple[str, list[Path]]:
        """(the split used, its images): the test split, else (one warning) the train split."""
        if split not in ("train", "test"):
            raise ConfigError(f"metrics.reference={split} must be train or test")
        self.setup()
        if split == "test" and not self.paths[f"test{domain}"]:
            warnings.warn(
                f"{self.folder} has no test{domain}/ images: FID compares with train{domain}/ "
                "(metrics.reference=train)",
                stacklevel=2,
            )
            split = "train"
        return split, self.paths[f"{split}{domain}"]

    def fid_references(self, split: str, limit: int | None = None) -> dict[str, Reference]:
        """Real images of each target domain: a2b compares with B, b2a with A. The cache key holds a
        fingerprint of the files (names, sizes, times), so a changed folder is never read stale."""
        out = {}
        transform = f"resize {self.preprocess.crop_size} bicubic"
        for key, domain in (("a2b", "B"), ("b2a", "A")):
            used, paths = self._split_paths(split, domain)
            paths = paths[:limit]
            root = self.folder.resolve()
            dataset = f"{root}/{used}{domain}#{fingerprint(root, [p.resolve() for p in paths], transform)}"
            out[key] = Reference(dataset, used, transform, self._resized(paths))
        return out

    def fid_sources(self) -> dict[str, Tensor]:
        """Every test image of each source domain (train images when there is no test folder)."""
        return {
            key: self._resized(self._source_paths(domain)) for key, domain in (("a2b", "A"), ("b2a", "B"))
        }

    def on_after_batch_transfer(self, batch: dict[str, Tensor], dataloader_idx: int) -> dict[str, Tensor]:
        return {k: to_model_range(v) for k, v in batch.items()}
