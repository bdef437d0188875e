"""Checkpointing counted in iterations (batches), not Lightning's doubled ``global_step``."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, Checkpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info

from ganlab.files import replacing
from ganlab.redact import redact


def _iteration(module: L.LightningModule) -> int:
    return int(getattr(module, "iteration", module.global_step))


def due(iteration: int, every_n_iters: int, first_at: int | None) -> bool:
    """Every ``every_n_iters`` iterations, and once early at ``first_at`` (a short try shows something)."""
    return iteration % every_n_iters == 0 or (first_at is not None and iteration == first_at)


class LastCheckpoint(Checkpoint):
    """``<dirpath>/last.ckpt`` every ``every_n_iters`` iterations (and once at ``first_at``), at epoch
    ends and at a stop.

    A stop includes SIGTERM (``kill``, a scheduler's pre-emption): Lightning lets the current
    iteration finish, this saves it, and a resumed run continues from exactly that iteration.

    The file is replaced atomically, and only after the module confirms its losses are finite, so
    a crash or a NaN never destroys the last good checkpoint. Being a ``Checkpoint``, it runs
    after the other callbacks (an ``IterationBudget`` stop is seen in the same batch).
    """

    def __init__(self, dirpath: str, every_n_iters: int = 500, first_at: int | None = 50) -> None:
        self.dirpath, self.every_n_iters, self.first_at = Path(dirpath), every_n_iters, first_at
        self.saved_iteration: int | None = None  # what this process last wrote to last.ckpt
        self._at_epoch_end = False  # a save due at an epoch's last batch, made at the epoch's end

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        stopping = trainer.should_stop or trainer.received_sigterm
        if due(_iteration(module), self.every_n_iters, self.first_at) or stopping:
            if trainer.world_size > 1 and trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
                # DDP: saved at the epoch's end instead. Lightning (2.6) resumes a file written at
                # the last batch's end one epoch too far on (its restart counts the epoch twice),
                # which moves the shard's shuffle (ShardedSampler, by epoch). One process keeps the
                # batch-end file: its sampler's order does not depend on the epoch number, and its
                # epoch-end state does not resume exactly (torchdata's RandomSampler).
                self._at_epoch_end = True
                return
            self.save(trainer, module)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # a mid-epoch stop was saved at its batch; keep that state
        if not trainer.should_stop or self._at_epoch_end:
            self.save(trainer, module)
        self._at_epoch_end = False

    def save(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        check = getattr(module, "check_finite", None)
        if check is not None:
            check()
        save_whole(trainer, self.last_path)
        self.saved_iteration = _iteration(module)
        announce_saved(trainer, self)

    def artifact(self) -> tuple[str, Path, dict[str, Any]]:
        """(alias, file, metadata) of what was saved, for W&B's ``log_model``."""
        return "last", self.last_path, {"iteration": self.saved_iteration}


def save_whole(trainer: L.Trainer, path: Path) -> None:
    """The full training state (optimizers, loops) written beside ``path`` and renamed over it only
    when complete: a full disk or a kill mid-write leaves the previous file as it was."""
    with replacing(path, publish=trainer.is_global_zero) as tmp:
        trainer.save_checkpoint(tmp, weights_only=False)
    trainer.strategy.barrier(f"save {path.name}")


def announce_saved(trainer: L.Trainer, saver: Callback) -> None:
    """The loggers hear of a saved checkpoint (W&B uploads it as a model artifact with log_model)."""
    for logger in trainer.loggers:
        logger.after_save_checkpoint(saver)


class StopSignal(Callback):
    """SIGTERM or SIGINT (Ctrl-C) during training: finish the iteration, save it, end the fit.

    Lightning's own SIGTERM check sits after the batch-end hooks, so a signal landing between
    ``LastCheckpoint`` and that check stopped the run unsaved; and its Ctrl-C path exits without
    saving at all. Here a signal only sets ``received``; the next batch end sets
    ``trainer.should_stop`` (rank 0's decision reaches every DDP rank), ``LastCheckpoint`` saves
    that iteration and ``SampleGrid`` writes a final grid as at any end of training. A second
    Ctrl-C stops at once (``KeyboardInterrupt``); the checkpoint on disk is the last one saved.

    SIGUSR2 is SLURM's warning before a time limit or pre-emption (submitit's ``--signal``), and
    submitit's handler for it requeues the job and exits at once, mid-iteration. When such a
    handler is installed it is taken over the same way: the iteration finishes and is saved, then
    ``hand_over`` gives the signal to submitit, which requeues; the requeued job resumes from that
    ``last.ckpt`` (``auto_resume``).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self.requeue: Any = None  # the scheduler's own SIGUSR2 handler, once that signal came

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        batches, every = trainer.num_training_batches, trainer.log_every_n_steps
        if trainer.loggers and isinstance(batches, int) and batches < every:
            rank_zero_info(
                f"metrics are logged every {every} iterations, more than an epoch's {batches} batches: the "
                "curves get a point every few epochs (trainer.log_every_n_steps=<n> for more)"
            )
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        if callable(signal.getsignal(signal.SIGUSR2)):  # submitit's requeue handler (a SLURM job)
            self._previous[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
        if signum == signal.SIGUSR2:
            self.requeue = self._previous.get(signal.SIGUSR2)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        stop = self.received is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            trainer.should_stop = True
            # Lightning runs a validation pass when a run asks to stop early (its early-stopping
            # path): not for a signal — save, grid, one line, exit. No epoch number is a multiple of this.
            trainer.check_val_every_n_epoch = sys.maxsize

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.restore()

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self.restore()

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


class IterationBudget(Callback):
    """Stop after ``max_iters`` iterations (batches) in total, counted across resumes."""

    def __init__(self, max_iters: int) -> None:
        self.max_iters = max_iters

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        if _iteration(module) >= self.max_iters:
            trainer.should_stop = True


class RunConfig(Callback):
    """Stores the run's resolved config (plain containers), the plugins its parts come from (a
    record for the user: the tools say which to pass, and never load one because a file names it)
    and the W&B run id in every checkpoint."""

    def __init__(self, config: dict[str, Any], plugins: list[str] | None = None) -> None:
        self.config, self.plugins = redact(config), list(plugins or [])  # credentials masked

    def on_save_checkpoint(
        self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["ganlab_config"] = self.config
        for key in ("hyper_parameters", "datamodule_hyper_parameters"):  # Lightning's own copies
            if isinstance(checkpoint.get(key), dict):
                checkpoint[key] = redact(checkpoint[key])
        checkpoint["ganlab_plugins"] = self.plugins
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                checkpoint["wandb_run_id"] = logger.version
