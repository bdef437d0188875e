"""DiffAugment (Zhao, Liu, Lin, Zhu & Han 2020): the same differentiable augmentation on every image
the discriminator sees — real and fake, in D's step and in G's — so D cannot memorise a small set
and G receives gradients through the augmentation. Policies as the official code: ``color``
(brightness, saturation, contrast), ``translation`` (up to 1/8 of the size, zero-filled),
``cutout`` (a square of half the size). Randomness comes from the caller's ``torch.Generator``
(the module's own, saved in checkpoints), so a resumed run draws the same augmentations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.errors import ConfigError
from ganlab.registry import lookup, names, register


def _rand(x: Tensor, g: torch.Generator, *shape: int) -> Tensor:
    return torch.rand(x.shape[0], *shape, device=x.device, dtype=x.dtype, generator=g)


def color(x: Tensor, g: torch.Generator) -> Tensor:
    x = x + (_rand(x, g, 1, 1, 1) - 0.5)  # brightness ± 0.5
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, g, 1, 1, 1) * 2) + mean  # saturation × [0, 2]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, g, 1, 1, 1) + 0.5) + mean  # contrast × [0.5, 1.5]


def _shifts(x: Tensor, g: torch.Generator, limit: int) -> Tensor:
    return torch.randint(-limit, limit + 1, (x.shape[0], 1, 1), device=x.device, generator=g)


def translation(x: Tensor, g: torch.Generator, ratio: float = 0.125) -> Tensor:
    b, _, h, w = x.shape
    dy = _shifts(x, g, int(h * ratio + 0.5))
    dx = _shifts(x, g, int(w * ratio + 0.5))
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    # index into a copy padded by one zero pixel: sources outside the image read that zero
    src_y = (rows + dy + 1).clamp(0, h + 1).expand(b, h, w)
    src_x = (cols + dx + 1).clamp(0, w + 1).expand(b, h, w)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # (B, H+2, W+2, C)
    batch = torch.arange(b, device=x.device).view(b, 1, 1).expand(b, h, w)
    return padded[batch, src_y, src_x].permute(0, 3, 1, 2)


def cutout(x: Tensor, g: torch.Generator, ratio: float = 0.5) -> Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device, generator=g) - ch // 2
    left = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device, generator=g) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)  # (B, H, W)
    return x * (~hole).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, Callable[[Tensor, torch.Generator], Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}  # the official code's policies; plugins add theirs with @register.augment(name)
for _name, _fn in POLICIES.items():
    register.augment(_name)(_fn)


def parse_policy(policy: str | Sequence[str] | None) -> list[str]:
    """``color,translation`` or a list → validated names (one line naming the registered ones)."""
    if not policy:
        return []
    chosen = [p.strip() for p in policy.split(",")] if isinstance(policy, str) else [str(p) for p in policy]
    unknown = [n for n in chosen if lookup("augment", n) is None]
    if unknown:
        raise ConfigError(
            f"model.augment has {', '.join(unknown)}; allowed: {', '.join(names('augment'))} "
            "(e.g. model.augment=[color,translation,cutout]; a plugin adds its own with @register.augment)"
        )
    return chosen


def diff_augment(x: Tensor, policy: Sequence[str], g: torch.Generator) -> Tensor:
    """Apply each named augmentation in order (differentiable in ``x``)."""
    for name in policy:
        x = lookup("augment", name)(x, g)
    return x.contiguous()
