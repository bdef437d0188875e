"""Messages said once per job, not once per process: Lightning's rank-zero helpers inside a run
(where Lightning knows the rank), the plain forms in a tool (one process, never Lightning)."""

from __future__ import annotations

import logging
import sys
import warnings

log = logging.getLogger("ganlab")


def rank_zero_info(message: str) -> None:
    if "lightning.pytorch" in sys.modules:  # a training job: only global rank 0 says it
        sys.modules["lightning.pytorch"].utilities.rank_zero_info(message)
    else:
        log.info(message)


def rank_zero_warn(message: str) -> None:
    if "lightning.pytorch" in sys.modules:
        sys.modules["lightning.pytorch"].utilities.rank_zero_warn(message, stacklevel=3)
    else:
        warnings.warn(message, stacklevel=3)
