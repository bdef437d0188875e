"""FID/KID during training, ``best.ckpt`` by FID, protocol and best value in the logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities import rank_zero_info

from ganlab.callbacks.checkpoint import announce_saved, save_whole
from ganlab.metrics.evaluator import FIDEvaluator, generated_batches
from ganlab.metrics.lpips import Lpips
from ganlab.metrics.paired import paired_scores
from ganlab.metrics.weights import find_weights


class FIDCallback(Checkpoint):
    """Every ``every_n_epochs`` epochs (or ``every_n_iters`` iterations): FID and KID.

    DCGAN: ``num_fake`` images from fixed evaluation latents against the ``reference`` split
    (``val/fid``, ``val/kid``). CycleGAN: every test image of each source domain, translated,
    against the target domain's split (``val/fid_a2b``, ``val/fid_b2a``, ``val/kid_*``). The
    lower ``monitor`` value keeps ``<dirpath>/best.ckpt``; ``val/fid_best`` tracks it.

    Args:
        num_real: cap on reference images (the first N of the split); None uses all.
        fid: ``weights_path`` (None: torch hub cache, downloaded if absent), ``feature`` (2048) and
            ``allow_other_weights`` (accept a file whose sha256 is not torch-fidelity's).
        kid: ``subsets`` and ``subset_size`` (shrunk to the image counts when larger).
        monitor: the metric for best.ckpt; "auto" is val/fid (DCGAN) or val/fid_a2b (CycleGAN).
        per_class: conditional DCGAN: also FID per class (``val/fid_class_<k>``), num_fake // K
            generated images of each class against that class's real images.
    """

    def __init__(
        self,
        dirpath: str,
        cache_dir: str | None,
        every_n_epochs: int | None = 1,
        every_n_iters: int | None = None,
        num_fake: int = 10000,
        num_real: int | None = None,
        reference: str = "train",
        batch_size: int = 100,
        fid: dict[str, Any] | None = None,
        kid: dict[str, Any] | None = None,
        monitor: str = "auto",
        per_class: bool = False,
        lpips: dict[str, Any] | None = None,
        prc: bool = False,
        isc: bool = False,
        vgg: dict[str, Any] | None = None,
    ) -> None:
        self.prc, self.isc = prc, isc
        self.vgg = {"weights_path": None, **(vgg or {})}
        self.vgg_weights: Path | None = None
        self.dirpath, self.cache_dir = Path(dirpath), cache_dir
        self.every_n_epochs, self.every_n_iters = every_n_epochs, every_n_iters
        self.num_fake, self.num_real, self.reference = num_fake, num_real, reference
        self.batch_size, self.monitor, self.per_class = batch_size, monitor, per_class
        self.fid = {"weights_path": None, "feature": 2048, "allow_other_weights": False, **(fid or {})}
        self.kid = {"subsets": 100, "subset_size": 1000, **(kid or {})}
        self.lpips = {"enabled": True, "weights_path": None, **(lpips or {})}
        self.lpips_net: Lpips | None = None
        self.best: float | None = None
        self.last: float | None = None
        self.best_iteration: int | None = None
        self.evaluator: FIDEvaluator | None = None
        self.sources: dict[str, torch.Tensor] = {}
        self.pairs: tuple[torch.Tensor, torch.Tensor] | None = None  # paired data: (sources, targets)

    def preflight(self, paired: bool = False) -> tuple[Path, Path | None]:
        """Find (or fetch) every weights file now: one line naming all that are missing stops the run
        before training. (Inception weights, AlexNet weights for LPIPS on paired data or None; the
        VGG-16 weights of metrics.prc are kept in ``vgg_weights``.)"""
        weights, alexnet, self.vgg_weights = find_weights(self.fid, self.lpips, self.vgg, self.prc, paired)
        return weights, alexnet

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best.ckpt"

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        dm = trainer.datamodule
        paired = getattr(dm, "batch_kind", None) == "paired"
        weights, alexnet = self.preflight(paired)
        if alexnet is not None:
            self.lpips_net = Lpips(alexnet).to(module.device)
        self.evaluator = FIDEvaluator(
            weights, self.cache_dir, module.device, dim=int(self.fid["feature"]), batch_size=self.batch_size,
            kid_subsets=int(self.kid["subsets"]), kid_subset_size=int(self.kid["subset_size"]),
            vgg_weights=self.vgg_weights, isc=self.isc,
        )  # fmt: skip
        extra = {"per_class": True} if self.per_class else {}  # conditional DCGAN only
        self.sources = module.fid_sources(dm, self.num_fake, **extra)
        if paired:  # pix2pix: also L1 / PSNR / SSIM / LPIPS of each translation to its target
            self.pairs = dm.pairs()
        for key, ref in dm.fid_references(self.reference, self.num_real, **extra).items():
            self.evaluator.set_reference(key, ref)
        if self.monitor == "auto":
            self.monitor = "val/fid" if "" in self.sources else f"val/fid_{next(iter(self.sources))}"
        protocol = {
            **self.evaluator.protocol(), "reference": self.reference,
            "num_real": {k or "all": int(m.counts()[0]) for k, m in self.evaluator.metrics.items()},
            "num_fake": {k or "all": len(s) for k, s in self.sources.items()},
        }  # fmt: skip
        for logger in trainer.loggers:
            logger.log_hyperparams({"fid_protocol": protocol})
        rank_zero_info(f"FID protocol: {protocol}")

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        if self.every_n_iters and module.iteration % self.every_n_iters == 0:
            self.evaluate(trainer, module, on_step=True)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if (
            self.every_n_epochs
            and (trainer.current_epoch + 1) % self.every_n_epochs == 0
            and not trainer.should_stop
        ):
            self.evaluate(trainer, module, on_step=False)

    def evaluate(self, trainer: L.Trainer, module: L.LightningModule, on_step: bool) -> dict[str, float]:
        """Score every comparison on every rank, log, and keep best.ckpt."""
        assert self.evaluator is not None
        was_training = module.training
        module.eval()
        values: dict[str, float] = {}
        with torch.no_grad():
            for key, sources in self.sources.items():
                make = lambda batch, key=key: module.fid_generate(key, batch.to(module.device))  # noqa: E731
                result = self.evaluator.score(key, generated_batches(make, sources, self.batch_size))
                suffix = f"_{key}" if key else ""
                values[f"val/fid{suffix}"] = result["fid"]
                values[f"val/kid{suffix}"] = result["kid_mean"]
                for name in ("precision", "recall", "isc_mean"):  # with metrics.prc / metrics.isc
                    if name in result:
                        values[f"val/{name.removesuffix('_mean')}{suffix}"] = result[name]
            if self.pairs is not None:
                make = lambda batch: module.fid_generate("a2b", batch)  # noqa: E731
                scores = paired_scores(make, *self.pairs, self.batch_size, module.device, self.lpips_net)
                values |= {f"val/{name}": value for name, value in scores.items()}
        module.train(was_training)
        value = self.last = values[self.monitor]
        if self.best is None or value < self.best:
            self.best, self.best_iteration = value, module.iteration
            self._save_best(trainer)
        values["val/fid_best"] = self.best
        module.log_dict(values, on_step=on_step, on_epoch=not on_step)
        module.log(
            self.monitor.removeprefix("val/"), value, prog_bar=True, logger=False
        )  # the last FID in the bar
        rank_zero_info(
            f"iteration {module.iteration}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        )
        return values

    def _save_best(self, trainer: L.Trainer) -> None:
        save_whole(trainer, self.best_path)
        announce_saved(trainer, self)

    def artifact(self) -> tuple[str, Path, dict[str, Any]]:
        """(alias, file, metadata) of what was saved, for W&B's ``log_model``."""
        return "best", self.best_path, {"iteration": self.best_iteration, self.monitor: self.best}

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_iteration": self.best_iteration, "monitor": self.monitor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_iteration = state.get("best"), state.get("best_iteration")
