"""FID/KID of a generator against a reference split: the part shared by training and the CLI."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganlab.errors import DiskError
from ganlab.metrics.cache import RealStatsCache
from ganlab.metrics.fid import FidKid
from ganlab.metrics.inception import WEIGHTS_FILE, InceptionFeatures, to_uint8, weights_sha256
from ganlab.metrics.vgg import VggFeatures
from ganlab.reference import Reference


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _rank_zero_says(flag: bool, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank: a decision all ranks must share (a cache hit seen by one rank
    and missed by another would leave them in different collectives)."""
    if _dist()[1] == 1:
        return flag
    backend = torch.distributed.get_backend()
    decided = torch.tensor([int(flag)], device=device if backend == "nccl" else "cpu")
    torch.distributed.broadcast(decided, src=0)
    return bool(decided.item())


def shard(n: int, rank: int, world: int) -> slice:
    """This rank's contiguous part of n items: exactly n in total, no padding duplicates."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


class FIDEvaluator:
    """One Inception extractor, FID + KID per comparison, real statistics cached on disk."""

    def __init__(
        self,
        weights: Path,
        cache_dir: str | Path | None,
        device: torch.device,
        dim: int = 2048,
        batch_size: int = 100,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        vgg_weights: Path | None = None,
        isc: bool = False,
    ) -> None:
        self.device, self.batch_size = device, batch_size
        self.isc = isc
        self.extractor = InceptionFeatures(weights, dim, logits=isc).to(device)
        # precision/recall: VGG-16 features of both sides, this rank's share, kept per comparison
        self.vgg = VggFeatures(vgg_weights).to(device) if vgg_weights is not None else None
        self.vgg_real: dict[str, Tensor] = {}
        self.cache = RealStatsCache(cache_dir) if cache_dir is not None else None
        self.metrics: dict[str, FidKid] = {}
        self.kid_args = (kid_subsets, kid_subset_size)
        self.dim = dim
        self.weights_sha256 = weights_sha256(weights)
        self._warned_small: set[str] = set()  # comparisons already warned about (< dim images)
        self.cache_hits: list[str] = []  # which comparisons came from the cache (for tests and logs)

    def protocol(self) -> dict[str, Any]:
        return {
            "extractor": f"torch-fidelity inception-v3-compat ({WEIGHTS_FILE}), feature {self.dim}",
            "weights_sha256": self.weights_sha256,
            "resize": "299x299 bilinear as TF1, antialias=False",
            "inputs": "uint8, float32 extractor outside autocast",
        }

    def features(self, images: Tensor) -> Tensor:
        return self.extractor(images.to(self.device, non_blocking=True))

    def set_reference(self, key: str, ref: Reference) -> None:
        """Real statistics for comparison ``key``: from the cache, else computed (sharded over ranks)."""
        rank, world = _dist()
        metric = FidKid(self.dim, *self.kid_args).to(self.device)
        meta = {
            "dataset": ref.dataset, "split": ref.split, "transform": ref.transform, "count": len(ref.images),
            "weights_sha256": self.weights_sha256, "feature": self.dim,
        }  # fmt: skip
        claim = self.cache.claim(meta) if self.cache is not None and rank == 0 else contextlib.nullcontext()
        with claim:  # rank 0 of each job in turn: the first computes, the others read its file
            state = self.cache.load(meta) if self.cache is not None and rank == 0 else None
            if not _rank_zero_says(state is not None, self.device):  # every rank computes its shard
                part = ref.images[shard(len(ref.images), rank, world)]
                for batch in part.split(self.batch_size):
                    metric.update(self.features(batch), real=True)
                state = _synced_real_state(metric)
                if self.cache is not None and rank == 0:
                    try:
                        self.cache.save(meta, state)
                    except DiskError as e:  # a cache only saves time: the statistics are in hand
                        note = "the real statistics are not cached (paths.cache_dir sets the folder)"
                        warnings.warn(f"{e}; {note}", stacklevel=2)
            else:
                self.cache_hits.append(key)
                state = state or {"features": torch.empty(0, self.dim)}  # ranks > 0 keep zeros
        metric.load_real_state(state, keep=rank == 0)  # summed over ranks at compute(): exact
        self.metrics[key] = metric
        if self.vgg is not None:  # not cached: needed only with metrics.prc
            part = ref.images[shard(len(ref.images), rank, world)]
            self.vgg_real[key] = self._vgg_features(part.split(self.batch_size))

    def set_reference_batches(self, key: str, batches: Iterator[Tensor]) -> None:
        """Real statistics for ``key`` from uint8 batches, not cached (folders change under one name)."""
        metric = FidKid(self.dim, *self.kid_args).to(self.device)
        vgg = []
        for batch in batches:
            metric.update(self.features(batch), real=True)
            if self.vgg is not None:
                vgg.append(self.vgg(batch.to(self.device)))
        self.metrics[key] = metric
        if self.vgg is not None:
            self.vgg_real[key] = torch.cat(vgg)

    def _vgg_features(self, batches: Iterator[Tensor] | tuple[Tensor, ...]) -> Tensor:
        assert self.vgg is not None
        return torch.cat([self.vgg(b.to(self.device, non_blocking=True)) for b in batches])

    def score(self, key: str, fakes: Iterator[Tensor]) -> dict[str, float]:
        """FID/KID of this rank's generated uint8 batches against reference ``key``; all ranks call it."""
        metric = self.metrics[key]
        metric.reset_fake()
        logits, vgg = [], []
        for batch in fakes:
            metric.update(self.features(batch), real=False)
            if self.isc:
                logits.append(self.extractor.last_logits)
            if self.vgg is not None:
                vgg.append(self.vgg(batch.to(self.device, non_blocking=True)))
        result = metric.compute()
        if self.vgg is not None:
            result |= precision_recall(_gathered(torch.cat(vgg)), _gathered(self.vgg_real[key]))
        if self.isc:
            result |= inception_score(_gathered(torch.cat(logits)))
        n_real, n_fake = metric.counts()
        if min(n_real, n_fake) < self.dim and key not in self._warned_small:
            self._warned_small.add(key)
            warnings.warn(
                f"FID{f' ({key})' if key else ''} over {min(n_real, n_fake)} images, fewer than the "
                f"{self.dim} feature dimensions: the covariance is rank-deficient and FID is biased "
                "upwards; compare runs only at equal counts and read KID beside it",
                stacklevel=2,
            )
        return {**result, "num_real": n_real, "num_fake": n_fake}


