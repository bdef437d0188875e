"""The weights files the metrics need, found in the torch hub cache or fetched there once, sha256
checked: torch-fidelity's Inception (FID, KID), torchvision's AlexNet (LPIPS) and VGG-16
(precision/recall). Nothing here imports torch, torchmetrics or torch-fidelity: ``train``'s preflight
finds them, or says they are missing, before those load."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from functools import cache
from pathlib import Path

from ganlab.errors import GanlabError
from ganlab.fetch import fetch_once

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


def hub_dir() -> Path:
    """torch.hub's folder (``torch.hub.get_dir()``): ``$TORCH_HOME/hub``, ``$TORCH_HOME`` defaulting
    to ``$XDG_CACHE_HOME/torch`` (``~/.cache/torch``); torch's own answer once torch is imported (a
    program may have moved it with ``torch.hub.set_dir``). A test holds the two to each other."""
    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir())
    return hub_dir_from_environment()


def hub_dir_from_environment() -> Path:
    """What ``torch.hub.get_dir()`` answers from the environment alone (no ``set_dir``)."""
    cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch")))) / "hub"


def hub_weights_path() -> Path:
    return hub_dir() / "checkpoints" / WEIGHTS_FILE


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
    path = hub_dir() / "checkpoints" / name
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


ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
ALEXNET_FILE = ALEXNET_URL.rsplit("/", 1)[-1]
ALEXNET_SHA256 = "7be5be79"  # torchvision's published prefix, as torch.hub names files


class MissingLpipsWeightsError(GanlabError):
    """AlexNet weights for LPIPS are neither on disk nor downloadable, or are not AlexNet's."""


def resolve_alexnet(weights_path: str | None, download: bool = True) -> Path:
    """``weights_path``, else ``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth``, fetched if absent."""
    return resolve_hub_file(
        weights_path, "metrics.lpips.weights_path", ALEXNET_URL, ALEXNET_FILE, ALEXNET_SHA256,
        MissingLpipsWeightsError,
        "set metrics.lpips.enabled=false", download,
    )  # fmt: skip


VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"  # torchvision IMAGENET1K_V1
VGG16_FILE = VGG16_URL.rsplit("/", 1)[-1]
VGG16_SHA256 = "397923af"  # torchvision's published prefix, as torch.hub names files


class MissingVggWeightsError(GanlabError):
    """VGG-16 weights for precision/recall are neither on disk nor downloadable, or are not VGG-16's."""


def resolve_vgg16(weights_path: str | None, download: bool = True) -> Path:
    return resolve_hub_file(
        weights_path, "metrics.vgg.weights_path", VGG16_URL, VGG16_FILE, VGG16_SHA256, MissingVggWeightsError,
        "set metrics.prc=false", download,
    )  # fmt: skip
