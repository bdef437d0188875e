"""DCGAN training by alternating discriminator and generator updates (manual optimization)."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError
from ganlab.losses import get_loss, gradient_penalty, r1_penalty
from ganlab.modules.augment import diff_augment, parse_policy
from ganlab.modules.base import GanModule
from ganlab.modules.ema import check_decay, ema_copy, ramped_decay, update_ema
from ganlab.modules.scoring import generate_latents, latent_sources
from ganlab.registry import register


@register
class DCGAN(GanModule):
    """GAN with DCGAN networks (Radford et al. 2016), unconditional or class-conditional.

    Code names → paper: ``generator`` G(z), ``discriminator`` D(x) (returns logits; σ(D) is the
    probability of "real"), z ~ N(0, I). The game is min_G max_D E[log D(x)] + E[log(1 − D(G(z)))];
    ``model.loss`` names the pair of losses actually minimised (``ganlab.losses``).

    One *iteration* = one batch: sample z, generate G(z) once; D step on (x, G(z).detach());
    every ``n_critic``-th iteration also a G step through D(G(z)) with the same fake batch.
    Ganhacks stabilisers, off by default: one-sided label smoothing (real target 1 − ε) and
    instance noise (Gaussian noise of std σ added to D's inputs, annealed linearly to 0).
    Beyond the paper, each a switch: an EMA of G (``generator_ema``, which then draws every
    sample, grid and FID), DiffAugment on everything D sees, the R1 penalty γ/2·E‖∇D(x)‖² on
    reals (lazy: every ``r1_every`` iterations, scaled by it), and the WGAN-GP penalty
    λ·E(‖∇D(x̂)‖ − 1)².

    Class-conditional (``conditional=true``; Mirza & Osindero 2014 with a projection D, Miyato &
    Koyama 2018): batches are (x, y); G(z, y) uses the real batch's labels, so D sees the same
    class mix on both sides, and D(x, y) scores the pair. ``num_classes`` and ``class_names``
    come from the data (train.py fills them in).

    Args:
        optimizer: partial optimizer (e.g. Adam with betas); ``lr`` and ``lr_d`` are filled in.
        lr_d: D's learning rate; None uses ``lr`` (set it for the two time-scale update rule).
        instance_noise_iters: iterations over which σ decays to 0; 0 keeps it constant.
        num_samples: size of the fixed-noise sample grid.
        ema: ``{"decay": d}``; 0 turns the generator EMA off.
        augment: DiffAugment policies, any of color, translation, cutout.
        conditional: train on (image, label) batches; both networks need ``num_classes``.
    """

    default_max_epochs = 25  # pytorch/examples dcgan's budget, used when trainer.max_epochs is null
    nan_advice = "lower model.lr, model.loss=least_squares or model.label_smoothing=0.1"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer: partial[torch.optim.Optimizer],
        lr: float = 2e-4,
        lr_d: float | None = None,
        loss: str = "non_saturating",
        n_critic: int = 1,
        label_smoothing: float = 0.0,
        instance_noise: float = 0.0,
        instance_noise_iters: int = 0,
        num_samples: int = 64,
        seed: int = 0,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str | None = None,
        ema: dict[str, float] | None = None,
        augment: str | list[str] | None = None,
        r1_gamma: float = 0.0,
        r1_every: int = 16,
        gp_weight: float = 0.0,
        conditional: bool = False,
        num_classes: int | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        super().__init__(channels_last, compile, compile_mode)
        # plain values only (weights_only loading); the run config is logged whole by train.py
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer"], logger=False)
        if n_critic < 1:
            raise ConfigError(f"model.n_critic={n_critic} must be ≥ 1 (D updates per G update)")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"model.label_smoothing={label_smoothing} must be in [0, 1)")
        if r1_gamma < 0 or gp_weight < 0 or r1_every < 1:
            raise ConfigError("model.r1_gamma and model.gp_weight must be ≥ 0 (0: off), model.r1_every ≥ 1")
        if (loss == "wasserstein" or gp_weight > 0) and any(
            isinstance(m, nn.BatchNorm2d) for m in discriminator.modules()
        ):
            raise ConfigError(
                f"model.loss={loss} with model.gp_weight={gp_weight} needs a discriminator without batch "
                "statistics (the penalty is per sample): set model.discriminator.norm=layer|instance|none"
            )
        self.num_classes = _check_classes(conditional, num_classes, generator, discriminator)
        self.generator, self.discriminator, self.optimizer = generator, discriminator, optimizer
        self.loss = get_loss(loss)
        self.augment = parse_policy(augment)
        self.ema_decay = check_decay((ema or {}).get("decay", 0.0))
        self.use_ema = self.ema_decay > 0  # tools may turn it off to sample the raw weights
        self.generator_ema = ema_copy(generator) if self.ema_decay > 0 else None
        self.latent_dim: int = generator.latent_dim
        seeded = torch.Generator().manual_seed(seed)
        self.register_buffer("fixed_z", torch.randn(num_samples, self.latent_dim, generator=seeded))

    def sample_z(self, n: int) -> Tensor:
        return torch.randn(n, self.latent_dim, device=self.device, generator=self.rng)

    def noise_std(self) -> float:
        sigma, span = self.hparams.instance_noise, self.hparams.instance_noise_iters
        if span > 0:
            sigma *= max(0.0, 1.0 - self.iteration / span)
        return sigma

    def perturb(self, x: Tensor, sigma: float) -> Tensor:
        if sigma == 0.0:
            return x
        return x + sigma * torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=self.rng)

    def networks(self) -> list[nn.Module]:
        return [self.generator, self.discriminator]

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.generator(z, y)

    def split_batch(self, batch: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor | None]:
        """(images, labels or None): labels are kept only by a conditional model."""
        images, labels = batch if isinstance(batch, tuple | list) else (batch, None)
        return images, labels if self.num_classes else None

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        lr_d = self.hparams.lr_d if self.hparams.lr_d is not None else self.hparams.lr
        opt_g = self.optimizer(self.generator.parameters(), lr=self.hparams.lr)
        opt_d = self.optimizer(self.discriminator.parameters(), lr=lr_d)
        return [opt_g, opt_d]

    def training_step(self, batch: Tensor | tuple[Tensor, Tensor], batch_idx: int) -> None:
        """One iteration: z → G(z) once; D step on (x, G(z).detach()); every ``n_critic``-th
        iteration a G step through the updated D on the same fake batch. The two players' losses
        are ``d_loss`` and ``g_loss``: a new algorithm overrides those, and keeps the rest (EMA,
        NaN guard, counters, logging, resume) as it is."""
        real, y = self.split_batch(batch)  # y: the batch's class labels (B,), or None
        opt_g, opt_d = self.optimizers()
        update_g = (self.iteration + 1) % self.hparams.n_critic == 0
        real = self.image_format(real)

        z = self.sample_z(real.shape[0])
        with torch.set_grad_enabled(update_g):
            fake = self.generator(z, y)  # (B, C, H, W), generated once per iteration

        with self.toggled_optimizer(opt_d):
            loss_d, metrics = self.d_loss(real, fake.detach(), y)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(loss_d)
            opt_d.step()
        metrics = {"train/loss_d": loss_d.detach(), **metrics, "train/lr_d": opt_d.param_groups[0]["lr"]}
        if update_g:  # G step through the updated D, on the same fake batch
            with self.toggled_optimizer(opt_g):
                loss_g = self.g_loss(real, fake, y)
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(loss_g)
                opt_g.step()
            if self.generator_ema is not None:
                update_ema(self.generator_ema, self.generator, ramped_decay(self.ema_decay, self.iteration))
            metrics["train/loss_g"] = loss_g.detach()
            metrics["train/lr_g"] = opt_g.param_groups[0]["lr"]
            self.track_finite(loss_g)
        self.track_finite(loss_d)  # on device: no host sync here
        self.iteration += 1
        self.log_step(metrics)

    def d_loss(self, real: Tensor, fake: Tensor, y: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """D's loss on reals and (detached) fakes, and what to log: by default maximise
        log D(x) + log(1 − D(G(z))) (or the configured ``model.loss``), plus R1 / WGAN-GP."""
        sigma, real_label = self.noise_std(), 1.0 - self.hparams.label_smoothing
        r1_now = self.hparams.r1_gamma > 0 and self.iteration % self.hparams.r1_every == 0
        real_in = real.detach().requires_grad_(True) if r1_now else real
        d_real = self.discriminator(self.d_view(real_in, sigma), y)
        d_fake = self.discriminator(self.d_view(fake, sigma), y)
        loss_d = self.loss.d(d_real, d_fake, real_label)
        loss_d = loss_d + self.penalties(real_in, d_real, fake, r1_now, y)
        return loss_d, {"train/d_real": d_real.detach().mean(), "train/d_fake": d_fake.detach().mean()}

    def g_loss(self, real: Tensor, fake: Tensor, y: Tensor | None) -> Tensor:
        """G's loss through D on the fakes (with their graph): by default −log D(G(z))."""
        return self.loss.g(self.discriminator(self.d_view(fake, self.noise_std()), y))

    def d_view(self, x: Tensor, sigma: float) -> Tensor:
        """What D sees of an image batch: instance noise, then DiffAugment (both off by default)."""
        x = self.perturb(x, sigma)
        return diff_augment(x, self.augment, self.rng) if self.augment else x

    def penalties(
        self, real: Tensor, d_real: Tensor, fake: Tensor, r1_now: bool, y: Tensor | None = None
    ) -> Tensor | float:
        """R1 (lazy: ×r1_every on the iterations it runs) and the WGAN-GP term, added to D's loss."""
        total: Tensor | float = 0.0
        if r1_now:
            total = total + self.hparams.r1_gamma / 2 * self.hparams.r1_every * r1_penalty(d_real, real)
        if self.hparams.gp_weight > 0:
            eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=self.rng)
            critic = partial(self.discriminator, y=y)  # the same labels at the mixed points
            total = total + self.hparams.gp_weight * gradient_penalty(critic, real.detach(), fake, eps)
        return total

    @property
    def sampler(self) -> nn.Module:
        """The generator that draws samples, grids and FID: the EMA copy when there is one."""
        return self.generator_ema if self.generator_ema is not None and self.use_ema else self.generator

    def validation_step(self, batch: Tensor | tuple[Tensor, Tensor], batch_idx: int) -> None:
        # D's mean logit on held-out reals; a growing gap to train/d_real means D is memorising
        real, y = self.split_batch(batch)
        self.log("val/d_real", self.discriminator(real, y).mean(), on_epoch=True, sync_dist=True)  # all ranks

    def fid_sources(self, datamodule: Any, num_fake: int, per_class: bool = False) -> dict[str, Tensor]:
        """Fixed evaluation latents, the same for every run (``scoring.latent_sources``)."""
        return latent_sources(self.latent_dim, self.num_classes, num_fake, per_class)

    def fid_generate(self, key: str, source: Tensor) -> Tensor:
        return generate_latents(self.sampler, source, self.num_classes)

    def preview(self) -> dict[str, tuple[Tensor, int]]:
        """The fixed-noise grid, 8 per row; conditional: one row per class, one fixed z per column."""
        if not self.num_classes:
            return {"fixed_noise": (self.sample(), 8)}
        z, y = self.class_grid_inputs()
        return {"fixed_noise": (self.sample(z, y), len(z) // self.num_classes)}

    def class_grid_inputs(self, columns: int = 8) -> tuple[Tensor, Tensor]:
        """(z, y) of a class grid: row k is class k, column j is fixed_z[j] in every row."""
        assert self.num_classes
        columns = min(columns, len(self.fixed_z))
        z = self.fixed_z[:columns].repeat(self.num_classes, 1)
        y = torch.arange(self.num_classes, device=self.device).repeat_interleave(columns)
        return z, y

    @torch.no_grad()
    def sample(self, z: Tensor | None = None, y: Tensor | None = None) -> Tensor:
        """Images in [−1, 1] for ``z`` (default: the fixed noise) and labels ``y``, G in eval mode."""
        net = self.sampler
        was_training = net.training
        net.eval()
        try:
            return net(
                self.fixed_z if z is None else z.to(self.device), None if y is None else y.to(self.device)
            )
        finally:
            net.train(was_training)


def _check_classes(
    conditional: bool, num_classes: int | None, generator: nn.Module, discriminator: nn.Module
) -> int | None:
    """The number of classes of a conditional model; one line when the parts disagree."""
    nets = {
        "generator": getattr(generator, "num_classes", None),
        "discriminator": getattr(discriminator, "num_classes", None),
    }
    if not conditional:
        if num_classes or any(nets.values()):
            raise ConfigError(
                "model.num_classes is set but model.conditional=false; set model.conditional=true"
            )
        return None
    if not num_classes:
        raise ConfigError(
            "model.conditional=true needs class labels from the data: data=mnist, data=cifar10, "
            "data=image_folder with data.labels=folders, or data=celeba with data.attribute=<name>"
        )
    wrong = [name for name, k in nets.items() if k != num_classes]
    if wrong:
        raise ConfigError(
            f"model.{wrong[0]}.num_classes={nets[wrong[0]]} differs from model.num_classes={num_classes}; "
            "leave it at its default ${model.num_classes}"
        )
    return num_classes
