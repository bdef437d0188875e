"""Errors that are the user's to fix: one line and a non-zero exit, never a traceback."""


class GanlabError(Exception):
    """Base class; the message says what is wrong, where, and what to do."""


class DataError(GanlabError):
    """Missing, unreadable or corrupt data, or a failed download."""


class CheckpointError(GanlabError):
    """A checkpoint that is missing or does not fit the configured model."""


class ConfigError(GanlabError):
    """A config value that composes but makes no sense."""


class Interrupted(GanlabError):
    """The run was told to stop (SIGTERM, Ctrl-C) and saved its state at the last finished iteration."""

    exit_code = 1  # set to 128 + the signal number by train.py, as a shell reports a signal
    requeue = None  # SIGUSR2 in a SLURM job: submitit's handler, called once the state is saved


class PeerLost(GanlabError):
    """Another rank of a multi-process (DDP) job stopped mid-training: its process or its node."""


class NonFiniteLossError(GanlabError):
    """A loss became NaN or infinite; training stopped before saving the bad state."""


def raise_all(problems: list[GanlabError], combined: type[GanlabError]) -> None:
    """Nothing when there are no problems; the one problem; or every one in one ``combined`` line
    (a preflight names all that is missing at once)."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise combined(" — and — ".join(str(p) for p in problems))


class DiskError(GanlabError):
    """A file could not be written: no space, a file-size limit, a read-only or forbidden folder."""
