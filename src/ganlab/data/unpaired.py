"""Unpaired trainA/trainB folders (CycleGAN) as a LightningDataModule (its code:
``ganlab.data.sets.unpaired``)."""

from __future__ import annotations

import lightning as L

from ganlab.data.sets.unpaired import UnpairedData
from ganlab.registry import register


@register
class UnpairedDataModule(UnpairedData, L.LightningDataModule):
    __doc__ = UnpairedData.__doc__
