"""Shared machinery of the data sets, and the base of those small enough to hold in memory as
uint8 tensors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import RandomSampler, StatefulDistributedSampler

from ganlab.errors import CheckpointError, ConfigError
from ganlab.pixels import Batch, batch_to_model_range, to_model_range  # noqa: F401
from ganlab.reference import Reference


class UInt8Images(Dataset):
    """Images (N, C, H, W) as uint8, and their labels (N,) when given; a batch is fetched with one
    indexing operation."""

    def __init__(self, images: Tensor, labels: Tensor | None = None) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> Batch:
        return (
            self.__getitems__([index])[0] if self.labels is None else (self.images[index], self.labels[index])
        )

    def __getitems__(self, indices: list[int]) -> Batch:
        if self.labels is None:
            return self.images[indices]
        return self.images[indices], self.labels[indices]


class DeviceBatches:
    """Training batches indexed straight out of a uint8 tensor on the training device.

    ``data.on_device=true``: no DataLoader, no host-to-device copy per batch. The order is a
    permutation drawn on the CPU from (seed, epoch), split over DDP ranks; the position (epoch,
    batches done) is saved in checkpoints, so a resumed run continues with the same batches.
    """

    def __init__(
        self,
        images: Tensor,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        labels: Tensor | None = None,
    ) -> None:
        self.images, self.batch_size, self.seed, self.rank, self.world = images, batch_size, seed, rank, world
        self.labels = labels
        self.epoch, self.start = 0, 0  # where the next iter() begins
        self.position = (0, 0)  # (epoch, batches yielded) of the running iteration

    def __len__(self) -> int:
        return len(self.images) // self.world // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        epoch, start = self.epoch, self.start
        self.epoch, self.start = epoch + 1, 0  # one iter() per epoch, also when abandoned early
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.images), generator=g)[self.rank :: self.world]
        order = order[: len(self) * self.batch_size].to(self.images.device).view(len(self), self.batch_size)
        return self._batches(epoch, start, order)

    def _batches(self, epoch: int, start: int, order: Tensor) -> Iterator[Batch]:
        for i in range(start, len(order)):
            self.position = (epoch, i + 1)
            yield (
                self.images[order[i]]
                if self.labels is None
                else (self.images[order[i]], self.labels[order[i]])
            )

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.position[0], "done": self.position[1]}

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, done = state_ints(state, ("epoch", "done"))
        if done >= len(self):  # saved at the end of an epoch: the next one starts afresh
            epoch, done = epoch + 1, 0
        self.epoch, self.start, self.position = epoch, done, (epoch, done)


class ShardedSampler(StatefulDistributedSampler):
    """DDP: this rank's share of a shuffle fixed by (seed, epoch) (Lightning sets the epoch), its
    position saved in checkpoints so that a resumed run draws the same batches. A position saved at
    an epoch's end starts the next epoch from its first batch (torchdata's own would skip it whole).
    Given to the loader as a ``DistributedSampler``, so Lightning keeps it instead of its own, whose
    position a resume does not restore."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        (yielded,) = state_ints(state_dict, ("yielded",))
        self.next_yielded = yielded if yielded < self.num_samples else None


def state_ints(state: Any, keys: tuple[str, ...]) -> tuple[int, ...]:
    """The whole numbers ≥ 0 a sampler's saved state holds, or one line: a crafted or damaged state
    never reaches the sampler."""
    values = tuple(state.get(k) if isinstance(state, dict) else None for k in keys)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise CheckpointError(
            f"the checkpoint's data sampler state ({str(state)[:80]}) is not {'/'.join(keys)} counts; "
            "the file is damaged or was edited (nothing was trained from it)"
        )
    return values


def _as_batch(batch: Batch) -> Batch:
    return batch  # __getitems__ already returns the stacked batch


