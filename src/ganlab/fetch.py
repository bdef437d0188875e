"""Fetching one file over the network, for data sets, metric weights and the model zoo alike: a
neutral module (data/, metrics/ and official.py all reach it; it reaches none of them)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch

from ganlab.errors import GanlabError

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


def fetch_once(url: str, path: Path, verify: Callable[[Path], object] | None = None) -> str | None:
    """Download ``url`` to ``path`` (the torch hub cache) through a per-process part file that takes
    the name only once complete and accepted by ``verify`` (whose one-line errors propagate).
    Returns None on success, else why it failed, for the caller's one-line error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f"{path.name}.part{os.getpid()}")
    try:
        with network_timeout(60):
            torch.hub.download_url_to_file(url, str(part), progress=False)
        if verify is not None:
            verify(part)  # a wrong download never takes the name
        part.replace(path)
        return None
    except GanlabError:
        raise
    except Exception as e:
        return f"the download failed: {' '.join(str(e).split())[:200]}"
    finally:
        part.unlink(missing_ok=True)
