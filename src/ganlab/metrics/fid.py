"""FID and KID from torchmetrics over precomputed Inception features, with a cacheable real side."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance


class _Precomputed(nn.Module):
    """The "feature extractor" handed to torchmetrics: features are computed once, outside."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, features: Tensor) -> Tensor:
        return features


class FidKid(nn.Module):
    """``FrechetInceptionDistance`` and ``KernelInceptionDistance`` fed the same features.

    One Inception pass serves both metrics; their states reduce across DDP ranks as torchmetrics
    defines (sums for FID, concatenation for KID), and every rank must call ``compute()``.
    """

    def __init__(self, dim: int = 2048, kid_subsets: int = 100, kid_subset_size: int = 1000) -> None:
        super().__init__()
        self.kid_subset_size = kid_subset_size
        self.fid = FrechetInceptionDistance(feature=_Precomputed(dim), reset_real_features=False)
        self.kid = KernelInceptionDistance(
            feature=_Precomputed(dim),
            subsets=kid_subsets,
            subset_size=kid_subset_size,
            reset_real_features=False,
        )

    def update(self, features: Tensor, real: bool) -> None:
        features = features.double() if features.dtype != torch.float64 else features
        self.fid.update(features, real=real)
        self.kid.update(features.float(), real=real)

    def compute(self) -> dict[str, float]:
        """{"fid", "kid_mean", "kid_std"}; KID subsets shrink to the smaller image count."""
        n_real, n_fake = self.counts()
        fid = float(self.fid.compute())
        self.kid.subset_size = max(2, min(self.kid_subset_size, n_real, n_fake))
        self.flatten_kid()
        with torch.random.fork_rng(devices=[]):  # the same KID subsets on every rank and every run
            torch.manual_seed(0)
            kid_mean, kid_std = self.kid.compute()
        return {"fid": fid, "kid_mean": float(kid_mean), "kid_std": float(kid_std)}

    def flatten_kid(self) -> None:
        """One tensor per KID list state on every rank: torchmetrics gathers list states element
        by element (no reduction is set for them), so ranks with different batch counts would run
        different numbers of collectives and hang."""
        dim = self.fid.real_features_sum.shape[0]
        device = self.fid.real_features_sum.device
        for name in ("real_features", "fake_features"):
            parts = getattr(self.kid, name)
            setattr(self.kid, name, [torch.cat(parts) if parts else torch.empty(0, dim, device=device)])

    def counts(self) -> tuple[int, int]:
        """(real, fake) image counts over all ranks."""
        counts = torch.stack([self.fid.real_features_num_samples, self.fid.fake_features_num_samples]).clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(counts)
        return int(counts[0]), int(counts[1])

    def reset_fake(self) -> None:
        """Forget the generated side, keep the real statistics."""
        self.fid.reset()  # reset_real_features=False keeps the real states
        self.kid.reset()

    def real_state(self) -> dict[str, Tensor]:
        return {
            "sum": self.fid.real_features_sum.detach().cpu(),
            "cov_sum": self.fid.real_features_cov_sum.detach().cpu(),
            "count": self.fid.real_features_num_samples.detach().cpu(),
            "features": torch.cat(self.kid.real_features).cpu() if self.kid.real_features else torch.empty(0),
        }

    def load_real_state(self, state: dict[str, Any], keep: bool = True) -> None:
        """Install cached real statistics; ``keep=False`` zeroes them (DDP ranks other than 0)."""
        device = self.fid.real_features_sum.device
        if keep:
            self.fid.real_features_sum = state["sum"].to(device, torch.float64)
            self.fid.real_features_cov_sum = state["cov_sum"].to(device, torch.float64)
            self.fid.real_features_num_samples = state["count"].to(device)
            self.kid.real_features = [state["features"].to(device)]
        else:
            self.fid.real_features_sum.zero_()
            self.fid.real_features_cov_sum.zero_()
            self.fid.real_features_num_samples.zero_()
            # an empty (0, dim) block, not an empty list: torchmetrics cannot gather an empty list
            self.kid.real_features = [torch.empty(0, state["features"].shape[-1], device=device)]
