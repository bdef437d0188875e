"""CIFAR-10 as a LightningDataModule (its code: ``ganlab.data.sets.cifar10``)."""

from __future__ import annotations

from ganlab.data.base import InMemoryImageDataModule
from ganlab.data.sets.cifar10 import CIFAR10Data
from ganlab.registry import register


@register
class CIFAR10DataModule(CIFAR10Data, InMemoryImageDataModule):
    __doc__ = CIFAR10Data.__doc__
