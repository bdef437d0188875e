"""MNIST as a LightningDataModule (its code: ``ganlab.data.sets.mnist``)."""

from __future__ import annotations

from ganlab.data.base import InMemoryImageDataModule
from ganlab.data.sets.mnist import MNISTData
from ganlab.registry import register


@register
class MNISTDataModule(MNISTData, InMemoryImageDataModule):
    __doc__ = MNISTData.__doc__
