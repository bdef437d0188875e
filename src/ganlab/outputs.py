"""Where the tools write: never over their own input, never over an existing file unasked, and
every file whole or not at all (an image is encoded in memory, then written through a fsync'ed
temporary renamed over the target: a full disk leaves the old file as it was)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image

from ganlab.errors import ConfigError
from ganlab.files import replacing


def check_apart(source: Path, output: Path, overwrite: bool, source_option: str = "input") -> None:
    """Refuse ``output`` equal to, inside, or around ``source`` (unless ``overwrite``)."""
    if overwrite:
        return
    src, out = source.resolve(), output.resolve()
    if out == src or out.is_relative_to(src) or src.is_relative_to(out):
        raise ConfigError(
            f"output={output} is {'the same as' if out == src else 'inside or around'} "
            f"{source_option}={source}: the results would mix with (or replace) the originals; "
            "choose a separate output folder, or set overwrite=true"
        )


def check_new_files(paths: Iterable[Path], overwrite: bool) -> None:
    """Refuse when any of ``paths`` already exists (unless ``overwrite``): one line, nothing written."""
    if overwrite:
        return
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if existing:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise ConfigError(
            f"{existing[0]}{more} already exist(s); choose another output, remove them, "
            "or set overwrite=true to replace them"
        )


def image_format(path: Path) -> str:
    """PIL's format name for ``path``'s suffix (``.jpg`` → JPEG); one line for a suffix it cannot write."""
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ConfigError(
            f"{path}: cannot write images of type {path.suffix or '(no suffix)'}; use .png or .jpg"
        )
    return fmt


def write_image(picture: Image.Image, path: Path, **params: Any) -> Path:
    """``picture`` as the file ``path`` (format from its suffix), complete or not at all: encoded in
    memory first, then written beside the target, fsync'ed and renamed over it. A failed write
    (full disk, file-size limit, read-only folder) is a DiskError naming ``path``; an existing file
    there is untouched."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a file name for the image, or another output")
    buffer = io.BytesIO()
    picture.save(buffer, format=image_format(path), **params)
    with replacing(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())
    return path