class PlainData:
    """The base of ganlab's data sets: everything a data module does, without Lightning.

    ``ganlab.data.<name>`` makes each a ``LightningDataModule`` (the class configs name) by adding
    Lightning's base after it, so training runs exactly this code; ``evaluate`` builds the plain
    class and never imports Lightning. Methods named as Lightning's hooks (``prepare_data``,
    ``setup``, ``train_dataloader``, ``on_after_batch_transfer``) are those hooks; ``trainer`` is
    Lightning's while it trains, else None.
    """

    trainer: Any = None


class LabelledData:
    """Class labels for conditional GANs: ``use_labels()`` turns them on (batches become
    (images, labels)) and returns the class names; data without labels says how to get them.
    Batches leave the loader as uint8 and become float in [−1, 1] on the device."""

    labelled = False
    no_labels_hint = "this data set has no class labels"

    def class_names(self) -> list[str]:
        return []

    def use_labels(self) -> list[str]:
        names = self.class_names()
        if len(names) < 2:
            raise ConfigError(f"model.conditional=true needs class labels, but {self.no_labels_hint}")
        self.labelled = True
        return names

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        return batch_to_model_range(batch)

    def reference_set(self, split: str) -> Any:
        """The train or test set FID compares with (``metrics.reference``), set up."""
        check_reference_split(split)
        self.setup()
        return self.train_set if split == "train" else self.test_set


def check_reference_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ConfigError(f"metrics.reference={split} must be train or test")


def per_class_references(
    reference: Reference, labels: Tensor | None, names: Callable[[], list[str]], per_class: bool
) -> dict[str, Reference]:
    """The overall reference (key ""), and with ``per_class`` one per class (``class_<k>``)."""
    out = {"": reference}
    if per_class:
        if labels is None:
            raise ConfigError("metrics.per_class=true needs a conditional model (model.conditional=true)")
        for k, name in enumerate(names()):
            images = reference.images[labels[: len(reference.images)] == k]
            out[f"class_{k}"] = Reference(
                reference.dataset, reference.split, f"{reference.transform} class {name}", images
            )
    return out


RESIZE_MODES = ("resize", "pad")


