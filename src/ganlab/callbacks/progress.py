"""The console's progress bar: iterations/s, the losses at the logging cadence, the last FID."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    """Lightning's Rich bar without ``v_num`` (the logger's version: noise in the console); the
    modules put ``loss_d``/``loss_g`` (CycleGAN: ``loss_g``, ``loss_d_a``, ``loss_d_b``) and the FID
    callback the last ``fid`` in it."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items
