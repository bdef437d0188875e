"""PatchGAN discriminator (Isola et al. 2017; CycleGAN's 70×70 with n_layers=3).

pix2pix's is conditional: it sees concat(A, B) (``in_channels=6``) and uses batch norm.

C64-C128-C256-C512 with 4×4 convolutions: instance norm on all but the first, LeakyReLU(0.2); a
last 4×4 convolution gives one logit per overlapping patch. Each output sees a 70×70 input window
at n_layers=3 (34×34 at 2, 142×142 at 4).
"""

from __future__ import annotations

from typing import Literal, get_args

from torch import Tensor, nn

from ganlab.nets.init import dcgan_init
from ganlab.registry import register

NORM = Literal["instance", "batch"]  # the type hint (checked before import)
NORMS = get_args(NORM)


@register
class PatchDiscriminator(nn.Module):
    """image (B, C, H, W) → patch logits (B, 1, H', W'); 256 px → 30×30 at n_layers=3."""

    def __init__(
        self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: NORM = "instance"
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm={norm} must be instance or batch")
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last of these keeps the resolution
            layers += [
                # a batch norm's shift replaces the conv bias (pix2pix); instance norm keeps it (CycleGAN)
                nn.Conv2d(width, out, kernel_size=4, stride=stride, padding=1, bias=norm == "instance"),
                nn.BatchNorm2d(out)
                if norm == "batch"
                else nn.InstanceNorm2d(out, affine=False, track_running_stats=False),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width = out
        layers.append(nn.Conv2d(width, 1, kernel_size=4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
