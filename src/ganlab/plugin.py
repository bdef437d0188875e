"""Everything a plugin author uses, from one place: ``from ganlab.plugin import register, DCGAN, ...``.

A plugin is a module of yours that registers parts: networks, GAN modules, data modules,
optimizers (classes, with ``@register``), losses (``register.loss(name, GanLoss(d=..., g=...))``)
and DiffAugment policies (``@register.augment(name)``). ganlab imports it when an installed package
names it in the ``ganlab.plugins`` entry-point group, or when you pass ``plugins=[your.module]`` to
train or a tool. Checkpoints then name your classes, and every tool rebuilds them from the registry
(never by importing what a file says). The contract for a new GAN algorithm is ``GanModule``'s
docstring; README "Your own GAN" walks through ``examples/``.
"""

from ganlab.data.base import InMemoryImageDataModule
from ganlab.errors import ConfigError
from ganlab.losses import (
    GanLoss,
    d_hinge,
    d_least_squares,
    d_minimax,
    g_hinge,
    g_least_squares,
    g_minimax,
    g_non_saturating,
)
from ganlab.modules.base import GanModule
from ganlab.modules.cyclegan import CycleGAN
from ganlab.modules.dcgan import DCGAN
from ganlab.modules.pix2pix import Pix2Pix
from ganlab.nets.dcgan import Discriminator, Generator
from ganlab.nets.init import dcgan_init
from ganlab.registry import RegistryError, lookup, names, register

__all__ = [
    "DCGAN",
    "ConfigError",
    "CycleGAN",
    "Discriminator",
    "GanLoss",
    "GanModule",
    "Generator",
    "InMemoryImageDataModule",
    "Pix2Pix",
    "RegistryError",
    "d_hinge",
    "d_least_squares",
    "d_minimax",
    "dcgan_init",
    "g_hinge",
    "g_least_squares",
    "g_minimax",
    "g_non_saturating",
    "lookup",
    "names",
    "register",
]
