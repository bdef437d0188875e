"""Paired translation metrics (pix2pix): each translation against its own target."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure


@torch.no_grad()
def paired_scores(
    translate: Callable[[Tensor], Tensor],
    sources: Tensor,
    targets: Tensor,
    batch_size: int,
    device: torch.device,
    lpips: nn.Module | None = None,
) -> dict[str, float]:
    """L1 (mean |G(x) − y|), PSNR (dB) and SSIM over all pairs, images scaled to [0, 1]; with an
    ``lpips`` network also the mean LPIPS (lower is closer).

    ``translate`` maps uint8 sources (B, C, H, W) to images in [−1, 1]; ``targets`` are uint8.
    PSNR pools the squared error of every pixel of every pair (one number for the split).
    """
    psnr = PeakSignalNoiseRatio(data_range=1.0).to(device)
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0).to(device)
    l1, perceptual, count = torch.zeros((), device=device), torch.zeros((), device=device), 0
    for start in range(0, len(sources), batch_size):
        fake = translate(sources[start : start + batch_size].to(device)).float().add(1).div(2).clamp(0, 1)
        real = targets[start : start + batch_size].to(device).float().div(255)
        l1 += (fake - real).abs().mean(dim=(1, 2, 3)).sum()
        count += len(fake)
        psnr.update(fake, real)
        ssim.update(fake, real)
        if lpips is not None:
            perceptual += lpips(fake * 2 - 1, real * 2 - 1).sum()
    scores = {"l1": float(l1) / count, "psnr": float(psnr.compute()), "ssim": float(ssim.compute())}
    if lpips is not None:
        scores["lpips"] = float(perceptual) / count
    return scores
