"""Any folder of images for DCGAN (pytorch/examples' ``--dataset folder``), optionally one subfolder
per class; held in memory as uint8 when it fits, streamed from disk with DataLoader workers otherwise.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchdata.stateful_dataloader import StatefulDataLoader
from torchvision.datasets.folder import IMG_EXTENSIONS

from ganlab.data.decode import LazyImages, Preprocess, UnreadableImage, decode_checked
from ganlab.data.images import fingerprint, list_images
from ganlab.data.sets.base import Batch, LabelledData, PlainData, _as_batch, per_class_references
from ganlab.data.sets.unpaired import EpochTaggedSampler, _item_seed
from ganlab.data.sources import ImageFolder
from ganlab.errors import ConfigError, DataError
from ganlab.reference import Reference

HELD_OUT = ("test", "val")  # a subfolder of root with these names is the held-out split
LABELS = ("none", "folders")


def in_holdout(relative: str, fraction: float) -> bool:
    """A file's place in the seeded hold-out: a hash of its relative path (seed 0), so the split is
    the same for every run and adding files never moves the ones already there."""
    digest = hashlib.blake2b(f"0:{relative}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < fraction


class FolderImages(Dataset):
    """uint8 (C, S, S) images of files (decoded on access) or of a tensor (held in memory), with a
    seeded random flip and, when labelled, their class. Indices may carry the epoch (see
    ``EpochTaggedSampler``): the flip of every item is a function of (seed, epoch, i), so both
    modes give the same batches and a resumed run sees the same ones again."""

    def __init__(
        self,
        paths: list[Path],
        labels: Tensor | None,
        preprocess: Preprocess,
        flip: bool,
        seed: int,
        images: Tensor | None = None,
    ) -> None:
        self.paths, self.labels, self.preprocess = paths, labels, preprocess
        self.flip, self.seed, self.images = flip, seed, images

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, tagged: int) -> Batch:
        batch = self.__getitems__([tagged])
        return (batch[0][0], batch[1][0]) if isinstance(batch, tuple) else batch[0]

    def __getitems__(self, tagged: list[int]) -> Batch:
        index = [t % len(self) for t in tagged]
        if self.images is not None:
            images = self.images[index]
        else:
            images = torch.stack([self.preprocess(decode_checked(self.paths[i], self.preprocess.channels))
                                  for i in index])  # fmt: skip
        if self.flip:
            mirrored = torch.tensor([_item_seed(self.seed, t) & 1 == 1 for t in tagged])
            images = torch.where(mirrored[:, None, None, None], images.flip(-1), images)
        return images if self.labels is None else (images, self.labels[index])


class _Decoded(Dataset):
    """(index, readable?, uint8 image when kept) of every file: the parallel loading pass."""

    def __init__(self, paths: list[Path], preprocess: Preprocess, keep: bool) -> None:
        self.paths, self.preprocess, self.keep = paths, preprocess, keep

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, bool, Tensor | None]:
        try:
            image = decode_checked(self.paths[i], self.preprocess.channels)
        except UnreadableImage:
            return i, False, None
        return i, True, self.preprocess(image) if self.keep else None


def decode_all(
    paths: list[Path], preprocess: Preprocess, keep: bool, workers: int
) -> tuple[Tensor | None, list[int]]:
    """Every file decoded once, in parallel: (uint8 (N, C, S, S) when ``keep``, unreadable indices).
    Streamed folders run it too (without keeping), so a bad file stops the run before training."""
    size = (len(paths), preprocess.channels, preprocess.image_size, preprocess.image_size)
    images = torch.empty(size, dtype=torch.uint8) if keep else None
    bad = []
    loader = DataLoader(
        _Decoded(paths, preprocess, keep),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=16 if workers else None,
    )
    for i, ok, image in loader:
        if not ok:
            bad.append(i)
        elif images is not None:
            images[i] = image
    return images, sorted(bad)


class ImageFolderData(LabelledData, PlainData):
    """Every image file below ``root`` (recursive), resized on the short side to ``image_size`` and
    centre-cropped (``center_crop`` first, for aligned faces), as pytorch/examples' DCGAN.

    Held-out split: ``root/test/`` (or ``val/``) when present, else a ``holdout`` fraction chosen
    by a hash of each file's relative path. ``labels=folders``: class = first-level subfolder.

    Args:
        memory_limit_gb: decode everything once and hold it as uint8 when it fits; else stream.
        skip_corrupt: drop unreadable images with one warning instead of stopping.
    """

    batch_kind = "images"
    no_labels_hint = "data=image_folder has labels only with data.labels=folders (one subfolder per class)"

    def __init__(
        self,
        root: str | None = None,
        image_size: int = 64,
        channels: int = 3,
        center_crop: int | None = None,
        flip: bool = False,
        labels: str = "none",
        holdout: float = 0.05,
        skip_corrupt: bool = False,
        memory_limit_gb: float = 4.0,
        batch_size: int = 128,
        num_workers: int = 4,
        pin_memory: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if root is None:
            raise ConfigError("data=image_folder needs data.root=<folder of images>")
        if labels not in LABELS:
            raise ConfigError(f"data.labels={labels} must be one of {', '.join(LABELS)}")
        if not 0.0 <= holdout < 1.0:
            raise ConfigError(f"data.holdout={holdout} must be in [0, 1): the held-out fraction")
        if batch_size < 1 or num_workers < 0 or memory_limit_gb < 0:
            raise ConfigError("data.batch_size must be ≥ 1, data.num_workers and data.memory_limit_gb ≥ 0")
        self.root, self.labels_from, self.holdout = Path(root).expanduser(), labels, holdout
        self.preprocess = Preprocess(image_size, channels, center_crop)
        self.image_size, self.channels, self.flip = image_size, channels, flip
        self.skip_corrupt, self.memory_limit_gb = skip_corrupt, memory_limit_gb
        self.batch_size, self.num_workers, self.pin_memory, self.seed = (
            batch_size,
            num_workers,
            pin_memory,
            seed,
        )
        self.split: dict[str, list[Path]] | None = None
        self.targets: dict[str, Tensor] = {}
        self.train_set: FolderImages | None = None
        self.test_set: FolderImages | None = None
        self.in_memory: bool | None = None

    # --- which files, which split, which class ---

    def check_root(self) -> None:
        ImageFolder(self.root).prepare()

    def scan(self) -> dict[str, list[Path]]:
        """{"train": paths, "test": paths}, sorted; a one-line error for an empty folder."""
        if self.split is not None:
            return self.split
        self.check_root()
        held = next((self.root / n for n in HELD_OUT if (self.root / n).is_dir()), None)
        paths = list_images(self.root)
        if held is not None:
            test = [p for p in paths if p.is_relative_to(held)]
            train = [p for p in paths if not p.is_relative_to(held)]
        else:
            test = [p for p in paths if in_holdout(p.relative_to(self.root).as_posix(), self.holdout)]
            chosen = set(test)
            train = [p for p in paths if p not in chosen]
        if not train:
            others = [p.name for p in self.root.rglob("*") if p.is_file()][:3]
            found = f"; found only other files ({', '.join(others)})" if others else ""
            raise DataError(
                f"data.root={self.root} holds no training images{found}; expected files ending in "
                f"{', '.join(sorted(IMG_EXTENSIONS))}"
            )
        self._check_size(len(train))  # before anything is written (and again after skipping)
        self.split = {"train": train, "test": test, "held_out": [str(held)] if held else []}
        return self.split

    def class_names(self) -> list[str]:
        if self.labels_from != "folders":
            return []
        split = self.scan()
        top = [p for p in split["train"] if p.parent == self.root]
        if top:
            raise DataError(
                f"data.labels=folders needs every image in a class subfolder of {self.root}, but "
                f"{len(top)} are at its top level (e.g. {top[0].name}); move them into a class folder"
            )
        names = sorted({p.relative_to(self.root).parts[0] for p in split["train"]})
        if len(names) < 2:
            raise DataError(
                f"data.labels=folders found {len(names)} class folder(s) under {self.root} "
                f"({', '.join(names) or 'none'}); a conditional GAN needs at least 2"
            )
        return names

    def _class_of(self, paths: list[Path], base: Path, names: list[str]) -> Tensor:
        index = {n: k for k, n in enumerate(names)}
        labels = []
        for p in paths:
            name = p.relative_to(base).parts[0]
            if name not in index or p.parent == base:
                raise DataError(f"{p} is not in one of the class folders {', '.join(names)} of {self.root}")
            labels.append(index[name])
        return torch.tensor(labels, dtype=torch.long)

    def split_info(self) -> dict[str, object]:
        """What the run trains and evaluates on (stored in the run config and checkpoints)."""
        split = self.scan()
        held = split["held_out"]
        return {
            "root": str(self.root.resolve()),
            "train_images": len(split["train"]),
            "test_images": len(split["test"]),
            "held_out": f"{held[0]} folder" if held else f"data.holdout={self.holdout} by relative-path hash",
        }

    # --- loading ---

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        split = self.scan()
        names = self.class_names() if self.labelled else []
        held = Path(split["held_out"][0]) if split["held_out"] else self.root
        n_pixels = (len(split["train"]) + len(split["test"])) * self.channels * self.image_size**2
        self.in_memory = n_pixels <= self.memory_limit_gb * 1e9
        sets = {}
        for name in ("train", "test"):
            images, paths = self._load(split[name], name)
            labels = self._class_of(paths, self.root if name == "train" else held, names) if names else None
            if name == "train":
                self._check_size(len(paths))
            sets[name] = FolderImages(
                paths, labels, self.preprocess, self.flip and name == "train", self.seed, images
            )
        self.train_set, self.test_set = sets["train"], sets["test"]

    def _load(self, paths: list[Path], name: str) -> tuple[Tensor | None, list[Path]]:
        if not paths:
            return (torch.empty(0, self.channels, self.image_size, self.image_size, dtype=torch.uint8)
                    if self.in_memory else None), []  # fmt: skip
        images, bad = decode_all(paths, self.preprocess, bool(self.in_memory), self.num_workers)
        if bad and not self.skip_corrupt:
            shown = ", ".join(str(paths[i].relative_to(self.root)) for i in bad[:10])
            raise DataError(
                f"{len(bad)} unreadable image(s) in {self.root}: {shown}{' ...' if len(bad) > 10 else ''}; "
                "delete them or set data.skip_corrupt=true"
            )
        if bad:
            warnings.warn(
                f"skipping {len(bad)} unreadable image(s) in {self.root}: "
                + ", ".join(str(paths[i].relative_to(self.root)) for i in bad),
                stacklevel=2,
            )
            keep = [i for i in range(len(paths)) if i not in set(bad)]
            paths = [paths[i] for i in keep]
            images = images[keep] if images is not None else None
            if not paths and name == "train":
                raise DataError(f"data.root={self.root} holds no readable images")
        self.split[name] = paths  # the fingerprint and references see what training sees
        return images, paths

    def _check_size(self, n: int) -> None:
        if n < self.batch_size:
            raise ConfigError(
                f"data.batch_size={self.batch_size} exceeds the {n} training images in {self.root}; "
                "lower data.batch_size or add images"
            )

    def train_dataloader(self) -> StatefulDataLoader:
        assert self.train_set is not None
        workers = 0 if self.in_memory else self.num_workers  # in memory: indexing beats worker IPC
        return StatefulDataLoader(
            self.train_set,
            sampler=EpochTaggedSampler(len(self.train_set), shuffle=True, seed=self.seed),
            batch_size=self.batch_size,
            drop_last=True,  # static shapes; BatchNorm on a 1-image batch is undefined
            collate_fn=_as_batch,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(self.seed + 1),
        )

    def val_dataloader(self) -> DataLoader | list:
        assert self.test_set is not None
        if not len(self.test_set):
            return []
        workers = 0 if self.in_memory else self.num_workers
        return DataLoader(
            self.test_set, batch_size=self.batch_size, collate_fn=_as_batch, num_workers=workers
        )

    def transform_name(self) -> str:
        crop = f" centre-crop {self.preprocess.center_crop}," if self.preprocess.center_crop else ""
        return (
            f"{crop} short side {self.image_size} bilinear-antialias, centre-crop, {self.channels}ch".strip()
        )

    def fid_references(
        self, split: str, limit: int | None = None, per_class: bool = False
    ) -> dict[str, Reference]:
        """The split's images (no flip); cached under the folder's content fingerprint."""
        dataset = self.reference_set(split)
        if not len(dataset):
            raise DataError(
                f"data.root={self.root} has no held-out images for FID; add a test/ folder, raise "
                "data.holdout, or use metrics.reference=train"
            )
        paths = dataset.paths[:limit] if limit else dataset.paths
        images = (
            dataset.images[: len(paths)] if dataset.images is not None else LazyImages(paths, self.preprocess)
        )
        name = f"folder {self.root.resolve()} {fingerprint(self.root, paths, self.transform_name())}"
        reference = Reference(name, split, self.transform_name(), images)
        return per_class_references(reference, dataset.labels, self.class_names, per_class)
