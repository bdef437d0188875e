"""U-Net generator of pix2pix (Isola et al. 2017, appendix 6.1.1; Ronneberger et al. 2015).

Encoder C64-C128-C256-C512-C512-C512-C512-C512 (4×4 convs, stride 2, LeakyReLU 0.2), decoder
CD512-CD512-CD512-C512-C256-C128-C64 (ReLU, dropout 0.5 on the first three), each decoder layer
fed the concatenation of the previous one and the mirrored encoder layer. Built as the official
code builds it, recursively from the innermost block outwards, so the state dict has the official
key layout (``model.model.1.model.3…``) and official files load without a key map.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor, nn

from ganlab.nets.init import dcgan_init
from ganlab.registry import register

NORM = Literal["batch", "instance"]  # the type hint (checked before import)
NORMS = get_args(NORM)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class SkipBlock(nn.Module):
    """x → cat(x, up(inner(down(x)))) : (B, outer, s, s) → (B, 2·outer, s, s); outermost: no cat."""

    def __init__(
        self,
        outer: int,
        inner: int,
        *,
        in_channels: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        norm: NORM = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"  # a batch norm's shift replaces the conv bias
        down = nn.Conv2d(in_channels or outer, inner, kernel_size=4, stride=2, padding=1, bias=bias)
        if outermost:  # (B, C_in, s, s) → … → (B, C_out, s, s) in [−1, 1]
            up = nn.ConvTranspose2d(inner * 2, outer, kernel_size=4, stride=2, padding=1)
            layers = [down, submodule, nn.ReLU(True), up, nn.Tanh()]
        elif submodule is None:  # innermost: 1×1 at 256 px, no norm after its down conv
            up = nn.ConvTranspose2d(inner, outer, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, _norm(norm, outer)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, _norm(norm, inner), submodule]
            layers += [nn.ReLU(True), up, _norm(norm, outer)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


@register
class UnetGenerator(nn.Module):
    """image (B, in_channels, s, s) → image (B, out_channels, s, s); s a multiple of 2^num_downs.

    Args:
        num_downs: 8 for 256 px (``unet_256``: 1×1 at the bottleneck), 7 for 128 px (``unet_128``).
        norm: ``batch`` (pix2pix) or ``instance``.
        dropout: in the three innermost decoder blocks below the bottleneck (pix2pix: 0.5).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        num_downs: int = 8,
        norm: NORM = "batch",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if num_downs < 5 or norm not in NORMS:
            raise ValueError(f"num_downs={num_downs} must be ≥ 5 and norm={norm} one of {NORMS}")
        self.size_multiple = 2**num_downs  # each side must divide by it (1×1 at the bottleneck)
        block = SkipBlock(ngf * 8, ngf * 8, norm=norm)  # innermost
        for _ in range(num_downs - 5):
            block = SkipBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):  # 8·ngf → 4·ngf → 2·ngf → ngf towards the outside
            block = SkipBlock(ngf * mult, ngf * mult * 2, submodule=block, norm=norm)
        self.model = SkipBlock(
            out_channels, ngf, in_channels=in_channels, submodule=block, outermost=True, norm=norm
        )
        dcgan_init(self)  # the official init_type=normal, gain 0.02

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
