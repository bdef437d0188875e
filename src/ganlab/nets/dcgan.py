"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016, §3 guidelines).

G: fractionally-strided convolutions from z, BatchNorm, ReLU, Tanh output.
D: strided convolutions, BatchNorm on every layer but the first, LeakyReLU(0.2), logits out.
No pooling, no fully-connected hidden layers. Both are fully convolutional over a pyramid that
halves the spatial size per layer from ``image_size`` down to a base of 4–7 pixels:
64 → 32 → 16 → 8 → 4, 32 → 16 → 8 → 4, and MNIST's native 28 → 14 → 7.

``num_classes`` makes both class-conditional (``ganlab.nets.conditional``): G's BatchNorms become
conditional BatchNorms, D gains a projection head on its last hidden features. Without it the
networks (and their state_dict keys) are exactly the unconditional DCGAN.
"""

from __future__ import annotations

from typing import Literal, get_args

from torch import Tensor, nn

from ganlab.errors import ConfigError
from ganlab.nets.conditional import ConditionalBatchNorm2d, Projection, check_labels
from ganlab.nets.init import INIT, initialise
from ganlab.nets.sizes import pyramid
from ganlab.registry import register


def _classes(num_classes: int | None, key: str) -> int | None:
    if num_classes is not None and num_classes < 2:
        raise ConfigError(f"{key}={num_classes}: a conditional GAN needs at least 2 classes")
    return num_classes


@register
class Generator(nn.Module):
    """z (B, latent_dim) [, y] → image (B, channels, image_size, image_size) in [−1, 1]."""

    def __init__(
        self,
        latent_dim: int = 100,
        channels: int = 3,
        image_size: int = 64,
        ngf: int = 64,
        init: INIT = "dcgan",
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        self.num_classes = _classes(num_classes, "model.generator.num_classes")
        base, stages = pyramid(image_size)
        width = ngf * 2 ** (stages - 1)
        norm = (lambda c: ConditionalBatchNorm2d(c, num_classes)) if num_classes else nn.BatchNorm2d
        # project and reshape: (B, z, 1, 1) → (B, width, base, base)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, width, kernel_size=base, stride=1, padding=0, bias=False),
            norm(width),
            nn.ReLU(inplace=True),
        ]
        for _ in range(stages - 1):  # each stage: (B, w, s, s) → (B, w/2, 2s, 2s)
            layers += [
                nn.ConvTranspose2d(width, width // 2, kernel_size=4, stride=2, padding=1, bias=False),
                norm(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        # (B, ngf, S/2, S/2) → (B, channels, S, S); no BN on the output layer (paper §3)
        layers += [
            nn.ConvTranspose2d(width, channels, kernel_size=4, stride=2, padding=1, bias=False),
            nn.Tanh(),
        ]
        self.net = nn.Sequential(*layers)
        initialise(self, init, "model.generator.init")

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """``y``: class indices (B,) or class weights (B, K), only for a conditional G."""
        check_labels(y, self.num_classes, "Generator")
        x = z.view(z.shape[0], self.latent_dim, 1, 1)
        if y is None:
            return self.net(x)
        for layer in self.net:
            x = layer(x, y) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
        return x


NORM = Literal["batch", "layer", "instance", "none"]  # the type hint (checked before import)
NORMS = get_args(NORM)


def _norm(kind: str, width: int) -> nn.Module:
    """D's hidden-layer normalisation; a gradient penalty needs one without batch statistics."""
    return {
        "batch": lambda: nn.BatchNorm2d(width),
        "layer": lambda: nn.GroupNorm(1, width),  # LayerNorm over (C, H, W), as WGAN-GP's critic
        "instance": lambda: nn.InstanceNorm2d(width, affine=True),
        "none": nn.Identity,
    }[kind]()


@register
class Discriminator(nn.Module):
    """image (B, channels, image_size, image_size) [, y] → logits (B,).

    Args:
        norm: hidden-layer normalisation, batch (the paper's), layer, instance or none.
        spectral_norm: divide every convolution's weight by its largest singular value, estimated
            by one power iteration per forward (Miyato et al. 2018; torch's parametrization).
        init: ``dcgan`` (N(0, 0.02), the paper's) or ``pytorch`` (torch's default).
        num_classes: a projection head: D(x, y) = ψ(φ(x)) + ⟨embed(y), Σ_hw φ(x)⟩.
    """

    def __init__(
        self,
        channels: int = 3,
        image_size: int = 64,
        ndf: int = 64,
        norm: NORM = "batch",
        spectral_norm: bool = False,
        init: INIT = "dcgan",
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = _classes(num_classes, "model.discriminator.num_classes")
        if norm not in NORMS:
            raise ConfigError(f"model.discriminator.norm={norm} must be one of {', '.join(NORMS)}")
        self.channels, self.image_size, self.norm = channels, image_size, norm
        base, stages = pyramid(image_size)
        # (B, C, S, S) → (B, ndf, S/2, S/2); no BN on the input layer (paper §3)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, kernel_size=4, stride=2, padding=1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = ndf
        for _ in range(stages - 1):  # each stage: (B, w, s, s) → (B, 2w, s/2, s/2)
            layers += [
                nn.Conv2d(width, width * 2, kernel_size=4, stride=2, padding=1, bias=False),
                _norm(norm, width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        # (B, width, base, base) → (B, 1, 1, 1): a convolution over the whole map, not an FC layer
        layers.append(nn.Conv2d(width, 1, kernel_size=base, stride=1, padding=0, bias=False))
        self.net = nn.Sequential(*layers)
        initialise(self, init, "model.discriminator.init")
        self.projection = Projection(width, num_classes) if num_classes else None
        if spectral_norm:
            for i, layer in enumerate(self.net):
                if isinstance(layer, nn.Conv2d):
                    self.net[i] = nn.utils.parametrizations.spectral_norm(layer)
            if self.projection is not None:  # the embedding too, as SNGAN-projection
                nn.utils.parametrizations.spectral_norm(self.projection.table)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "Discriminator")
        if self.projection is None:
            return self.net(x).view(-1)
        features = self.net[:-1](x)  # (B, width, base, base): φ(x)
        return self.net[-1](features).view(-1) + self.projection(features, y)
