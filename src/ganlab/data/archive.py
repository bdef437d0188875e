"""Downloads and archive extraction that never delete, replace or escape anything of the user's.

``safe_extract`` writes one expected top-level folder of an archive, and only when nothing by that
name exists yet: members are written by our own code into a fresh staging folder (plain files
0644 and folders 0755, owned by whoever runs ganlab: setuid/setgid bits and the archive's owners
are dropped), counted against a size cap while they are written, and the folder is moved into
place only when complete. Other top-level names of the archive are ignored; links, devices and
members that would land outside the staging folder are refused.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from ganlab.errors import DataError

DEFAULT_MAX_EXTRACT_GB = 20.0  # larger than any official CycleGAN or CIFAR archive unpacked
CHUNK = 1 << 20


def refuse_existing(dest: Path, option: str = "paths.data_dir") -> None:
    """One line when ``dest`` exists: ganlab never replaces a folder it is about to create."""
    if dest.exists() or dest.is_symlink():
        raise DataError(
            f"{dest} already exists but is not a complete download; ganlab will not replace it: "
            f"move it away (or complete it by hand) or point {option} elsewhere"
        )


def _member_parts(name: str, archive: Path) -> tuple[str, ...]:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith("\\"):
        raise DataError(f"archive member {name!r} of {archive} would be written outside its folder; refusing")
    return tuple(p for p in path.parts if p not in ("", "."))


Member = tuple[str, bool, int, Callable[[], IO[bytes]]]  # name, is_dir, declared size, opener


def _members(archive: Path) -> Iterator[Member]:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                yield info.filename, info.is_dir(), info.file_size, lambda info=info: zf.open(info)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for m in tf:
                if not (m.isfile() or m.isdir()) or m.issparse():
                    raise DataError(f"archive {archive} holds a link or device ({m.name!r}); refusing")
                yield m.name, m.isdir(), m.size, lambda m=m: tf.extractfile(m)  # type: ignore[misc]
    else:
        raise DataError(f"{archive} is not a valid zip or tar archive; delete it and download again")


def _copy_capped(src: IO[bytes], dest: Path, budget: int) -> int:
    """Copy at most ``budget`` bytes; returns the bytes written (a bomb stops at the cap)."""
    written = 0
    with open(dest, "xb") as out:
        while chunk := src.read(min(CHUNK, budget - written + 1)):
            written += len(chunk)
            if written > budget:
                return written
            out.write(chunk)
    os.chmod(dest, 0o644)
    return written


def safe_extract(archive: Path, target: Path, keep: str, max_bytes: int) -> Path:
    """Extract the top-level folder ``keep`` of a .zip or .tar(.gz) into ``target/keep``.

    Refuses (one line, nothing written) when ``target/keep`` exists, when a member escapes, is a
    link or device, or when the folder's contents exceed ``max_bytes``.
    """
    dest = target / keep
    refuse_existing(dest)
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=target))
    limit = f"{max_bytes / 1e9:.3g} GB"
    try:
        budget = max_bytes
        for name, is_dir, size, opener in _members(archive):
            parts = _member_parts(name, archive)
            if not parts or parts[0] != keep:
                continue  # another top-level name: not ours to write
            if size > budget:
                raise DataError(f"{archive} unpacks to more than {limit} (data.max_extract_gb); refusing")
            out = staging.joinpath(*parts)
            if is_dir:
                out.mkdir(mode=0o755, parents=True, exist_ok=True)
                continue
            out.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            with opener() as src:
                written = _copy_capped(src, out, budget)
            if written > budget:
                raise DataError(f"{archive} unpacks to more than {limit} (data.max_extract_gb); refusing")
            budget -= written
        if not (staging / keep).is_dir():
            raise DataError(f"{archive} has no top-level {keep}/ folder; it is not the expected data set")
        (staging / keep).rename(dest)
        return dest
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise DataError(
            f"{archive} is damaged ({' '.join(str(e).split())}); delete it and download again"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # ours: made by mkdtemp above


def gunzip_atomic(packed: Path, dest: Path, max_bytes: int) -> None:
    """Unpack ``packed`` (.gz) to ``dest`` via a temporary name: a kill never leaves a partial file."""
    part = dest.with_name(f".{dest.name}.part{os.getpid()}")
    part.unlink(missing_ok=True)
    try:
        with gzip.open(packed) as src:
            written = _copy_capped(src, part, max_bytes)
        if written > max_bytes:
            raise DataError(f"{packed} unpacks to more than {max_bytes / 1e9:.3g} GB; refusing")
        part.replace(dest)
    except (OSError, EOFError) as e:
        raise DataError(
            f"{packed} is damaged ({' '.join(str(e).split())}); delete it and run again"
        ) from None
    finally:
        part.unlink(missing_ok=True)
