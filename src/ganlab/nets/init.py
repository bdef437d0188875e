"""Weight initialisation schemes."""

from torch import nn


def dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) conv weights, N(1, 0.02) norm scales, zero biases (Radford et al. 2016, §4)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, mean=1.0, std=0.02)
            nn.init.zeros_(m.bias)
