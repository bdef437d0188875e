"""What every ganlab GAN module shares: the iteration counter and the NaN guard."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from ganlab.errors import CheckpointError, NonFiniteLossError
from ganlab.registry import declare_kind


class GanModule(L.LightningModule):
    """Manual optimization, an iteration counter (batches, not ``global_step``), a NaN guard.

    Losses are AND-ed into a device flag every step (no host sync) and the flag is read at the
    logging cadence and before every checkpoint, so a NaN stops the run without ever being saved.

    The contract for a new GAN algorithm (README "Your own GAN"). The short way, for images from z:
    subclass ``DCGAN`` and override only the players' losses,
    ``d_loss(real, fake, y) -> (loss, {"train/...": value})`` and ``g_loss(real, fake, y) -> loss``;
    EMA, DiffAugment (``self.d_view``), the NaN guard, resume, grids, FID and every tool then come
    with the parent (a translation algorithm subclasses ``CycleGAN``/``Pix2Pix`` and overrides their
    ``training_step``). From ``GanModule`` itself, provide:

    - ``__init__(generator, discriminator, optimizer, ..., seed)``: networks and a partial optimizer
      arrive built from the config; call ``save_hyperparameters(ignore=[those three])`` (plain values
      only: checkpoints load with ``weights_only=True``);
    - ``networks()``: the ``nn.Module``s to compile or convert (speed switches);
    - ``configure_optimizers()``: one optimizer per player, in ``optimizer_names`` order;
    - ``training_step``: each player's step inside ``self.toggled_optimizer(opt)``; noise from
      ``self.rng`` (saved, so resume is exact); ``self.track_finite(loss)`` for each loss;
      ``self.iteration += 1``; ``self.log_step({"train/loss_d": ..., "train/loss_g": ...})``;
    - grids and FID: ``preview() -> {name: (images in [−1, 1], per row)}``, ``fid_sources(datamodule,
      n) -> {key: fixed inputs}`` and ``fid_generate(key, source) -> images`` as in ``DCGAN`` (the
      data module gives the real side, ``fid_references(split, limit)``);
    - the checkpoint: the weights, ``iteration`` and the RNG state are saved here; extend
      ``on_save_checkpoint``/``on_load_checkpoint`` (calling super) for state of your own (as
      CycleGAN's image pools), as plain tensors and containers.

    ``batch_kind`` ("images", "unpaired", "paired") says which data modules fit.
    """

    nan_advice = "lower model.lr"
    batch_kind = "images"  # what the data module must provide: "images", "unpaired" or "paired"

    def __init__(
        self, channels_last: bool = False, compile: bool = False, compile_mode: str | None = None
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.channels_last, self.compile_nets, self.compile_mode = channels_last, compile, compile_mode
        self.register_buffer("finite", torch.tensor(True), persistent=False)
        self.iteration = 0  # batches trained, the unit of every schedule
        self._last_finite_check = 0
        self._rng: torch.Generator | None = None
        self._rng_state: Tensor | None = None
        self._progress: dict[str, Tensor] = {}  # the last step's losses for the progress bar

    # --- randomness: a generator of our own, saved in checkpoints, so resume is exact ---
    @property
    def rng(self) -> torch.Generator:
        """The module's noise stream (latents, instance noise, augmentation), on its device."""
        if self._rng is None or self._rng.device != self.device:
            self._rng = torch.Generator(device=self.device)
            self._rng.manual_seed(self.hparams.seed * 1000 + self.global_rank + 1)
            if self._rng_state is not None:
                try:
                    self._rng.set_state(self._rng_state.cpu())
                except RuntimeError:  # saved on another device type: the stream cannot continue
                    rank_zero_warn("checkpoint RNG state is from another device; noise reseeded")
            self._rng_state = None
        return self._rng

    def networks(self) -> list[torch.nn.Module]:
        raise NotImplementedError

    def configure_model(self) -> None:
        """Speed switches: channels_last memory format; torch.compile of each network (not of this
        module: Lightning's logging and optimizer toggling inside a compiled module break)."""
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.compile_nets:
            for net in self.networks():
                net.compile(mode=self.compile_mode)  # in place: state_dict keys stay unprefixed

    def image_format(self, images: Tensor) -> Tensor:
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    progress_keys: tuple[str, ...] = ("loss_d", "loss_g")  # train/<key> shown in the progress bar

    def log_step(self, metrics: dict[str, Any], batch_size: int | None = None) -> None:
        """Log ``train/*`` every step (Lightning reads them back at its logging cadence) and keep the
        ``progress_keys`` for the progress bar, which ``on_train_batch_end`` fills at that cadence:
        no host read inside the training step."""
        self.log_dict(metrics, on_step=True, on_epoch=False, batch_size=batch_size)
        self._progress = {k: metrics[f"train/{k}"] for k in self.progress_keys if f"train/{k}" in metrics}

    def track_finite(self, *losses: Tensor) -> None:
        for loss in losses:
            self.finite &= torch.isfinite(loss)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.iteration % self.trainer.log_every_n_steps == 0:
            self.check_finite()
            shown = {
                k: float(v) for k, v in self._progress.items()
            }  # a few scalars, beside the loggers' read
            self.log_dict(shown, on_step=True, on_epoch=False, prog_bar=True, logger=False)

    def check_finite(self) -> None:
        """Raise if any loss since the last check was NaN/inf (one host sync)."""
        if not bool(self.finite):
            raise NonFiniteLossError(
                f"a loss became NaN or infinite between iterations {self._last_finite_check} and "
                f"{self.iteration}; training stopped. Try: {self.nan_advice}"
            )
        self._last_finite_check = self.iteration

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["iteration"] = self.iteration
        checkpoint["rng_state"] = self.rng.get_state()
        if self._trainer is not None and self.trainer.world_size > 1:  # every rank saves (a collective)
            # each rank draws its own noise: rank 0 alone in the file would give every rank its stream
            gathered = self.trainer.strategy.all_gather(checkpoint["rng_state"].to(self.device))
            checkpoint["rng_states"] = gathered.cpu()  # (world size, state bytes), row = global rank

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.iteration = checkpoint.get("iteration", 0)
        self._last_finite_check = self.iteration
        state = _generator_states(checkpoint, "rng_state", 1, "a generator state (uint8 tensor)")
        per_rank = _generator_states(checkpoint, "rng_states", 2, "one generator state per rank")
        rank = self.global_rank
        if per_rank is not None and rank < len(per_rank):
            state = per_rank[rank].clone()  # this rank's own stream, as it was (its own storage)
        elif rank > 0:
            state = None  # saved by fewer ranks (or before per-rank states): a fresh stream of its own
        self._rng, self._rng_state = None, state
        self._resumed = True

    optimizer_names: tuple[str, ...] = ("G", "D")  # configure_optimizers' order, for messages

    def on_train_start(self) -> None:
        if getattr(self, "_resumed", False):
            self.apply_configured_optimizers()

    def apply_configured_optimizers(self) -> None:
        """A resumed run trains with the optimizer settings it was started with now (``model.lr``,
        betas, …), not the ones its checkpoint saved: Lightning restores whole optimizer states,
        which would silently keep the old learning rate. Adam's moments and the schedule's position
        are kept; a changed base rate goes to the scheduler too, so a decay continues from it."""
        fresh, _ = _split(self.configure_optimizers())  # built from the config, not trained
        schedulers = {id(c.scheduler.optimizer): c.scheduler for c in self.trainer.lr_scheduler_configs}
        changes: list[str] = []
        for name, new, config in zip(self.optimizer_names, fresh, self.trainer.optimizers, strict=False):
            old = getattr(config, "optimizer", config)  # unwrapped from Lightning's strategy wrapper
            for new_group, group in zip(new.param_groups, old.param_groups, strict=True):
                changes += [
                    f"{name} {key} {before} → {after}" for key, before, after in _reset(group, new_group)
                ]
            if (sched := schedulers.get(id(old))) is not None and "initial_lr" in old.param_groups[0]:
                sched.base_lrs = [g["initial_lr"] for g in old.param_groups]
                sched._last_lr = [g["lr"] for g in old.param_groups]
        if changes:
            rank_zero_info(
                f"resumed with changed optimizer settings, applied: {', '.join(dict.fromkeys(changes))}"
            )


declare_kind("module", GanModule)


def _split(configured: Any) -> tuple[list[torch.optim.Optimizer], list[Any]]:
    """``configure_optimizers``' answer as (optimizers, schedulers); ganlab returns a list or a pair."""
    if isinstance(configured, tuple):
        return list(configured[0]), list(configured[1])
    return list(configured), []


def _reset(group: dict[str, Any], configured: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Set a restored param group's hyperparameters to the configured ones; (key, old, new) for each
    change. A scheduled lr is the schedule's factor times ``initial_lr``: the base changes, the
    factor stays."""
    changed = []
    for key, value in configured.items():
        if (
            key == "params"
            or (key == "lr" and "initial_lr" in group)
            or _plain(group.get(key)) == _plain(value)
        ):
            continue
        if key == "initial_lr":
            group["lr"] = group["lr"] * value / group[key] if group[key] else value
        changed.append(("lr" if key == "initial_lr" else key, group.get(key), value))
        group[key] = value
    return changed


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _generator_states(checkpoint: dict[str, Any], key: str, dim: int, what: str) -> Tensor | None:
    """``checkpoint[key]``: absent, or uint8 generator state(s) of ``dim`` dimensions; anything else
    is one line (a crafted or damaged file never reaches ``Generator.set_state``)."""
    value = checkpoint.get(key)
    if value is not None and not (
        isinstance(value, Tensor) and value.dtype == torch.uint8 and value.dim() == dim
    ):
        raise CheckpointError(
            f"the checkpoint's {key} is {type(value).__name__}, not {what}; the file is damaged or was "
            "edited (nothing was trained from it)"
        )
    return value
