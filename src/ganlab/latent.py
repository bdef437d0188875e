"""Latent-space tools for a trained DCGAN: seeded latents, interpolation, vector arithmetic."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ganlab.checkpoint import build_network, load_checkpoint, model_kind, weights_prefix
from ganlab.errors import ConfigError


def load_generator(ckpt_path: str, device: torch.device, ema: bool = True) -> nn.Module:
    """The DCGAN generator of a checkpoint, in eval mode, built from the checkpoint's own config:
    its EMA copy when it has one (unless ``ema=False``), else the trained weights."""
    ckpt, where = load_checkpoint(ckpt_path), f"ckpt={ckpt_path}"
    kind = model_kind(ckpt, where)
    if kind != "DCGAN":
        raise ConfigError(f"ckpt={ckpt_path} is a {kind} checkpoint; this needs a DCGAN one")
    generator = build_network(ckpt, "generator", weights_prefix(ckpt, "generator.", ema), where).to(device)
    names = ckpt["ganlab_config"]["model"].get("class_names")
    k = generator.num_classes = getattr(generator, "num_classes", None)  # a plugin's G may not say
    plain_names = isinstance(names, list) and len(names) == k and all(isinstance(n, str) for n in names)
    generator.class_names = names if plain_names else [str(i) for i in range(k or 0)]
    generator.source = ckpt_path
    return generator


def class_index(value: object, generator: nn.Module, option: str = "class") -> int:
    """A class given as its index or its name (``class=7``, ``class=Smiling``); one line otherwise."""
    k, names = generator.num_classes, generator.class_names
    if not k:
        raise ConfigError(
            f"{option}={value}: ckpt={generator.source} is an unconditional model (trained without "
            "model.conditional=true); drop the option"
        )
    if isinstance(value, str) and value in names:
        return names.index(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < k:
        return value
    shown = ", ".join(f"{i}={n}" if n != str(i) else n for i, n in enumerate(names[:12]))
    raise ConfigError(f"{option}={value} is not a class of this model: it has {k} classes ({shown})")


def class_labels(value: object, generator: nn.Module, n: int, seed: int) -> Tensor | None:
    """Labels for n samples: None (unconditional), one class for all, or with ``class=all`` every
    class n times (class-major, row k = class k); a conditional model without ``class=`` draws
    classes uniformly from ``seed``."""
    if value is None:
        k = generator.num_classes = getattr(generator, "num_classes", None)  # a plugin's G may not say
        return None if not k else torch.randint(k, (n,), generator=torch.Generator().manual_seed(seed + 1))
    if value == "all":
        class_index(0, generator)  # one line if unconditional
        return torch.arange(generator.num_classes).repeat_interleave(n)
    return torch.full((n,), class_index(value, generator), dtype=torch.long)


def latents(seed: int, n: int, dim: int) -> Tensor:
    """n latents z ~ N(0, I) drawn on the CPU from ``seed``: the same on any device."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def render(generator: nn.Module, z: Tensor, batch_size: int = 256, y: Tensor | None = None) -> Tensor:
    """Images in [−1, 1] for latents z (N, dim) [and labels y: indices (N,) or class weights (N, K)],
    generated in batches; returned on the CPU."""
    device = next(generator.parameters()).device
    labels = [None] * len(z) if y is None else [t.to(device) for t in y.split(batch_size)]
    chunks = zip(z.split(batch_size), labels, strict=False)
    return torch.cat([generator(c.to(device), t).cpu() for c, t in chunks])


def class_path(classes: Sequence[int], steps: int, k: int) -> Tensor:
    """Class weights (rows of K) walking class₀ → class₁ → ...: a one-hot row is the class itself."""
    eye = torch.eye(k)
    t = torch.linspace(0.0, 1.0, steps)
    return torch.cat([lerp(eye[a], eye[b], t) for a, b in itertools.pairwise(classes)])


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents): a at t=0, b at t=1."""
    cos = (a / a.norm()).dot(b / b.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6:  # parallel vectors: slerp degenerates to lerp
        return lerp(a, b, t)
    t = t.view(-1, 1)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    t = t.view(-1, 1)
    return (1 - t) * a + t * b


INTERPOLATIONS = {"slerp": slerp, "lerp": lerp}


def interpolation_path(seeds: Sequence[int], steps: int, method: str, dim: int) -> Tensor:
    """Latents walking seed₀ → seed₁ → ...: (len(seeds) − 1) rows of ``steps`` points, endpoints included."""
    if method not in INTERPOLATIONS:
        raise ConfigError(f"method={method} must be slerp or lerp")
    if len(seeds) < 2 or steps < 2:
        raise ConfigError("interpolation needs seeds=[a,b,...] with at least two seeds and steps ≥ 2")
    ends = [latents(s, 1, dim)[0] for s in seeds]
    t = torch.linspace(0.0, 1.0, steps)
    return torch.cat([INTERPOLATIONS[method](a, b, t) for a, b in itertools.pairwise(ends)])


def arithmetic(reference: Tensor, a: Sequence[int], b: Sequence[int], c: Sequence[int]) -> Tensor:
    """mean(z[a]) − mean(z[b]) + mean(z[c]) over the reference latents (Radford et al. 2016, §6.3.2)."""
    n = len(reference)
    for name, group in (("a", a), ("b", b), ("c", c)):
        if not group:
            raise ConfigError(f"{name}=[] is empty; give indices of the reference grid, e.g. {name}=[3,17]")
        bad = [i for i in group if not 0 <= int(i) < n]
        if bad:
            raise ConfigError(f"{name} has indices {bad} outside the reference grid 0..{n - 1}")
    mean = lambda idx: reference[list(idx)].mean(dim=0)  # noqa: E731
    return mean(a) - mean(b) + mean(c)
