"""The real images a metric compares with: a value type data/ hands to metrics/ (neutral: both
import it, it imports neither)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class Reference:
    """Real images of one comparison: a name for the cache key and uint8 (N, C, H, W) images."""

    dataset: str
    split: str
    transform: str
    images: Tensor
