"""A model's networks tried on the data's image size before training, on the meta device (shapes
only: no memory, no weights touched, milliseconds), so a size or depth that cannot work is one line
naming the setting and sizes that do work — not a traceback from inside a layer mid-run."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError

MAX_SIDE = 4096  # the largest crop ganlab trains on (checkpoint.INT_LIMITS["crop_size"])


class DoesNotFit(Exception):
    """A network refused an input shape (its own error text)."""


def on_meta(net: nn.Module, *inputs: Tensor) -> Tensor:
    """``net(*inputs)`` computed on the meta device, in the net's current (training) mode."""
    state = {
        name: torch.empty_like(value, device="meta")
        for name, value in itertools.chain(net.named_parameters(), net.named_buffers())
    }
    try:
        with torch.no_grad():
            return torch.func.functional_call(net, state, tuple(x.to("meta") for x in inputs), strict=False)
    except (RuntimeError, ValueError, IndexError) as e:
        if "meta" in str(e).lower() and "tensor" in str(e).lower() and "device" in str(e).lower():
            raise NotImplementedError(str(e)) from None  # an op without a meta kernel: not a size problem
        raise DoesNotFit(" ".join(str(e).split())[:160]) from None


def keeps_size(net: nn.Module, side: int) -> bool:
    """Whether ``net`` returns a side × side RGB image at that size (on the meta device)."""
    try:
        return tuple(on_meta(net, torch.zeros(1, 3, side, side)).shape[-2:]) == (side, side)
    except DoesNotFit:
        return False


def first_conv_channels(net: nn.Module) -> int | None:
    conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)), None)
    return conv.in_channels if conv is not None else None


def describe(net: nn.Module, key: str, settings: dict) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in settings.items())
    return f"{key} ({type(net).__name__}{', ' + shown if shown else ''})"


def nearby_sizes(size: int, fits: Callable[[int], bool], most: int = 2) -> list[int]:
    """Crop sizes near ``size`` that ``fits``: multiples of 4, 8, …, 1024 around it, nearest first."""
    candidates = set()
    for power in range(2, 11):
        step = 1 << power
        candidates |= {math.floor(size / step) * step, math.ceil(size / step) * step}
    found = []
    for candidate in sorted(
        (c for c in candidates if 4 <= c <= MAX_SIDE and c != size), key=lambda c: abs(c - size)
    ):
        if fits(candidate):
            found.append(candidate)
            if len(found) == most:
                break
    return sorted(found)


def check_translation(
    generator: nn.Module,
    discriminator: nn.Module,
    size: int,
    d_channels: Callable[[int, int], int],
    model: str,
    settings: dict[str, dict],
) -> None:
    """A translation model (CycleGAN, pix2pix) at ``size``×``size`` RGB crops: G must return an image
    of the same size (the cycle, identity and L1 losses compare them) and D must take what the
    model feeds it (``d_channels(in, out)`` channels). ``settings``: the config's depth settings of
    each network, shown in the message (``{"model.generator": {"num_downs": 8}}``)."""
    g_name = describe(generator, "model.generator", settings.get("model.generator", {}))
    d_name = describe(discriminator, "model.discriminator", settings.get("model.discriminator", {}))
    channels = first_conv_channels(generator) or 3
    if channels != 3:
        raise ConfigError(
            f"{g_name} takes {channels}-channel images but the data gives RGB (3 channels); set "
            "model.generator.in_channels=3"
        )

    def g_out(side: int) -> Tensor:
        return on_meta(generator, torch.zeros(1, 3, side, side, device="meta"))

    try:
        out = g_out(size)
    except NotImplementedError:
        return  # a layer without a meta kernel (a plugin's custom op): checked by training itself
    except DoesNotFit as e:
        others = nearby_sizes(size, lambda side: keeps_size(generator, side))
        fix = f"data.crop_size={' or '.join(map(str, others))}" if others else "a shallower network"
        raise ConfigError(f"{g_name} cannot take a {size}×{size} crop ({e}); use {fix}") from None
    if tuple(out.shape[-2:]) != (size, size):
        others = nearby_sizes(size, lambda side: keeps_size(generator, side))
        fix = f"use data.crop_size={' or '.join(map(str, others))}" if others else "change its depth"
        raise ConfigError(
            f"{g_name} turns a {size}×{size} crop into {out.shape[-2]}×{out.shape[-1]}; {model}'s losses "
            f"compare them, so the sizes must match: {fix}"
        )
    needed = d_channels(3, int(out.shape[1]))
    got = first_conv_channels(discriminator)
    if got is not None and got != needed:
        raise ConfigError(
            f"{d_name} takes {got}-channel images but {model} feeds it {needed} channels; set "
            f"model.discriminator.in_channels={needed}"
        )
    try:
        on_meta(discriminator, torch.zeros(1, needed, size, size, device="meta"))
    except NotImplementedError:
        return
    except DoesNotFit as e:
        raise ConfigError(
            f"{d_name} cannot take a {size}×{size} image ({e}); use fewer layers "
            "(model.discriminator.n_layers) or a larger data.crop_size"
        ) from None
