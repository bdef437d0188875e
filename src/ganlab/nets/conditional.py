"""Class conditioning: conditional BatchNorm for G, a projection head for D (Miyato & Koyama 2018).

Labels are class indices (B,) or class weights (B, K): a row of weights mixes the classes'
embeddings, so a one-hot row is the class itself and a blend walks between classes at a fixed z.
"""

from __future__ import annotations

from torch import Tensor, nn


def embed(table: nn.Embedding, y: Tensor) -> Tensor:
    """(B,) class indices or (B, K) class weights → (B, dim) rows of ``table``."""
    if y.is_floating_point():
        return y.to(table.weight.dtype) @ table.weight  # (B, K) @ (K, dim)
    return table(y)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine, then a per-class scale and shift: γ_y · BN(x) + β_y.

    As the generators of Miyato & Koyama 2018 and BigGAN: the class reaches every layer of G,
    where concatenating a one-hot vector to z reaches only the first.
    """

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)  # every class starts as the plain BatchNorm
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        gain = embed(self.gain, y)[:, :, None, None]  # (B, C, 1, 1)
        bias = embed(self.bias, y)[:, :, None, None]
        return gain * self.bn(x) + bias


class Projection(nn.Module):
    """The class term of a projection discriminator: ⟨embed(y), Σ_hw φ(x)⟩ added to D's logit."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.table = nn.Embedding(num_classes, num_features)
        nn.init.xavier_uniform_(self.table.weight)  # as the authors' SNGAN code

    def forward(self, features: Tensor, y: Tensor) -> Tensor:
        pooled = features.sum(dim=(2, 3))  # (B, C, h, w) → (B, C): global sum pooling
        return (embed(self.table, y) * pooled).sum(dim=1)  # (B,)


def check_labels(y: Tensor | None, num_classes: int | None, who: str) -> None:
    """A conditional network needs labels, an unconditional one takes none (ranges are checked
    where labels enter: the data and the tools; a check here would sync the device every step)."""
    if num_classes is None:
        if y is not None:
            raise ValueError(f"{who} is unconditional (num_classes=None) but was given labels")
        return
    if y is None:
        raise ValueError(f"{who} is conditional ({num_classes} classes) and needs labels y")
