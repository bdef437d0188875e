"""Downloads and archive extraction that cannot write outside their target folder."""

from __future__ import annotations

import shutil
import socket
import tarfile
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from ganlab.errors import DataError

DOWNLOAD_TIMEOUT_S = 60


@contextmanager
def network_timeout(seconds: float = DOWNLOAD_TIMEOUT_S):
    """A socket timeout for libraries (torchvision) that open URLs without one."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _check_member(name: str, target: Path) -> Path:
    dest = (target / name).resolve()
    if not dest.is_relative_to(target.resolve()):
        raise DataError(f"archive member {name!r} would be written outside {target}; refusing to extract")
    return dest


def safe_extract(archive: Path, target: Path) -> None:
    """Extract a .zip or .tar(.gz) into ``target``; refuse members that escape it, links, devices.

    Extraction goes to a temporary sibling folder first and is moved into place only when every
    member was written, so a failure never leaves a half-extracted tree that looks complete.
    """
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=target))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_member(info.filename, staging)
                zf.extractall(staging)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _check_member(member.name, staging)
                    if not (member.isfile() or member.isdir()):
                        raise DataError(
                            f"archive {archive} holds a link or device ({member.name!r}); refusing"
                        )
                tf.extractall(staging)  # members checked above
        else:
            raise DataError(f"{archive} is not a valid zip or tar archive; delete it and download again")
        for entry in staging.iterdir():
            dest = target / entry.name
            if dest.exists():
                shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
            entry.rename(dest)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{archive} is damaged ({e}); delete it and download again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
