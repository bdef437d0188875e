"""Exponential moving average of generator weights (Karras et al. 2018; Yazıcı et al. 2019).

The average θ̄ ← d·θ̄ + (1 − d)·θ after every generator step, with the ramp-up
d_n = min(decay, (1 + n) / (10 + n)) so early averages are not dominated by the random init.
Buffers (BatchNorm running statistics) are copied from the live network, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ganlab.errors import ConfigError


def check_decay(decay: float) -> float:
    if not 0.0 <= decay < 1.0:
        raise ConfigError(f"model.ema.decay={decay} must be in [0, 1): 0 turns EMA off, 0.999 is typical")
    return float(decay)


def ramped_decay(decay: float, n: int) -> float:
    """The decay of the n-th update (n = 0, 1, ...): min(decay, (1 + n) / (10 + n))."""
    return min(decay, (1.0 + n) / (10.0 + n))


def ema_copy(net: nn.Module) -> nn.Module:
    """A frozen copy of ``net`` that starts at its weights."""
    return copy.deepcopy(net).requires_grad_(False)


@torch.no_grad()
def update_ema(average: nn.Module, live: nn.Module, decay: float) -> None:
    """θ̄ ← decay·θ̄ + (1 − decay)·θ for parameters; buffers copied (no host sync)."""
    ema_params = [p for p in average.parameters()]
    live_params = [p.detach() for p in live.parameters()]
    torch._foreach_lerp_(ema_params, live_params, 1.0 - decay)
    for mine, theirs in zip(average.buffers(), live.buffers(), strict=True):
        mine.copy_(theirs)
