"""GAN objectives as pure functions of discriminator logits.

Every function takes raw logits (no sigmoid) and returns a scalar. ``real_label`` is the target for
real samples: 1.0, or 1 − ε with one-sided label smoothing (Salimans et al. 2016, §3.4).
Choose a pair by name with ``LOSSES[name]``; the names are the config values of ``model.loss``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.errors import ConfigError
from ganlab.registry import lookup, names, register


def d_minimax(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    # −E[log D(x)] − E[log(1 − D(G(z)))], D = σ(logits); the discriminator side of the minimax game
    real_target = real.new_full(real.shape, real_label)
    return F.binary_cross_entropy_with_logits(real, real_target) + F.softplus(fake).mean()


def g_minimax(fake: Tensor) -> Tensor:
    # E[log(1 − D(G(z)))] = −E[softplus(D_logit)]: saturates (flat gradient) when D rejects fakes
    return -F.softplus(fake).mean()


def g_non_saturating(fake: Tensor) -> Tensor:
    # −E[log D(G(z))] = E[softplus(−D_logit)]: strong gradient early on (Goodfellow et al. 2014, §3)
    return F.softplus(-fake).mean()


def d_least_squares(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    # ½E[(D(x) − 1)²] + ½E[D(G(z))²]  (Mao et al. 2017, LSGAN with a=0, b=c=1)
    return 0.5 * ((real - real_label) ** 2).mean() + 0.5 * (fake**2).mean()


def g_least_squares(fake: Tensor) -> Tensor:
    # E[(D(G(z)) − 1)²]; no ½, as the official CycleGAN code (it sets the weight against λ_cyc)
    return ((fake - 1.0) ** 2).mean()


def d_hinge(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    # E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))]  (Lim & Ye 2017; Miyato et al. 2018)
    return F.relu(real_label - real).mean() + F.relu(1.0 + fake).mean()


def g_hinge(fake: Tensor) -> Tensor:
    # −E[D(G(z))]
    return -fake.mean()


def d_wasserstein(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    # E[D(G(z))] − E[D(x)]: the critic's estimate of −W(p_data, p_G) (Arjovsky et al. 2017); pair it
    # with a gradient penalty (model.gp_weight) for the Lipschitz constraint
    return fake.mean() - real.mean()


def g_wasserstein(fake: Tensor) -> Tensor:
    # −E[D(G(z))]
    return -fake.mean()


def r1_penalty(real_scores: Tensor, real: Tensor) -> Tensor:
    # E[‖∇ₓD(x)‖²] on real data (Mescheder et al. 2018); the caller weights it by γ/2.
    # ``real`` must require grad and ``real_scores`` = D(real).
    (grad,) = torch.autograd.grad(real_scores.sum(), real, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, eps: Tensor) -> Tensor:
    # E[(‖∇D(x̂)‖₂ − 1)²], x̂ = ε·x + (1 − ε)·G(z), ε ~ U[0, 1] per sample (Gulrajani et al. 2017)
    mixed = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).square().mean()


def cycle_l1(reconstructed: Tensor, real: Tensor) -> Tensor:
    # E[‖F(G(x)) − x‖₁]  (Zhu et al. 2017, eq. 2), per pixel
    return (reconstructed - real).abs().mean()


def identity_l1(mapped: Tensor, real: Tensor) -> Tensor:
    # E[‖G(y) − y‖₁]  (Zhu et al. 2017, §5.2; Taigman et al. 2017): keeps colours when unneeded
    return (mapped - real).abs().mean()


class DiscriminatorLoss(Protocol):
    def __call__(self, real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor: ...


class GeneratorLoss(Protocol):
    def __call__(self, fake: Tensor) -> Tensor: ...


class GanLoss(NamedTuple):
    """The two players' losses of one objective."""

    d: DiscriminatorLoss
    g: GeneratorLoss


# the objectives ganlab ships; plugins add theirs with ``register.loss(name, GanLoss(d=..., g=...))``
LOSSES: dict[str, GanLoss] = {
    "minimax": GanLoss(d=d_minimax, g=g_minimax),
    "non_saturating": GanLoss(d=d_minimax, g=g_non_saturating),
    "least_squares": GanLoss(d=d_least_squares, g=g_least_squares),
    "hinge": GanLoss(d=d_hinge, g=g_hinge),
    "wasserstein": GanLoss(d=d_wasserstein, g=g_wasserstein),
}
for _name, _pair in LOSSES.items():
    register.loss(_name, _pair)


def get_loss(name: str) -> GanLoss:
    """The loss pair registered as ``name`` (ganlab's or a plugin's); one line listing the choices."""
    pair = lookup("loss", name)
    if pair is None:
        raise ConfigError(
            f"model.loss={name} is not a registered GAN loss; choose one of {', '.join(names('loss'))} "
            "(a plugin adds its own with register.loss)"
        )
    return pair
