"""Image files on disk: which files are images, which of them decode, reading them as RGB."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS

from ganlab.errors import DataError


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` (recursive, sorted); other files are ignored."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)


def find_unreadable(paths: list[Path]) -> list[Path]:
    """Files that PIL cannot decode (checked at a reduced JPEG scale: fast, still catches truncation)."""
    bad = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.draft("RGB", (64, 64))
                image.load()
        except Exception:
            bad.append(path)
    return bad


def load_rgb(path: Path) -> Image.Image:
    """RGB PIL image; grayscale, palette and RGBA files are converted (horse2zebra has grayscale)."""
    with Image.open(path) as image:
        return image.convert("RGB")


def readable_images(folder: Path, name: str, at_least: int = 1) -> list[Path]:
    """The images of a folder given as ``name=<folder>``; a one-line error if it has too few or any
    unreadable one."""
    if not folder.is_dir():
        raise DataError(f"{name}={folder} is not a folder of images")
    paths = list_images(folder)
    if len(paths) < at_least:
        raise DataError(f"{name}={folder} holds {len(paths)} image(s); at least {at_least} needed")
    bad = find_unreadable(paths)
    if bad:
        raise DataError(
            f"unreadable image(s) in {folder}: {', '.join(p.name for p in bad[:10])}; remove them"
        )
    return paths
