"""Image history buffer for discriminator updates (Shrivastava et al. 2017; CycleGAN §4)."""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import Tensor


class ImagePool:
    """Up to ``size`` past fakes; D is trained on a mix of new and remembered ones.

    Per image, as the official code: while the pool fills, each new fake is stored and returned;
    then with probability ½ a random stored fake is returned and replaced by the new one, else the
    new one is returned. Decisions come from a Python ``random.Random`` of its own (no tensor is
    read back, so no device sync), whose state is saved with the contents: a resumed run draws the
    same sequence.
    """

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        self.size = size
        self.images: list[Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: Tensor) -> Tensor:
        """(B, C, H, W) fakes → (B, C, H, W) fakes for D, detached."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images.split(1):
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.rng.random() < 0.5:
                k = self.rng.randrange(len(self.images))
                out.append(self.images[k])
                self.images[k] = image
            else:
                out.append(image)
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        stored = torch.cat(self.images).cpu() if self.images else torch.empty(0)
        return {"images": stored, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.images = list(state["images"].to(device).split(1)) if state["images"].numel() else []
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))

    def to(self, device: torch.device | str) -> ImagePool:
        self.images = [image.to(device) for image in self.images]
        return self
