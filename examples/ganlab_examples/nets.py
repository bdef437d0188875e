"""The labs: a DCGAN generator and discriminator written from scratch (Radford et al. 2016, §3).

G: z → transposed convolutions (BN, ReLU) → Tanh; D: strided convolutions (LeakyReLU 0.2) → one
logit. No pooling, no fully connected hidden layers. Any image size divisible by 4 (28, 32, 64).
"""

from torch import Tensor, nn

from ganlab.plugin import dcgan_init, register


@register
class LabGenerator(nn.Module):
    """z (B, latent_dim) → image (B, channels, S, S) in [−1, 1]."""

    def __init__(self, latent_dim: int = 100, channels: int = 1, image_size: int = 28, ngf: int = 64) -> None:
        super().__init__()
        self.latent_dim = latent_dim  # DCGAN draws z of this size
        self.net = nn.Sequential(  # (B, z, 1, 1) → (B, 2ngf, S/4, S/4) → (B, ngf, S/2, S/2) → (B, C, S, S)
            nn.ConvTranspose2d(latent_dim, 2 * ngf, kernel_size=image_size // 4, bias=False),
            nn.BatchNorm2d(2 * ngf), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * ngf, ngf, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(ngf), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(ngf, channels, kernel_size=4, stride=2, padding=1), nn.Tanh(),
        )  # fmt: skip
        dcgan_init(self)  # N(0, 0.02) weights, §4

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(z[:, :, None, None])


@register
class LabDiscriminator(nn.Module):
    """image (B, channels, S, S) → logits (B,)."""

    def __init__(self, channels: int = 1, image_size: int = 28, ndf: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(  # (B, C, S, S) → (B, ndf, S/2, S/2) → (B, 2ndf, S/4, S/4) → (B, 1, 1, 1)
            nn.Conv2d(channels, ndf, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, 2 * ndf, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * ndf), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * ndf, 1, kernel_size=image_size // 4),
        )  # fmt: skip
        dcgan_init(self)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(x).flatten()
