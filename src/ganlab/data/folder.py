"""A folder of images as a LightningDataModule (its code: ``ganlab.data.sets.folder``)."""

from __future__ import annotations

import lightning as L

from ganlab.data.sets.folder import ImageFolderData
from ganlab.registry import register


@register
class ImageFolderDataModule(ImageFolderData, L.LightningDataModule):
    __doc__ = ImageFolderData.__doc__
