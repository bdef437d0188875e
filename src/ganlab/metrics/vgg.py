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

from ganlab.data.downloads import fetch_once
from ganlab.errors import GanlabError
from ganlab.files import plain_copy

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"  # torchvision IMAGENET1K_V1
VGG16_FILE = VGG16_URL.rsplit("/", 1)[-1]
VGG16_SHA256 = "397923af"  # torchvision's published prefix, as torch.hub names files


class MissingVggWeightsError(GanlabError):
    """VGG-16 weights for precision/recall are neither on disk nor downloadable, or are not VGG-16's."""


def resolve_hub_file(
    given: str | None,
    option: str,
    url: str,
    name: str,
    sha_prefix: str,
    error: type[GanlabError],
    off: str,
    download: bool,
) -> Path:
    """A weights file: ``given`` (the ``option``), else ``$TORCH_HOME/hub/checkpoints/<name>``,
    else fetched there from ``url`` once (kept only if its sha256 starts with the published
    prefix). ``off`` says how to do without it."""
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise error(f"{option}={path} does not exist; point it at {name} (from {url}), or {off}")
        return path
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    if path.is_file():
        return path
    reason = "downloads disabled"
    if download:

        def verify(part: Path) -> None:
            from ganlab.metrics.inception import weights_sha256

            digest = weights_sha256(part)
            if not digest.startswith(sha_prefix):
                raise error(
                    f"the download of {url} has sha256 {digest[:16]}…, not the published {sha_prefix}…"
                )

        reason = fetch_once(url, path, verify=verify)
        if reason is None:
            return path
    raise error(
        f"{name} is needed: not in {path.parent} and {reason}; fetch {url} into {path.parent}, "
        f"or pass {option}=<file>, or {off}"
    )


def resolve_vgg16(weights_path: str | None, download: bool = True) -> Path:
    return resolve_hub_file(
        weights_path, "metrics.vgg.weights_path", VGG16_URL, VGG16_FILE, VGG16_SHA256, MissingVggWeightsError,
        "set metrics.prc=false", download,
    )  # fmt: skip


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
