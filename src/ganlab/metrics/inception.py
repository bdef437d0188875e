"""torch-fidelity's Inception-v3 port (through torchmetrics), found offline or fetched once."""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError, GanlabError
from ganlab.fetch import fetch_once
from ganlab.files import plain_copy

# torch-fidelity's (torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3; a test checks they
# agree): the weights are found, or said missing, without importing torch-fidelity or torchmetrics
URL_INCEPTION_V3 = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_FILE = URL_INCEPTION_V3.rsplit("/", 1)[-1]  # weights-inception-2015-12-05-6726825d.pth
FEATURE_DIMS = (64, 192, 768, 2048)
# torch-fidelity publishes the sha256 as torch.hub does: its leading hex digits in the file name
MAX_DOWNLOAD_BYTES = 128 << 20  # the published file is 91 MB: a server sending more is cut off
PUBLISHED_SHA256 = re.search(r"-([0-9a-f]{8,})\.pth$", WEIGHTS_FILE).group(1)  # type: ignore[union-attr]


class MissingWeightsError(GanlabError):
    """The Inception weights are neither on disk nor downloadable."""


class WrongWeightsError(GanlabError):
    """A weights file that is not torch-fidelity's Inception, or not plain tensors."""


def hub_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


TRAINING_OFF = "turn FID off with metrics=none"  # a training run can do without FID; evaluate cannot


def resolve_weights(
    weights_path: str | None, download: bool = True, allow_other: bool = False, off: str | None = TRAINING_OFF
) -> Path:
    """The weights file: ``weights_path``, else the torch hub cache, else downloaded there; its
    sha256 checked against torch-fidelity's published one unless ``allow_other``. ``off``: how the
    command at hand does without FID, if it can (None: only the ways to get the file are named)."""
    alternative = f", or {off}" if off else ""
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise MissingWeightsError(
                f"metrics.fid.weights_path={path} does not exist; point it at {WEIGHTS_FILE} "
                f"(from {URL_INCEPTION_V3}){alternative}"
            )
        return check_weights(path, allow_other)
    path = hub_weights_path()
    if path.is_file():
        return check_weights(path, allow_other)  # the cache's name with other contents is never used
    reason = "downloads disabled"
    if download:
        reason = fetch_once(
            URL_INCEPTION_V3,
            path,
            verify=lambda part: check_weights(part, allow_other=False),
            max_bytes=MAX_DOWNLOAD_BYTES,
        )
        if reason is None:
            return path
    raise MissingWeightsError(
        f"FID needs the Inception weights {WEIGHTS_FILE}: not in {path.parent} and {reason}; fetch it "
        f"from {URL_INCEPTION_V3} into {path.parent}, or pass metrics.fid.weights_path=<file>{alternative}"
    )


def resolve_hub_file(
    given: str | None,
    option: str,
    url: str,
    name: str,
    sha_prefix: str,
    error: type[GanlabError],
    off: str,
    download: bool,
    max_bytes: int = 1 << 30,
) -> Path:
    """A weights file: ``given`` (the ``option``), else ``$TORCH_HOME/hub/checkpoints/<name>``,
    else fetched there from ``url`` once (at most ``max_bytes``; kept only if its sha256 starts with
    the published prefix, which a cached copy must match too). ``off`` says how to do without it."""
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise error(f"{option}={path} does not exist; point it at {name} (from {url}), or {off}")
        return path
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    if path.is_file():
        digest = weights_sha256(path)
        if not digest.startswith(sha_prefix):  # the cache's name with other contents: never used
            raise error(
                f"{path} is not the published {name} (sha256 {digest[:16]}…, published {sha_prefix}…); "
                f"delete it to fetch it again, or pass {option}=<file> to use a file of your own"
            )
        return path
    reason = "downloads disabled"
    if download:

        def verify(part: Path) -> None:
            digest = weights_sha256(part)
            if not digest.startswith(sha_prefix):
                raise error(
                    f"the download of {url} has sha256 {digest[:16]}…, not the published {sha_prefix}…"
                )

        reason = fetch_once(url, path, verify=verify, max_bytes=max_bytes)
        if reason is None:
            return path
    raise error(
        f"{name} is needed: not in {path.parent} and {reason}; fetch {url} into {path.parent}, "
        f"or pass {option}=<file>, or {off}"
    )


@cache
def _sha256(path: str, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(path: Path) -> str:
    """sha256 of the weights file (cached per path, size and mtime)."""
    stat = path.stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime)


def check_weights(path: Path, allow_other: bool = False) -> Path:
    """``path`` if its sha256 is torch-fidelity's published one (or ``allow_other``), else one line."""
    digest = weights_sha256(path)
    if not digest.startswith(PUBLISHED_SHA256) and not allow_other:
        raise WrongWeightsError(
            f"{path} is not torch-fidelity's Inception weights (sha256 {digest[:16]}…, published "
            f"{PUBLISHED_SHA256}…); use {WEIGHTS_FILE} from {URL_INCEPTION_V3}, or set "
            "metrics.fid.allow_other_weights=true to use this file anyway (read as plain tensors)"
        )
    return path


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
