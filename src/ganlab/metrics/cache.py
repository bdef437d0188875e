"""On-disk cache of real-data Inception statistics, shared by every run and sweep job."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganlab.files import check_real_bytes, load_failure, save_torch
from ganlab.ranks import rank_zero_info, rank_zero_warn

STATE_KEYS = ("sum", "cov_sum", "count", "features")


def cache_key(meta: dict[str, Any]) -> str:
    """Dataset, split, transform, image count, weights hash and feature size → a file name."""
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:24]


def _digest(state: dict[str, Tensor]) -> str:
    digest = hashlib.sha256()
    for key in STATE_KEYS:
        digest.update(state[key].contiguous().numpy().tobytes())
    return digest.hexdigest()


class RealStatsCache:
    """``<cache_dir>/fid-real/<key>.pt``: FID sums and KID features of the real images.

    Files carry their metadata and a sha256 of the tensors; an unreadable or altered file is
    reported, deleted and recomputed. Writes are atomic (a temporary file renamed), so jobs of a
    sweep that compute the same statistics at once never read a half-written file.
    """

    def __init__(self, cache_dir: str | Path) -> None:
        self.folder = Path(cache_dir).expanduser() / "fid-real"

    def path(self, meta: dict[str, Any]) -> Path:
        return self.folder / f"{cache_key(meta)}.pt"

    @contextlib.contextmanager
    def claim(self, meta: dict[str, Any]) -> Iterator[None]:
        """Held while one job looks the statistics up and, on a miss, computes and saves them: the
        jobs of a sweep that need the same statistics at once (on any node that shares the folder)
        wait for the first and read its file, so they are computed once. An exclusive ``flock`` on
        ``<key>.lock``, which the kernel releases if the job dies; a folder that cannot hold the lock
        (read-only) only loses the sharing, never the run."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = open(self.folder / f"{cache_key(meta)}.lock", "a")  # noqa: SIM115 (held below)
        except OSError:
            yield
            return
        with handle:
            with contextlib.suppress(OSError):  # a file system without locks: each job computes
                fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def load(self, meta: dict[str, Any]) -> dict[str, Tensor] | None:
        path = self.path(meta)
        if not path.is_file():
            return None
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # in ganlab's words: torch's own advises weights_only=False
            reason = load_failure(e)
        else:
            reason = _mismatch(saved, meta)
        if reason is not None:
            rank_zero_warn(f"FID cache file {path} {reason}; recomputing the real statistics")
            path.unlink(missing_ok=True)
            return None
        state = {k: saved["state"][k] for k in STATE_KEYS}
        rank_zero_info(f"FID: real statistics from the cache {path} ({int(state['count'])} images)")
        return state

    def save(self, meta: dict[str, Any], state: dict[str, Tensor]) -> Path:
        path = self.path(meta)
        return save_torch({"meta": meta, "state": state, "sha256": _digest(state)}, path, unique=True)


def _mismatch(saved: Any, meta: dict[str, Any]) -> str | None:
    """Why a loaded cache file is not the statistics for ``meta``; None when it is."""
    try:
        check_real_bytes(saved, "it", ValueError)  # type: ignore[arg-type]
        state = {k: saved["state"][k] for k in STATE_KEYS}
        if saved["meta"] != meta or saved["sha256"] != _digest(state):
            return "does not match its checksum or key"
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as e:
        return f"is damaged ({' '.join(str(e).split())[:160]})"
    return None
