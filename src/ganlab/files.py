"""Writing files so that a failed write loses nothing: a temporary beside the target, fsync, then
``os.replace`` (atomic on POSIX); the temporary is removed on any failure, and a full disk, a
file-size limit or a read-only folder is one line naming the path and what to do."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganlab.errors import CheckpointError, ConfigError, DiskError, GanlabError

if TYPE_CHECKING:
    import torch

ADVICE = {
    errno.ENOSPC: "the disk is full: free space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free space or write elsewhere",
    errno.EFBIG: "the file is over this process's file-size limit: raise it (ulimit -f) or write elsewhere",
    errno.EROFS: "the file system is read-only: choose a writable folder",
    errno.EACCES: "no permission to write there: choose a folder you can write",
    errno.EPERM: "no permission to write there: choose a folder you can write",
}


def is_disk_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in ADVICE


def disk_error(error: OSError, path: str | Path | None = None) -> DiskError:
    """The one-line form of a failed write (the run's folders are set by paths.output_dir and
    hydra.run.dir / hydra.sweep.dir)."""
    where = path or error.filename or "a file"
    return DiskError(f"cannot write {where}: {error.strerror or error}; {ADVICE[error.errno]}")


def load_failure(error: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words. torch's own text
    advises retrying with ``weights_only=False``: never the advice for a file (files are data)."""
    text = " ".join(str(error).split())
    found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", text)
    if found:  # torch names the global two ways: an unknown one, or one whose module it blocks
        name = found.group(1)
        return f"holds a Python object ({name}), not plain data; refusing to unpickle it (nothing was run)"
    if "central directory" in text or "zip archive" in text:
        return "is truncated or damaged (not a complete torch zip archive)"
    if "mmap can only be used" in text:  # a memory-mapped read of something that is not a torch zip
        return "is not a torch file of plain data, or is damaged (not a torch zip archive)"
    unpickler = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
    if unpickler or "Weights only load failed" in text:
        reason = unpickler.group(1).strip() if unpickler else "not plain data"
        return f"is not a torch file of plain data, or is damaged ({reason})"
    return f"cannot be read ({text[:200]})"


# what the tensors of a file may claim beyond their real bytes: tied weights (two names, one
# storage) are legitimate, a thousand names for one storage are not
SHARED_CLAIM_FACTOR = 2
SHARED_CLAIM_SLACK = 1 << 20


def tensors_in(obj: Any, depth: int = 0) -> Iterator[torch.Tensor]:
    """Every tensor in a loaded file's plain containers (dicts, lists, tuples)."""
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif depth < 64 and isinstance(obj, dict):
        for value in obj.values():
            yield from tensors_in(value, depth + 1)
    elif depth < 64 and isinstance(obj, list | tuple):
        for value in obj:
            yield from tensors_in(value, depth + 1)


def check_real_bytes(obj: Any, where: str, error: type[GanlabError] = CheckpointError) -> None:
    """Refuse, in one line, a file whose tensors claim more memory than the bytes it really holds.

    ``torch.save`` keeps views as views: a 6 KB file of ``torch.zeros(1).expand(2048, 2048, 3, 3)``
    loads as tensors whose shapes look right but whose storage is 4 bytes, and a network built to fit
    them would then allocate gigabytes. Each tensor must be backed by as many bytes as its elements
    (no stride-0 or overlapping views), and all of them together by at most twice the file's
    distinct storage (tied weights), before anything is allocated from their shapes.
    """
    claimed, storages = 0, {}
    for tensor in tensors_in(obj):
        storage = tensor.untyped_storage()
        size = tensor.numel() * tensor.element_size()
        backing = storage.nbytes() - tensor.storage_offset() * tensor.element_size()
        if size > backing:
            raise error(
                f"{where} holds a tensor of shape {tuple(tensor.shape)} backed by {max(backing, 0):,} bytes "
                f"instead of {size:,} (a stride-0 or overlapping view); not a real weights file, refusing it"
            )
        claimed += size
        storages[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
    real = sum(storages.values())
    if claimed > SHARED_CLAIM_FACTOR * real + SHARED_CLAIM_SLACK:
        raise error(
            f"{where} names {claimed:,} bytes of tensors over {real:,} bytes of storage (one storage under "
            "many names); not a real weights file, refusing it"
        )


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: Path, path: Path) -> None:
    """Make a fully written ``tmp`` the file ``path``: on disk first (fsync), then renamed over it,
    then the folder entry on disk too. A crash at any point leaves the old file or the new one."""
    fsync(tmp)
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # not every file system lets a folder be fsync'ed
        fsync(path.parent)


@contextlib.contextmanager
def replacing(path: str | Path, unique: bool = False, publish: bool = True) -> Iterator[Path]:
    """``with replacing(p) as tmp: write(tmp)``: ``p`` is replaced only by a complete file.

    ``unique``: a temporary name per process (writers that may race, as sweep jobs sharing a cache).
    ``publish=False``: this process only takes part (a DDP rank that is not rank 0 writes nothing).
    """
    path = Path(path)
    if path.is_dir():  # os.replace cannot put a file over a folder: say so before writing anything
        raise ConfigError(f"{path} is a folder; give a file name for this output, or choose another output")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp" if unique else f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if publish:
            commit(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if is_disk_error(e):
            raise disk_error(e, path) from e
        raise


def save_torch(obj: Any, path: str | Path, unique: bool = False) -> Path:
    """``torch.save`` whole or not at all. Serialised in memory first: torch's file writer reports a
    full disk as a RuntimeError without an errno, Python's file write as the OSError it is."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with replacing(path, unique=unique) as tmp:
        tmp.write_bytes(buffer.getbuffer())
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    with replacing(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=1))


@contextlib.contextmanager
def plain_copy(path: Path, name: str, error: type[GanlabError], network: str, advice: str) -> Iterator[Path]:
    """``path`` read as tensors only and written again as a temporary file ``name``, for a library
    that reads weights with ``torch.load(weights_only=False)`` (torch-fidelity): it only ever sees a
    file ganlab wrote from plain tensors. Each failure is one ``error`` line ending in ``advice``;
    a RuntimeError while the copy is in use (wrong keys or shapes) says it does not fit ``network``."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise error(f"{path} {load_failure(e)}; {advice}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise error(f"{path} is not a state dict of tensors; {advice}")
    check_real_bytes(state, str(path), error)
    with tempfile.TemporaryDirectory(prefix="ganlab-weights-") as tmp:
        clean = Path(tmp) / name
        torch.save(state, clean)
        del state
        try:
            yield clean
        except RuntimeError as e:
            raise error(
                f"{path} does not fit {network} ({' '.join(str(e).split())[:120]}…); {advice}"
            ) from None
