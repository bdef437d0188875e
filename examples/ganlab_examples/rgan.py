"""A GAN algorithm of your own: the relativistic average GAN (Jolicoeur-Martineau 2019, RaSGAN).

D estimates how much more realistic a real image is than the average fake, and G the reverse, so
G's loss also pulls on the reals' scores. With C the critic's logit:
    L_D = −E_x[log σ(C(x) − E_f C(f))] − E_f[log(1 − σ(C(f) − E_x C(x)))]
    L_G = −E_f[log σ(C(f) − E_x C(x))] − E_x[log(1 − σ(C(x) − E_f C(f)))]
Only the two players' losses are new: sampling, EMA, DiffAugment (``d_view``), the NaN guard,
resume, grids, FID and the tools are DCGAN's.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.plugin import DCGAN, register


def relativistic(a: Tensor, b: Tensor) -> Tensor:
    # −E[log σ(a − E b)] − E[log(1 − σ(b − E a))], with −log σ(t) = softplus(−t)
    return F.softplus(-(a - b.mean())).mean() + F.softplus(b - a.mean()).mean()


@register
class RelativisticGAN(DCGAN):
    """DCGAN's networks and schedule, trained with the relativistic average objective."""

    def d_loss(self, real: Tensor, fake: Tensor, y: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        sigma = self.noise_std()
        d_real = self.discriminator(self.d_view(real, sigma), y)
        d_fake = self.discriminator(self.d_view(fake, sigma), y)
        logged = {"train/d_real": d_real.detach().mean(), "train/d_fake": d_fake.detach().mean()}
        return relativistic(d_real, d_fake), logged

    def g_loss(self, real: Tensor, fake: Tensor, y: Tensor | None) -> Tensor:
        sigma = self.noise_std()
        with torch.no_grad():  # the reals' scores are a reference point for G, not a path to D
            d_real = self.discriminator(self.d_view(real, sigma), y)
        return relativistic(self.discriminator(self.d_view(fake, sigma), y), d_real)
