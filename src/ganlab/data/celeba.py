"""CelebA as a LightningDataModule (its code: ``ganlab.data.sets.celeba``)."""

from __future__ import annotations

from ganlab.data.folder import ImageFolderDataModule
from ganlab.data.sets.celeba import CelebAData
from ganlab.registry import register


@register
class CelebADataModule(CelebAData, ImageFolderDataModule):
    __doc__ = CelebAData.__doc__
