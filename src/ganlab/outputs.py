"""Where the tools write: never over their own input, never over an existing file unasked."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ganlab.errors import ConfigError


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
