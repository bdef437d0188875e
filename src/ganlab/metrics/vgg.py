"""VGG-16 features for improved precision and recall (Kynkäänniemi et al. 2019), as torch-fidelity
computes them: ``fc2_relu`` (4096-d) of torchvision's ImageNet VGG-16 at 224 px (TF1-style bilinear
resize, ImageNet normalisation), k = 3 nearest neighbours.

torch-fidelity reads its weights with ``torch.load(weights_only=False)`` or through ``torch.hub``;
here the file is read as tensors only and torch-fidelity's extractor is handed a copy we wrote, as
for the Inception weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ganlab.files import plain_copy
from ganlab.metrics.hub import VGG16_FILE, VGG16_URL, MissingVggWeightsError, resolve_vgg16  # noqa: F401


class VggFeatures(nn.Module):
    """uint8 images (B, 3, H, W) → VGG-16 ``fc2_relu`` features (B, 4096), torch-fidelity's extractor."""

    def __init__(self, weights: Path) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

        advice = f"expected torchvision's {VGG16_FILE} ({VGG16_URL})"
        with plain_copy(weights, VGG16_FILE, MissingVggWeightsError, "torchvision's VGG-16", advice) as clean:
            self.net = FeatureExtractorVGG16("vgg16", ["fc2_relu"], feature_extractor_weights_path=str(clean))

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # grayscale → RGB
        with torch.autocast(device_type=images.device.type, enabled=False):
            (features,) = self.net(images)
        return features.float()
