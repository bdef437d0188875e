"""Pixel ranges: uint8 images as stored, float in [−1, 1] as the networks see them (neutral: data/
and modules/ both use it)."""

from __future__ import annotations

from torch import Tensor

Batch = Tensor | tuple[Tensor, Tensor]  # uint8 images, or (images, int64 class labels)


def to_model_range(images: Tensor) -> Tensor:
    """uint8 [0, 255] → float [−1, 1], the range of the generator's Tanh."""
    return images.float().div_(127.5).sub_(1.0)


def batch_to_model_range(batch: Batch) -> Batch:
    """Images of a batch (alone or with labels) to [−1, 1]; labels unchanged."""
    if isinstance(batch, tuple | list):
        return to_model_range(batch[0]), batch[1]
    return to_model_range(batch)