def precision_recall(fake: Tensor, real: Tensor) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019; k = 3) of generated against real
    VGG-16 features, by torch-fidelity's code: precision, the share of generated images inside the
    real manifold; recall, the share of real images inside the generated one."""
    from torch_fidelity.metric_prc import (
        KEY_METRIC_F_SCORE,
        KEY_METRIC_PRECISION,
        KEY_METRIC_RECALL,
        prc_features_to_metric,
    )

    out = prc_features_to_metric(fake.float().cpu(), real.float().cpu(), verbose=False)
    keys = {"precision": KEY_METRIC_PRECISION, "recall": KEY_METRIC_RECALL, "f_score": KEY_METRIC_F_SCORE}
    return {name: float(out[key]) for name, key in keys.items()}


def inception_score(logits: Tensor) -> dict[str, float]:
    """Inception Score (Salimans et al. 2016) of the generated images, by torch-fidelity's code:
    10 splits of the shuffled logits (its seed), mean and standard deviation."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    out = isc_features_to_metric(logits.cpu())
    return {"isc_mean": float(out[KEY_METRIC_ISC_MEAN]), "isc_std": float(out[KEY_METRIC_ISC_STD])}


def _gathered(tensor: Tensor) -> Tensor:
    """All ranks' rows, rank order (uneven counts allowed)."""
    if _dist()[1] == 1:
        return tensor
    from torchmetrics.utilities.distributed import gather_all_tensors

    return torch.cat(gather_all_tensors(tensor))


def _synced_real_state(metric: FidKid) -> dict[str, Tensor]:
    """The real state summed over ranks (every rank gets the full statistics)."""
    if _dist()[1] == 1:
        return metric.real_state()
    metric.flatten_kid()
    metric.fid.sync()
    metric.kid.sync()
    state = metric.real_state()
    metric.fid.unsync()
    metric.kid.unsync()
    return state


def generated_batches(make: Callable[[Tensor], Tensor], sources: Tensor, batch_size: int) -> Iterator[Tensor]:
    """This rank's share of ``sources`` through ``make`` (→ [−1, 1]), as uint8 batches."""
    rank, world = _dist()
    for batch in sources[shard(len(sources), rank, world)].split(batch_size):
        yield to_uint8(make(batch))
