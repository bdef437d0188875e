"""A loss of your own: LSGAN with the −1/1/0 coding (Mao et al. 2017, eq. 9: a = −1, b = 1, c = 0).

``model.loss=least_squares_symmetric`` then trains any ganlab GAN with it.
"""

from torch import Tensor

from ganlab.plugin import GanLoss, register


def d_least_squares_symmetric(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    # ½E[(D(x) − b)²] + ½E[(D(G(z)) − a)²], b = 1 (or 1 − ε, label smoothing), a = −1
    return 0.5 * ((real - real_label) ** 2).mean() + 0.5 * ((fake + 1.0) ** 2).mean()


def g_least_squares_symmetric(fake: Tensor) -> Tensor:
    # ½E[(D(G(z)) − c)²], c = 0: G makes D undecided rather than "sure it is real"
    return 0.5 * (fake**2).mean()


register.loss("least_squares_symmetric", GanLoss(d=d_least_squares_symmetric, g=g_least_squares_symmetric))
