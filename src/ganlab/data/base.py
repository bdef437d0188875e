"""The data modules' Lightning base: ``InMemoryImageDataModule`` for data sets held in memory.

Every data module of ganlab is its plain data set (``ganlab.data.sets``) with Lightning's base
added after it: the code lives there, and ``evaluate`` uses it without Lightning.
"""

from __future__ import annotations

import lightning as L

from ganlab.data.sets.base import InMemoryImageData
from ganlab.registry import declare_kind

declare_kind("data", L.LightningDataModule)  # the base of the data modules the registry holds


class InMemoryImageDataModule(InMemoryImageData, L.LightningDataModule):
    __doc__ = InMemoryImageData.__doc__
