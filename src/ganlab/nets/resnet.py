"""ResNet generator of CycleGAN (Zhu et al. 2017, appendix 7.2; Johnson et al. 2016).

c7s1-64, d128, d256, R256 × n_blocks, u128, u64, c7s1-3: reflection padding, instance norm, ReLU,
Tanh output. Fully convolutional: any input whose sides are multiples of 4 keeps its size.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganlab.nets.init import dcgan_init
from ganlab.registry import register


def _norm(channels: int) -> nn.Module:
    # affine=False, no running stats: the official code's instance norm
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResidualBlock(nn.Module):
    """x + [pad, conv3, norm, ReLU, (dropout), pad, conv3, norm](x); channels unchanged."""

    def __init__(self, channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=True),
            _norm(channels),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=True),
            _norm(channels),
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


@register
class ResnetGenerator(nn.Module):
    """image (B, in_channels, H, W) → image (B, out_channels, H, W) in [−1, 1]; H, W multiples of 4.

    Args:
        n_blocks: residual blocks at 1/4 resolution: 9 for 256 px, 6 for 128 px (the paper's).
        dropout: inside residual blocks; the official default is none.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.size_multiple = 4  # two stride-2 convs down, two up
        layers: list[nn.Module] = [  # c7s1-ngf: (B, C, H, W) → (B, ngf, H, W)
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, bias=True),
            _norm(ngf),
            nn.ReLU(inplace=True),
        ]
        width = ngf
        for _ in range(2):  # d2k: (B, w, s, s) → (B, 2w, s/2, s/2)
            layers += [
                nn.Conv2d(width, width * 2, kernel_size=3, stride=2, padding=1, bias=True),
                _norm(width * 2),
                nn.ReLU(inplace=True),
            ]
            width *= 2
        layers += [ResidualBlock(width, dropout=dropout) for _ in range(n_blocks)]
        for _ in range(2):  # uk: (B, w, s, s) → (B, w/2, 2s, 2s)
            layers += [
                nn.ConvTranspose2d(width, width // 2, kernel_size=3, stride=2, padding=1, output_padding=1),
                _norm(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        layers += [  # c7s1-C: (B, ngf, H, W) → (B, out_channels, H, W)
            nn.ReflectionPad2d(3),
            nn.Conv2d(width, out_channels, kernel_size=7),
            nn.Tanh(),
        ]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)  # the official init_type=normal, gain 0.02

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
