"""Fetching one file over the network, for data sets, metric weights and the model zoo alike: a
neutral module (data/, metrics/ and official.py all reach it; it reaches none of them)."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ganlab.errors import GanlabError
from ganlab.files import commit

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


class _Failed(GanlabError):
    """A failed download inside ``fetch_once``: its text becomes the returned reason."""


def fetch_once(
    url: str, path: Path, verify: Callable[[Path], object] | None = None, max_bytes: int | None = None
) -> str | None:
    """Download ``url`` to ``path`` (the torch hub cache) through a per-process part file that takes
    the name only once complete and accepted by ``verify`` (whose one-line errors propagate); a
    server that sends more than ``max_bytes`` is cut off. Returns None on success, else why it
    failed, for the caller's one-line error."""
    part = path.with_name(f"{path.name}.part{os.getpid()}")
    try:
        download(url, part, max_bytes, _Failed)
        if verify is not None:
            verify(part)  # a wrong download never takes the name
        part.replace(path)
        return None
    except _Failed as e:
        return str(e)
    finally:
        part.unlink(missing_ok=True)


def download(
    url: str, dest: Path, max_bytes: int | None = None, error: type[GanlabError] = GanlabError
) -> None:
    """Download ``url`` to ``dest`` via a ``.part`` file renamed only when complete (fsync'ed); a
    server that sends more than ``max_bytes`` is cut off (the disk is not filled), one that stops
    early is caught by its Content-Length. A progress bar on a terminal.

    Not ``torch.hub.download_url_to_file``: it has the bar and the atomic rename, but neither a size
    cap nor a length check, so a hostile or broken server could fill the disk or leave a short file.
    The folders it makes for ``dest`` are removed again when it fails.
    """
    part = dest.with_name(dest.name + ".part")
    made = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]  # deepest first
    dest.parent.mkdir(parents=True, exist_ok=True)
    too_big = f"download of {url} is larger than {(max_bytes or 0) / 1e9:.3g} GB; refusing"
    try:
        with (
            network_timeout(),
            urllib.request.urlopen(url) as response,
            open(part, "wb") as out,
            _progress(url.rsplit("/", 1)[-1], response.length) as advance,
        ):
            expected = response.length
            if max_bytes is not None and expected is not None and expected > max_bytes:
                raise error(too_big)
            written = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                written += len(chunk)
                advance(len(chunk))
                if max_bytes is not None and written > max_bytes:
                    raise error(too_big)
        if expected is not None and written != expected:
            raise error(f"download of {url} stopped after {written} of {expected} bytes; run again")
        commit(part, dest)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        raise error(f"download of {url} failed ({' '.join(str(e).split())})") from None
    finally:
        part.unlink(missing_ok=True)
        if not dest.exists():  # a failed download leaves no folder it made (paths.data_dir=<typo>)
            for folder in made:
                try:
                    folder.rmdir()
                except OSError:  # not empty: something else is in it now
                    break


@contextlib.contextmanager
def _progress(name: str, total: int | None) -> Iterator[Callable[[int], object]]:
    """A Rich download bar on stderr when it is a terminal; a no-op in logs and pipes."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress("{task.description}", *columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(name, total=total)
        yield lambda n: bar.advance(task, n)
