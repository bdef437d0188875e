"""The synthetic data sets as LightningDataModules (their code: ``ganlab.data.sets.synthetic``)."""

from __future__ import annotations

from ganlab.data.base import InMemoryImageDataModule
from ganlab.data.sets.synthetic import SyntheticImagesData, SyntheticUnpairedData
from ganlab.registry import register


@register
class SyntheticImages(SyntheticImagesData, InMemoryImageDataModule):
    __doc__ = SyntheticImagesData.__doc__


@register
class SyntheticUnpaired(SyntheticUnpairedData, SyntheticImages):
    __doc__ = SyntheticUnpairedData.__doc__
