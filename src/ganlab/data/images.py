"""Image files on disk: which files are images, which of them decode, reading them as RGB.

Every PIL mode an image file can have is either converted correctly or refused by name: 16-bit
grayscale (``I;16*``, and ``I`` as Pillow reads 16-bit PNGs) is scaled to 8 bits — PIL's own
``convert`` clips it to 255, an all-white picture — and modes with no faithful RGB conversion
(float, LAB, HSV) are refused. Images above Pillow's decompression-bomb limit are refused with
the limit and how to raise it (``GANLAB_MAX_IMAGE_PIXELS``), never reported as "unreadable".
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ganlab.errors import DataError

# torchvision's ImageFolder extensions (torchvision.datasets.folder.IMG_EXTENSIONS, a test checks they
# agree), written out: importing torchvision costs the tools a second and a half
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
MAX_PIXELS_ENV = "GANLAB_MAX_IMAGE_PIXELS"
PILLOW_LIMIT = 2 * 89_478_485  # Pillow refuses images above twice its MAX_IMAGE_PIXELS
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # "I": how Pillow reads some 16-bit files
RGB_CONVERTIBLE = ("1", "L", "P", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LA", "PA")
ORIENTATION = 0x0112  # the EXIF tag of how the camera was held (1: upright)


def max_image_pixels() -> int:
    """The largest image (width × height) ganlab decodes: Pillow's limit unless raised by env."""
    value = os.environ.get(MAX_PIXELS_ENV)
    if not value:
        return PILLOW_LIMIT
    try:
        return int(value.replace("_", ""))
    except ValueError:
        raise DataError(f"{MAX_PIXELS_ENV}={value} is not a number of pixels, e.g. 400000000") from None


def open_image(path: Path) -> Image.Image:
    """``Image.open`` with the decompression-bomb limit as a one-line error saying how to raise it."""
    limit = max_image_pixels()
    Image.MAX_IMAGE_PIXELS = max(1, limit // 2)  # Pillow refuses above twice this, warns above it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError as e:
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(found.group(1)):,} pixels" if found else "more pixels"
        raise DataError(
            f"{path} has {size}, above the decompression-bomb limit of {limit:,}; if you trust the "
            f"file, raise it with {MAX_PIXELS_ENV}=<pixels> (or downscale the image)"
        ) from None


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` (recursive, sorted); other files are ignored."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)


def _check_mode(image: Image.Image, path: Path) -> None:
    if image.mode not in RGB_CONVERTIBLE + SIXTEEN_BIT:
        raise DataError(
            f"{path} has pixel mode {image.mode}, which ganlab cannot turn into RGB faithfully; "
            "save it as 8-bit RGB or grayscale"
        )


def find_unreadable(paths: list[Path]) -> list[Path]:
    """Files that PIL cannot decode (checked at a reduced JPEG scale: fast, still catches truncation).

    Images above the decompression-bomb limit or in an unsupported pixel mode are not "unreadable":
    they raise a ``DataError`` naming the file and the fix.
    """
    bad = []
    for path in paths:
        try:
            with open_image(path) as image:
                _check_mode(image, path)
                image.draft("RGB", (64, 64))
                image.load()
        except DataError:
            raise
        except Exception:
            bad.append(path)
    return bad


def fingerprint(root: Path, paths: list[Path], transform: str) -> str:
    """Relative paths, sizes, modification times and preprocessing → 16 hex digits. Adding,
    removing or replacing a file changes it (the FID cache key of a folder)."""
    digest = hashlib.sha256(transform.encode())
    for p in paths:
        stat = p.stat()
        digest.update(f"\0{p.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def usable_images(folder: Path, skip_corrupt: bool) -> list[Path]:
    """The images below ``folder``; unreadable ones stop the run in one line naming them, or are
    skipped with one warning listing them (``data.skip_corrupt=true``)."""
    paths = list_images(folder)
    bad = find_unreadable(paths)
    if bad and not skip_corrupt:
        raise DataError(
            f"{len(bad)} unreadable image(s) in {folder}: {', '.join(p.name for p in bad[:10])}"
            f"{' ...' if len(bad) > 10 else ''}; delete them or set data.skip_corrupt=true"
        )
    if bad:
        warnings.warn(
            f"skipping {len(bad)} unreadable image(s) in {folder}: {', '.join(p.name for p in bad)}",
            stacklevel=3,
        )
        paths = [p for p in paths if p not in set(bad)]
    return paths


def to_rgb(image: Image.Image, path: Path | str = "image") -> Image.Image:
    """An RGB copy of ``image``: 16-bit gray scaled to 8 bits (v·255/65535, rounded), others by PIL."""
    _check_mode(image, Path(path))
    if image.mode in SIXTEEN_BIT:
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise DataError(
                f"{path} is a 32-bit integer image (values {values.min()}..{values.max()}); "
                "save it as 8- or 16-bit"
            )
        gray = ((values * 255 + 32767) // 65535).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    return image.convert("RGB")


def upright(image: Image.Image) -> Image.Image:
    """``image`` as it is meant to be seen: a camera's EXIF orientation (a phone photo taken
    sideways) applied, as every image viewer does; unchanged when there is none."""
    if image.getexif().get(ORIENTATION, 1) in (1, None):
        return image
    return ImageOps.exif_transpose(image)


def load_rgb(path: Path) -> Image.Image:
    """RGB PIL image, upright (EXIF orientation applied); grayscale (8 or 16 bit), palette, RGBA
    and CMYK files are converted."""
    with open_image(path) as image:
        return to_rgb(upright(image), path)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height), read from the header only; a JPEG's as displayed (EXIF orientation applied:
    its EXIF is in the header, a PNG's may follow the pixels)."""
    with open_image(path) as image:
        width, height = image.size
        turned = image.format == "JPEG" and image.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8)
        return (height, width) if turned else (width, height)


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
