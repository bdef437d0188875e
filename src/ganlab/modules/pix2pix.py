"""pix2pix: a conditional GAN for paired image-to-image translation, by manual optimization."""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from ganlab.errors import ConfigError
from ganlab.losses import get_loss
from ganlab.modules.base import GanModule
from ganlab.modules.cyclegan import linear_decay
from ganlab.modules.scoring import no_classes, paper_test_time, seeded
from ganlab.modules.shapes import check_translation
from ganlab.pixels import to_model_range
from ganlab.registry import register


@register
class Pix2Pix(GanModule):
    """Image-to-image translation with a conditional GAN (Isola, Zhu, Zhou & Efros 2017).

    ``generator`` = G (U-Net-256 with skips, dropout 0.5), ``discriminator`` = D (70×70 PatchGAN on
    concat(x, y), six channels). With x the source (A) and y its target (B):

        L_D = ½ [ −log D(x, y) − log(1 − D(x, G(x))) ]          (§3.3: D's objective halved)
        L_G = −log D(x, G(x)) + λ ‖y − G(x)‖₁                     (eq. 4, λ = ``lambda_l1`` = 100)

    (``model.loss`` = non_saturating is the official ``vanilla`` GAN loss.) One iteration as the
    official ``optimize_parameters``: G(x) once, a D step on it detached, then a G step.
    """

    batch_kind = "paired"
    nan_advice = "lower model.lr or model.lambda_l1"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer: partial[torch.optim.Optimizer],
        lr: float = 2e-4,
        loss: str = "non_saturating",
        lambda_l1: float = 100.0,
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        seed: int = 0,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str | None = None,
    ) -> None:
        super().__init__(channels_last, compile, compile_mode)
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer"], logger=False)
        if lambda_l1 < 0:
            raise ConfigError(f"model.lambda_l1={lambda_l1} must be ≥ 0 (0: a plain conditional GAN)")
        self.generator, self.discriminator, self.optimizer = generator, discriminator, optimizer
        self.loss = get_loss(loss)
        # least_squares halves inside its loss already (½E[(D−1)²] + ½E[D²]); the others sum two terms
        self.d_scale = 1.0 if loss == "least_squares" else 0.5
        self.use_ema = False  # the tools' ema switch: pix2pix keeps no EMA copy

    @property
    def default_max_epochs(self) -> int:
        return self.hparams.n_epochs + self.hparams.n_epochs_decay

    def networks(self) -> list[nn.Module]:
        return [self.generator, self.discriminator]

    def check_sizes(self, size: int, settings: dict[str, dict]) -> None:
        """G returns a ``size`` crop at its size and D takes A and B stacked (``modules.shapes``)."""
        check_translation(self.generator, self.discriminator, size, lambda a, b: a + b, "pix2pix", settings)

    def forward(self, a: Tensor) -> Tensor:
        return self.generator(a)

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[LambdaLR]]:
        opt_g = self.optimizer(self.generator.parameters(), lr=self.hparams.lr)
        opt_d = self.optimizer(self.discriminator.parameters(), lr=self.hparams.lr)
        rule = partial(
            linear_decay, n_epochs=self.hparams.n_epochs, n_epochs_decay=self.hparams.n_epochs_decay
        )
        return [opt_g, opt_d], [LambdaLR(opt_g, rule), LambdaLR(opt_d, rule)]

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real_a, real_b = self.image_format(batch["A"]), self.image_format(batch["B"])
        with self.seeded(self.hparams.seed * 1_000_003 + self.iteration):  # dropout masks: exact resume
            fake_b = self.generator(real_a)  # G(x), (B, 3, S, S)

        with self.toggled_optimizer(opt_d):
            real_pair = torch.cat([real_a, real_b], 1)  # (B, 6, S, S)
            fake_pair = torch.cat([real_a, fake_b.detach()], 1)
            loss_d = self.d_scale * self.loss.d(self.discriminator(real_pair), self.discriminator(fake_pair))
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(loss_d)
            opt_d.step()

        with self.toggled_optimizer(opt_g):  # D frozen
            loss_gan = self.loss.g(self.discriminator(torch.cat([real_a, fake_b], 1)))
            loss_l1 = self.hparams.lambda_l1 * F.l1_loss(fake_b, real_b)
            loss_g = loss_gan + loss_l1
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(loss_g)
            opt_g.step()

        self.track_finite(loss_g, loss_d)
        self.iteration += 1
        metrics = {"loss_d": loss_d, "loss_g": loss_g, "loss_g_gan": loss_gan, "loss_g_l1": loss_l1}
        logged = {f"train/{k}": v.detach() for k, v in metrics.items()}
        logged["train/lr"] = opt_g.param_groups[0]["lr"]
        self.log_step(logged, batch_size=real_a.shape[0])

    def seeded(self, seed: int) -> AbstractContextManager[None]:
        return seeded(seed, self.device)

    def on_train_epoch_end(self) -> None:
        for scheduler in self.lr_schedulers():
            scheduler.step()  # manual optimization: Lightning never steps schedulers for us

    def translate(self, images: Tensor) -> Tensor:
        """G(x) as at test time in the paper: dropout on, batch norm on the batch's own statistics."""
        return paper_test_time(self.generator, images, self.hparams.seed, self.device)

    def on_fit_start(self) -> None:
        panels = getattr(self.trainer.datamodule, "panel_images", None)
        if panels is not None:
            for domain, images in panels().items():
                self.register_buffer(f"panel_{domain.lower()}", to_model_range(images), persistent=False)

    def fid_sources(self, datamodule: Any, num_fake: int, per_class: bool = False) -> dict[str, Tensor]:
        """Every source image of the evaluation split (test, else val)."""
        no_classes(per_class, "pix2pix")
        return datamodule.fid_sources()

    def fid_generate(self, key: str, images: Tensor) -> Tensor:
        return self.translate(to_model_range(images))

    def preview(self) -> dict[str, tuple[Tensor, int]]:
        """Rows of source | G(source) | target on fixed evaluation pairs."""
        source, target = getattr(self, "panel_a", None), getattr(self, "panel_b", None)
        if source is None or target is None:
            return {}
        rows = torch.stack([source, self.translate(source), target], dim=1)  # (N, 3, C, H, W)
        return {"a2b": (rows.flatten(0, 1), 3)}
