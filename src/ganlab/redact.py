"""Credentials never leave the process: a URL's ``user:password@`` and secret query values (tokens,
signatures) are masked wherever a config or a message is written or printed — checkpoints (what
people share and W&B uploads), ``hparams.yaml``, ``result.json``, Hydra's ``.hydra/`` files, the
W&B run's config and command line, the printed config and every error line. The run itself still
uses the real URL (``data.mirrors=[https://user:token@host/...]`` downloads as given)."""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MASK = "***"
# scheme://user[:password]@host — the userinfo of any URL, wherever it appears in a string
USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")
# ?token=…, &X-Amz-Signature=…: query values that are credentials by name
SECRET_QUERY = re.compile(
    r"(?P<key>[?&](?:[A-Za-z0-9_-]*(?:token|secret|password|passwd|apikey|api_key|signature|sig|"
    r"credential|auth)[A-Za-z0-9_-]*|key)=)[^&#\s'\"]+",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it masked."""
    if "://" not in text and "=" not in text:
        return text
    text = USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    return SECRET_QUERY.sub(lambda m: f"{m.group('key')}{MASK}", text)


def redact(obj: Any) -> Any:
    """A copy of plain data (dicts, lists, tuples, strings) with every string redacted; other
    values (numbers, tensors) as they are."""
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        return {k: redact(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(redact(v) for v in obj)
    return obj


HYDRA_FILES = ("config.yaml", "overrides.yaml", "hydra.yaml")


def redact_files(folder: Path, names: tuple[str, ...] = HYDRA_FILES) -> None:
    """Rewrite the files Hydra wrote (``.hydra/``, a sweep's ``multirun.yaml``) with credentials
    masked; untouched when there are none. Safe for sweep jobs doing it at once (own temporaries)."""
    from ganlab.files import replacing

    for name in names:
        path = folder / name
        try:
            text = path.read_text()
        except OSError:
            continue
        masked = redact_text(text)
        if masked != text:
            with replacing(path, unique=True) as tmp:
                tmp.write_text(masked)


@contextlib.contextmanager
def redacted_argv() -> Iterator[None]:
    """``sys.argv`` with credentials masked while a library records it (``wandb.init`` stores the
    command line in the run's metadata); restored after, for DDP ranks and requeues that re-run it."""
    saved = sys.argv[:]
    sys.argv[:] = [redact_text(a) for a in saved]
    try:
        yield
    finally:
        sys.argv[:] = saved


def redact_logging() -> None:
    """Every log record from here on is redacted (Hydra's launchers log each job's overrides, and
    train.log keeps what the console shows): one record factory, installed once."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "ganlab_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's to report, as it would be without us
            return record
        masked = redact_text(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return record

    factory.ganlab_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
