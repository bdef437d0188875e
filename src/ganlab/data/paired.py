"""Paired A|B images (pix2pix) as a LightningDataModule (its code: ``ganlab.data.sets.paired``)."""

from __future__ import annotations

import lightning as L

from ganlab.data.sets.paired import PairedData
from ganlab.registry import register


@register
class PairedDataModule(PairedData, L.LightningDataModule):
    __doc__ = PairedData.__doc__
