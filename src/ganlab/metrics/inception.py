"""torch-fidelity's Inception-v3 port (through torchmetrics), found offline or fetched once."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError
from ganlab.files import plain_copy
from ganlab.metrics.hub import (  # noqa: F401  (the weights' names and resolvers, here as before)
    FEATURE_DIMS,
    MAX_DOWNLOAD_BYTES,
    PUBLISHED_SHA256,
    TRAINING_OFF,
    URL_INCEPTION_V3,
    WEIGHTS_FILE,
    MissingWeightsError,
    WrongWeightsError,
    check_weights,
    hub_weights_path,
    resolve_hub_file,
    resolve_weights,
    weights_sha256,
)


class InceptionFeatures(nn.Module):
    """uint8 images (B, C, H, W), any size, 1 or 3 channels → float32 features (B, dim).

    torch-fidelity's resize (TF1-style bilinear to 299, ``antialias=False``: torchmetrics ≥ 1.8
    defaults to antialiasing, which no longer matches torch-fidelity and the papers), run in
    float32 with autocast off whatever the trainer's precision.
    """

    def __init__(self, weights: Path, dim: int = 2048, logits: bool = False) -> None:
        super().__init__()
        if dim not in FEATURE_DIMS:
            raise ConfigError(f"metrics.fid.feature={dim} must be one of {FEATURE_DIMS}")
        self.dim, self.logits = dim, logits
        self.last_logits: Tensor | None = None  # (B, 1008) of the last batch, with logits=True (IS)
        # torch-fidelity reads the path with torch.load(weights_only=False): it only ever sees a
        # copy we wrote from tensors read with weights_only=True, never the user's file itself
        from torchmetrics.image.fid import NoTrainInceptionV3

        advice = f"use {WEIGHTS_FILE} from {URL_INCEPTION_V3}"
        with plain_copy(
            weights, WEIGHTS_FILE, WrongWeightsError, "torch-fidelity's Inception", advice
        ) as clean:
            self.net = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=[str(dim), *(["logits_unbiased"] if logits else [])],
                feature_extractor_weights_path=str(clean),
                antialias=False,
            )

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8:
            raise TypeError("InceptionFeatures expects uint8 images in [0, 255]")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # grayscale → RGB, as torch-fidelity does
        with torch.autocast(device_type=images.device.type, enabled=False):
            if not self.logits:
                return self.net(images).float().reshape(images.shape[0], self.dim)
            # torchmetrics' forward returns the first output only: both, from the same pass
            features, logits = self.net._torch_fidelity_forward(images)
        self.last_logits = logits.float()  # the Inception Score's class logits
        return features.float().reshape(images.shape[0], self.dim)


def to_uint8(images: Tensor) -> Tensor:
    """Generator output in [−1, 1] → uint8 [0, 255], rounded as image files are."""
    return images.float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
