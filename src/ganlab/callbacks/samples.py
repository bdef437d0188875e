"""Preview images (DCGAN sample grids, CycleGAN translation panels): PNG and W&B / TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

from ganlab.callbacks.checkpoint import due
from ganlab.files import replacing


class SampleGrid(L.Callback):
    """Every ``every_n_iters`` iterations, once early at ``first_at``, and at the end, the module's
    ``preview()`` as grids.

    ``preview()`` returns ``{name: (images in [−1, 1], images per row)}``; each becomes
    ``<dirpath>/<name>_<iteration>.png`` and the image ``samples/<name>`` in W&B or TensorBoard.
    """

    def __init__(self, dirpath: str, every_n_iters: int = 500, first_at: int | None = 50) -> None:
        self.dirpath, self.every_n_iters, self.first_at = Path(dirpath), every_n_iters, first_at

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        if due(module.iteration, self.every_n_iters, self.first_at):
            self.write(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not due(module.iteration, self.every_n_iters, self.first_at):
            self.write(trainer, module)

    def write(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # every rank runs the networks (eval mode: no collectives), rank 0 writes
        for name, (images, nrow) in module.preview().items():
            grid = make_grid(images.float().add(1.0).div(2.0).clamp(0.0, 1.0).cpu(), nrow=nrow, padding=2)
            self._publish(trainer, name, module.iteration, grid)

    @rank_zero_only
    def _publish(self, trainer: L.Trainer, name: str, iteration: int, grid: torch.Tensor) -> None:
        with replacing(self.dirpath / f"{name}_{iteration:07d}.png") as tmp:
            save_image(grid, tmp, format="png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(f"samples/{name}", images=[grid], step=iteration)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"samples/{name}", grid, global_step=iteration)
