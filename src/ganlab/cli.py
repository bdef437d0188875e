"""Shared entry-point wrapper: user errors as one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from ganlab.errors import GanlabError


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def run_cli(entry: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` function; config and data errors print one line and exit 1.

    Hydra normally prints its own multi-line report; with ``HYDRA_FULL_ERROR`` set it lets
    exceptions through, so we can condense them. A user who set it gets full tracebacks.
    """
    user_wants_traces = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        entry()
    except (GanlabError, HydraException, OmegaConfBaseException) as e:
        if user_wants_traces:
            raise
        cause: BaseException = e
        while not isinstance(cause, GanlabError) and cause.__cause__ is not None:
            cause = cause.__cause__  # hydra.instantiate wraps errors raised in constructors
        print(f"error: {one_line(cause if isinstance(cause, GanlabError) else e)}", file=sys.stderr)
        sys.exit(1)
