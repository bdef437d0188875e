"""The weights files the metrics of a run need, found (or fetched) before it trains: Inception for
FID/KID, AlexNet for LPIPS on paired data, VGG-16 for precision/recall. Imports neither Lightning nor
torchmetrics nor torch-fidelity: ``train``'s preflight calls it before them, the FID callback again."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganlab.errors import GanlabError, raise_all
from ganlab.metrics.hub import MissingWeightsError, resolve_alexnet, resolve_vgg16, resolve_weights


def find_weights(
    fid: Mapping[str, Any], lpips: Mapping[str, Any], vgg: Mapping[str, Any], prc: bool, paired: bool
) -> tuple[Path, Path | None, Path | None]:
    """(Inception, AlexNet or None, VGG-16 or None) for the ``metrics.fid``, ``metrics.lpips`` and
    ``metrics.vgg`` settings; every one that is missing named in one line, so an offline first run
    fails once, not once per missing file."""
    found: list[Path | None] = [None, None, None]
    errors = []
    try:
        found[0] = resolve_weights(fid.get("weights_path"), allow_other=bool(fid.get("allow_other_weights")))
    except GanlabError as e:
        errors.append(e)
    if paired and lpips.get("enabled", True):
        try:
            found[1] = resolve_alexnet(lpips.get("weights_path"))
        except GanlabError as e:
            errors.append(e)
    if prc:  # VGG-16 for precision/recall
        try:
            found[2] = resolve_vgg16(vgg.get("weights_path"))
        except GanlabError as e:
            errors.append(e)
    raise_all(errors, MissingWeightsError)
    return found[0], found[1], found[2]  # type: ignore[return-value]
