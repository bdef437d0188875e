"""Checkpointing counted in iterations (batches), not Lightning's doubled ``global_step``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, Checkpoint


def _iteration(module: L.LightningModule) -> int:
    return int(getattr(module, "iteration", module.global_step))


class LastCheckpoint(Checkpoint):
    """``<dirpath>/last.ckpt`` every ``every_n_iters`` iterations, at epoch ends and at a stop.

    A stop includes SIGTERM (``kill``, a scheduler's pre-emption): Lightning lets the current
    iteration finish, this saves it, and a resumed run continues from exactly that iteration.

    The file is replaced atomically, and only after the module confirms its losses are finite, so
    a crash or a NaN never destroys the last good checkpoint. Being a ``Checkpoint``, it runs
    after the other callbacks (an ``IterationBudget`` stop is seen in the same batch).
    """

    def __init__(self, dirpath: str, every_n_iters: int = 500) -> None:
        self.dirpath, self.every_n_iters = Path(dirpath), every_n_iters

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        stopping = trainer.should_stop or trainer.received_sigterm
        if _iteration(module) % self.every_n_iters == 0 or stopping:
            self.save(trainer, module)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.should_stop:  # a mid-epoch stop was saved at its batch; keep that state
            self.save(trainer, module)

    def save(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        check = getattr(module, "check_finite", None)
        if check is not None:
            check()
        tmp = self.dirpath / ".last.ckpt.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)  # full state: optimizers, loops
        if trainer.is_global_zero:
            os.replace(tmp, self.last_path)
        trainer.strategy.barrier("LastCheckpoint.save")


class IterationBudget(Callback):
    """Stop after ``max_iters`` iterations (batches) in total, counted across resumes."""

    def __init__(self, max_iters: int) -> None:
        self.max_iters = max_iters

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        if _iteration(module) >= self.max_iters:
            trainer.should_stop = True


class RunConfig(Callback):
    """Stores the run's resolved config (plain containers) and W&B run id in every checkpoint."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["ganlab_config"] = self.config
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                checkpoint["wandb_run_id"] = logger.version