def fit_images(images: Tensor, image_size: int, channels: int, resize: str = "resize") -> Tensor:
    """uint8 (N, C, H, W) → uint8 (N, channels, image_size, image_size), once up front: resized
    (bilinear, antialiased), or ``pad``: centred on a black border (−1 in the model's range), as
    pytorch/examples pads MNIST 28 → 32."""
    if images.shape[1] == 1 and channels == 3:
        images = images.expand(-1, 3, -1, -1)
    elif images.shape[1] != channels:
        raise ConfigError(
            f"data.channels={channels}: cannot make {images.shape[1]}-channel images {channels}-channel"
        )
    if resize not in RESIZE_MODES:
        raise ConfigError(f"data.resize={resize} must be one of {', '.join(RESIZE_MODES)}")
    if resize == "pad" and images.shape[-1] != image_size:
        border = image_size - images.shape[-1]
        if border < 0 or border % 2:
            raise ConfigError(
                f"data.resize=pad needs data.image_size ≥ {images.shape[-1]} with an even border; "
                f"got {image_size}"
            )
        return F.pad(images, (border // 2,) * 4).contiguous()
    if images.shape[-1] != image_size:
        out = []
        for chunk in images.split(4096):  # bounded memory for the float copy
            resized = F.interpolate(
                chunk.float(), size=(image_size, image_size), mode="bilinear", antialias=True
            )
            out.append(resized.round_().clamp_(0, 255).to(torch.uint8))
        images = torch.cat(out)
    return images.contiguous()


class InMemoryImageData(LabelledData, PlainData):
    """Base for MNIST and CIFAR-10: train and test splits held as uint8 tensors.

    Batches leave the loader as uint8 and become float in [−1, 1] after the transfer to the device
    (``on_after_batch_transfer``), so a GPU run copies a quarter of the bytes. The training loader is
    a ``StatefulDataLoader``: its order is saved in checkpoints, so a resumed run sees the same
    batches as an uninterrupted one, also from the middle of an epoch.
    """

    batch_kind = "images"  # batches are image tensors (see GanModule.batch_kind)
    fid_name = "images"  # the data set's name in FID cache keys

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
    ) -> None:
        super().__init__()
        if resize not in RESIZE_MODES:
            raise ConfigError(f"data.resize={resize} must be one of {', '.join(RESIZE_MODES)}")
        if limit_train is not None and limit_train < 1:
            raise ConfigError(f"data.limit_train={limit_train} must be ≥ 1 (or null for the whole set)")
        self.on_device, self.resize, self.limit_train = on_device, resize, limit_train
        self.data_dir, self.batch_size, self.num_workers = data_dir, batch_size, num_workers
        self.image_size, self.channels, self.seed = image_size, channels, seed
        self.pin_memory = pin_memory
        self.train_set: UInt8Images | None = None
        self.test_set: UInt8Images | None = None

    def load_split(self, train: bool) -> Tensor:
        """uint8 (N, C, H, W) images of one split, as stored on disk."""
        raise NotImplementedError

    def load_labels(self, train: bool) -> Tensor:
        """int64 (N,) class indices of one split (data sets with ``class_names``)."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            train = self.load_split(True)[: self.limit_train]  # the first N: a small-data experiment
            fit = lambda x: fit_images(x, self.image_size, self.channels, self.resize)  # noqa: E731
            labels = (
                (self.load_labels(True)[: self.limit_train], self.load_labels(False))
                if self.labelled
                else (None, None)
            )
            self.train_set = UInt8Images(fit(train), labels[0])
            self.test_set = UInt8Images(fit(self.load_split(False)), labels[1])

    def _loader_kwargs(self) -> dict[str, Any]:
        return dict(
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=_as_batch,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> StatefulDataLoader | DeviceBatches:
        assert self.train_set is not None
        if self.on_device and self.trainer is not None:
            strategy = self.trainer.strategy
            images = self.train_set.images.to(strategy.root_device)
            labels = None if self.train_set.labels is None else self.train_set.labels.to(strategy.root_device)
            return DeviceBatches(
                images, self.batch_size, self.seed, self.trainer.global_rank, self.trainer.world_size, labels
            )
        if len(self.train_set) < self.batch_size:
            raise ConfigError(
                f"data.batch_size={self.batch_size} exceeds the {len(self.train_set)} training images"
            )
        # The sampler's generator draws only permutations (the loader's own draws worker seeds),
        # so the order of every epoch is fixed by the seed and survives a resume.
        sampler: RandomSampler | ShardedSampler
        if self.trainer is not None and self.trainer.world_size > 1:
            sampler = ShardedSampler(
                self.train_set, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank,
                seed=self.seed, drop_last=True,
            )  # fmt: skip
        else:
            sampler = RandomSampler(self.train_set, generator=torch.Generator().manual_seed(self.seed))
        return StatefulDataLoader(
            self.train_set,
            sampler=sampler,
            drop_last=True,  # static shapes; BatchNorm on a 1-image batch is undefined
            generator=torch.Generator().manual_seed(self.seed + 1),
            **self._loader_kwargs(),
        )

    def val_dataloader(self) -> DataLoader:
        assert self.test_set is not None
        return DataLoader(self.test_set, shuffle=False, **self._loader_kwargs())

    def fid_references(
        self, split: str, limit: int | None = None, per_class: bool = False
    ) -> dict[str, Reference]:
        """The real images FID compares with: key "", and ``class_<k>`` per class when asked."""
        dataset = self.reference_set(split)
        images = dataset.images[:limit] if limit else dataset.images
        transform = f"{self.image_size}px {self.channels}ch " + (
            "pad" if self.resize == "pad" else "bilinear-antialias"
        )
        reference = Reference(self.fid_name, split, transform, images)
        return per_class_references(reference, dataset.labels, self.class_names, per_class)
