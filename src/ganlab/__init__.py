"""ganlab: GAN experiments on Lightning + Hydra."""

import sys
from pathlib import Path


def _is_ganlab_command() -> bool:
    """This process is a ganlab command (``python -m ganlab.<tool>`` or ``ganlab-<tool>``), not a
    program that imported ganlab as a library."""
    first = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return first.name.startswith("ganlab-") or (first.parent.name == "ganlab" and first.suffix == ".py")


def _excepthook(previous):  # type: ignore[no-untyped-def]
    def hook(kind, value, traceback):  # type: ignore[no-untyped-def]
        if issubclass(kind, KeyboardInterrupt) and _is_ganlab_command():
            # Ctrl-C while the command starts (imports, config): nothing ran, nothing to show
            print("error: interrupted (Ctrl-C) while starting; nothing was run", file=sys.stderr)
            return
        previous(kind, value, traceback)

    return hook


sys.excepthook = _excepthook(sys.excepthook)
