"""What scoring a trained generator needs, without Lightning.

The GAN modules' ``fid_sources`` and ``fid_generate`` are made of these, and ``evaluate`` uses the
same functions on the networks it rebuilds from a checkpoint (it never builds the LightningModule),
so a run's FID and ``evaluate``'s agree to the bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError

EVAL_SEED = 2**31 - 1  # evaluation latents: independent of the training seed


def latent_sources(
    latent_dim: int, num_classes: int | None, num_fake: int, per_class: bool
) -> dict[str, Tensor]:
    """Fixed evaluation latents, the same for every run (CPU-drawn, device independent).

    Conditional: each row is z with its class index appended as a last column, the classes
    balanced (i mod K); ``per_class`` adds ``class_<k>`` sources of num_fake // K each.
    """
    g = torch.Generator().manual_seed(EVAL_SEED)
    z = torch.randn(num_fake, latent_dim, generator=g)
    if not num_classes:
        if per_class:
            raise ConfigError("metrics.per_class=true needs a conditional model (model.conditional=true)")
        return {"": z}
    k = num_classes
    sources = {"": torch.cat([z, (torch.arange(num_fake) % k).float()[:, None]], dim=1)}
    if per_class:
        each = max(1, num_fake // k)
        for c in range(k):
            sources[f"class_{c}"] = torch.cat([z[:each], torch.full((each, 1), float(c))], dim=1)
    return sources


def generate_latents(net: nn.Module, source: Tensor, num_classes: int | None) -> Tensor:
    """G's images for rows of ``latent_sources`` (a conditional row's last column is its class)."""
    if not num_classes:
        return net(source)
    return net(source[:, :-1], source[:, -1].long())


def no_classes(per_class: bool, family: str) -> None:
    """Translation models have no classes to score per class."""
    if per_class:
        raise ConfigError(f"metrics.per_class=true is for conditional DCGANs; {family} has no classes")


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Dropout draws from torch's global generator: fork it, seeded, and restore it afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def paper_test_time(generator: nn.Module, images: Tensor, seed: int, device: torch.device) -> Tensor:
    """pix2pix's G(x) as at test time in the paper: dropout on (masks seeded by ``seed``), batch
    norm on each image's own statistics, the running statistics left untouched."""
    was_training = generator.training
    generator.train()
    state = _freeze_norm_stats(generator)
    try:
        with seeded(seed, device):  # the same dropout masks at every evaluation
            return torch.cat([generator(x[None]) for x in images.to(device)])  # one per batch
    finally:
        _restore_norm_stats(generator, state)
        generator.train(was_training)


def _freeze_norm_stats(net: nn.Module) -> dict[nn.Module, bool]:
    """Batch norms normalise with the batch but leave their running statistics untouched."""
    state = {}
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            state[m] = m.track_running_stats
            m.track_running_stats = False
    return state


def _restore_norm_stats(net: nn.Module, state: dict[nn.Module, bool]) -> None:
    for m, track in state.items():
        m.track_running_stats = track
