"""CycleGAN: two generators and two discriminators trained by manual optimization."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from ganlab.errors import ConfigError
from ganlab.losses import cycle_l1, get_loss, identity_l1
from ganlab.modules.augment import diff_augment, parse_policy
from ganlab.modules.base import GanModule
from ganlab.modules.ema import check_decay, ema_copy, ramped_decay, update_ema
from ganlab.modules.pool import ImagePool
from ganlab.modules.scoring import no_classes
from ganlab.modules.shapes import check_translation
from ganlab.pixels import to_model_range
from ganlab.registry import register


def linear_decay(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """LR factor: 1 for ``n_epochs`` epochs, then linearly towards 0 over ``n_epochs_decay``."""
    # the official lambda_rule with epoch_count=1: 1 − max(0, e + 1 − n) / (n_decay + 1)
    return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)


@register
class CycleGAN(GanModule):
    """Unpaired image-to-image translation (Zhu, Park, Isola & Efros 2017).

    Code names follow the official code; the paper's symbols:
    ``g_a`` = G: A→B (X→Y), ``g_b`` = F: B→A, ``d_a`` = D_Y (judges domain B: b vs G(a)),
    ``d_b`` = D_X (judges domain A: a vs F(b)). With λ_A, λ_B = ``lambda_a``, ``lambda_b``:

        L = L_GAN(G, D_Y) + L_GAN(F, D_X)
            + λ_A ‖F(G(a)) − a‖₁ + λ_B ‖G(F(b)) − b‖₁                 (cycle, eq. 2)
            + λ_idt (λ_B ‖G(b) − b‖₁ + λ_A ‖F(a) − a‖₁)               (identity, §5.2)

    L_GAN is least squares by default (``model.loss``). One iteration: translate both ways, a step
    of the generators (one optimizer over G and F), then a step of the discriminators (one
    optimizer over D_X and D_Y) on fakes drawn from an image pool of 50 per discriminator.
    """

    batch_kind = "unpaired"
    progress_keys = ("loss_g", "loss_d_a", "loss_d_b")

    def __init__(
        self,
        generator: Callable[[], nn.Module],
        discriminator: Callable[[], nn.Module],
        optimizer: partial[torch.optim.Optimizer],
        lr: float = 2e-4,
        loss: str = "least_squares",
        lambda_a: float = 10.0,
        lambda_b: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        seed: int = 0,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str | None = None,
        ema: dict[str, float] | None = None,
        augment: str | list[str] | None = None,
    ) -> None:
        super().__init__(channels_last, compile, compile_mode)
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer"], logger=False)
        if pool_size < 0 or lambda_identity < 0:
            raise ConfigError("model.pool_size and model.lambda_identity must be ≥ 0 (0 disables)")
        self.g_a, self.g_b = generator(), generator()
        self.d_a, self.d_b = discriminator(), discriminator()
        self.optimizer = optimizer
        self.loss = get_loss(loss)
        self.pool_a = ImagePool(pool_size, seed=seed * 2 + 1)  # fake B images, for d_a
        self.pool_b = ImagePool(pool_size, seed=seed * 2 + 2)  # fake A images, for d_b
        self.augment = parse_policy(augment)
        self.ema_decay = check_decay((ema or {}).get("decay", 0.0))
        self.use_ema = self.ema_decay > 0  # tools may turn it off to translate with the raw weights
        if self.ema_decay > 0:  # EMA copies of G and F: panels, FID and `translate` use them
            self.g_a_ema, self.g_b_ema = ema_copy(self.g_a), ema_copy(self.g_b)

    @property
    def default_max_epochs(self) -> int:
        return self.hparams.n_epochs + self.hparams.n_epochs_decay

    def networks(self) -> list[nn.Module]:
        return [self.g_a, self.g_b, self.d_a, self.d_b]

    def forward(self, a: Tensor) -> Tensor:
        return self.g_a(a)

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[LambdaLR]]:
        gens = [*self.g_a.parameters(), *self.g_b.parameters()]
        discs = [*self.d_a.parameters(), *self.d_b.parameters()]
        opt_g = self.optimizer(gens, lr=self.hparams.lr)
        opt_d = self.optimizer(discs, lr=self.hparams.lr)
        rule = partial(
            linear_decay, n_epochs=self.hparams.n_epochs, n_epochs_decay=self.hparams.n_epochs_decay
        )
        return [opt_g, opt_d], [LambdaLR(opt_g, rule), LambdaLR(opt_d, rule)]

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        hp = self.hparams
        real_a, real_b = self.image_format(batch["A"]), self.image_format(batch["B"])
        fake_b = self.g_a(real_a)  # G(a)
        rec_a = self.g_b(fake_b)  # F(G(a))
        fake_a = self.g_b(real_b)  # F(b)
        rec_b = self.g_a(fake_a)  # G(F(b))

        with self.toggled_optimizer(opt_g):  # D_X, D_Y frozen
            losses = {
                "loss_g_a": self.loss.g(self.d_a(self.d_view(fake_b))),
                "loss_g_b": self.loss.g(self.d_b(self.d_view(fake_a))),
                "loss_cycle_a": hp.lambda_a * cycle_l1(rec_a, real_a),
                "loss_cycle_b": hp.lambda_b * cycle_l1(rec_b, real_b),
            }
            if hp.lambda_identity > 0:
                losses["loss_idt_a"] = (
                    hp.lambda_b * hp.lambda_identity * identity_l1(self.g_a(real_b), real_b)
                )
                losses["loss_idt_b"] = (
                    hp.lambda_a * hp.lambda_identity * identity_l1(self.g_b(real_a), real_a)
                )
            loss_g = sum(losses.values())
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(loss_g)
            opt_g.step()
        if self.ema_decay > 0:
            decay = ramped_decay(self.ema_decay, self.iteration)
            update_ema(self.g_a_ema, self.g_a, decay)
            update_ema(self.g_b_ema, self.g_b, decay)

        with self.toggled_optimizer(opt_d):
            fake_b_seen, fake_a_seen = self.pool_a.query(fake_b), self.pool_b.query(fake_a)
            losses["loss_d_a"] = self.loss.d(
                self.d_a(self.d_view(real_b)), self.d_a(self.d_view(fake_b_seen))
            )
            losses["loss_d_b"] = self.loss.d(
                self.d_b(self.d_view(real_a)), self.d_b(self.d_view(fake_a_seen))
            )
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(losses["loss_d_a"] + losses["loss_d_b"])
            opt_d.step()

        self.track_finite(loss_g, losses["loss_d_a"], losses["loss_d_b"])
        self.iteration += 1
        metrics = {f"train/{k}": v.detach() for k, v in losses.items()}
        metrics["train/loss_g"] = loss_g.detach()
        metrics["train/lr"] = opt_g.param_groups[0]["lr"]
        self.log_step(metrics, batch_size=real_a.shape[0])

    def check_sizes(self, size: int, settings: dict[str, dict]) -> None:
        """G returns a ``size`` crop at its size and D takes it (``modules.shapes``), before training."""
        check_translation(self.g_a, self.d_a, size, lambda a, b: b, "CycleGAN", settings)

    def d_view(self, x: Tensor) -> Tensor:
        """What a discriminator sees: DiffAugment when ``model.augment`` is set (off by default)."""
        return diff_augment(x, self.augment, self.rng) if self.augment else x

    def on_train_epoch_end(self) -> None:
        for scheduler in self.lr_schedulers():
            scheduler.step()  # manual optimization: Lightning never steps schedulers for us

    def samplers(self) -> tuple[nn.Module, nn.Module]:
        """(G, F) that translate for panels and FID: the EMA copies when there are some."""
        if self.ema_decay > 0 and self.use_ema:
            return self.g_a_ema, self.g_b_ema
        return self.g_a, self.g_b

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "AtoB") -> tuple[Tensor, Tensor]:
        """(translated, reconstructed) for images in [−1, 1]."""
        g, f = self.samplers()
        there, back = (g, f) if direction == "AtoB" else (f, g)
        translated = there(images.to(self.device))
        return translated, back(translated)

    def on_fit_start(self) -> None:
        self.pool_a.to(self.device)
        self.pool_b.to(self.device)
        panels = getattr(self.trainer.datamodule, "panel_images", None)
        if panels is not None:  # fixed images for the preview panels, as model-range floats
            for domain, images in panels().items():
                self.register_buffer(f"panel_{domain.lower()}", to_model_range(images), persistent=False)

    def fid_sources(self, datamodule: Any, num_fake: int, per_class: bool = False) -> dict[str, Tensor]:
        """Every test image of each source domain (``num_fake`` does not apply)."""
        no_classes(per_class, "CycleGAN")
        return datamodule.fid_sources()

    def fid_generate(self, key: str, images: Tensor) -> Tensor:
        g, f = self.samplers()
        return (g if key == "a2b" else f)(to_model_range(images))

    def preview(self) -> dict[str, tuple[Tensor, int]]:
        """Per direction, rows of real | translated | reconstructed on fixed test images."""
        out = {}
        for name, source, direction in (("a2b", "panel_a", "AtoB"), ("b2a", "panel_b", "BtoA")):
            real = getattr(self, source, None)
            if real is None:
                continue
            was_training = self.training
            self.eval()
            translated, reconstructed = self.translate(real, direction)
            self.train(was_training)
            rows = torch.stack([real, translated, reconstructed], dim=1)  # (N, 3, C, H, W)
            out[name] = (rows.flatten(0, 1), 3)
        return out

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["image_pools"] = {"a": self.pool_a.state_dict(), "b": self.pool_b.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        pools = checkpoint.get("image_pools")
        if pools is not None:
            self.pool_a.load_state_dict(pools["a"])
            self.pool_b.load_state_dict(pools["b"])
