"""Weight initialisation schemes."""

from typing import Literal, get_args

from torch import nn

from ganlab.errors import ConfigError

INIT = Literal["dcgan", "pytorch"]  # the type hint of each network's ``init`` (checked before import)
INITS = get_args(INIT)


def initialise(module: nn.Module, scheme: str, key: str) -> None:
    """``dcgan``: the paper's N(0, 0.02); ``pytorch``: keep torch's default (Kaiming-uniform) init."""
    if scheme not in INITS:
        raise ConfigError(f"{key}={scheme} must be one of {', '.join(INITS)}")
    if scheme == "dcgan":
        dcgan_init(module)


def dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) conv weights, N(1, 0.02) norm scales, zero biases (Radford et al. 2016, §4).
    Nothing to draw for a network built on the meta device (shapes only: the checks before loading
    a file), where torch's init would import its compiler (a second of start-up)."""
    if any(p.is_meta for p in module.parameters()):
        return
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, mean=1.0, std=0.02)
            nn.init.zeros_(m.bias)
