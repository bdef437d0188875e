"""Fixed-noise sample grids: PNG under the run directory and an image in W&B / TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image


class SampleGrid(L.Callback):
    """Every ``every_n_iters`` iterations and at the end: G(fixed_z) as a grid."""

    def __init__(self, dirpath: str, every_n_iters: int = 500, nrow: int = 8) -> None:
        self.dirpath, self.every_n_iters, self.nrow = Path(dirpath), every_n_iters, nrow

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        if module.iteration % self.every_n_iters == 0:
            self.write(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if module.iteration % self.every_n_iters != 0:
            self.write(trainer, module)

    def write(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # every rank runs G (eval mode: no BatchNorm collectives), rank 0 writes
        images = module.sample().float().add(1.0).div(2.0).clamp(0.0, 1.0)  # [−1, 1] → [0, 1]
        self._publish(trainer, module.iteration, images)

    @rank_zero_only
    def _publish(self, trainer: L.Trainer, iteration: int, images: torch.Tensor) -> None:
        grid = make_grid(images.cpu(), nrow=self.nrow, padding=2)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        save_image(grid, self.dirpath / f"iter_{iteration:07d}.png")
        for logger in trainer.loggers:
            kind = type(logger).__name__
            if kind == "WandbLogger":
                logger.log_image("samples/fixed_noise", images=[grid], step=iteration)
            elif kind == "TensorBoardLogger":
                logger.experiment.add_image("samples/fixed_noise", grid, global_step=iteration)
