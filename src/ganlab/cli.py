"""Shared entry-point wrapper: user errors as one line on stderr and a non-zero exit."""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import ganlab.resolvers  # noqa: F401  (registers ${ganlab.env:…} and the others)
from ganlab.errors import ConfigError, GanlabError
from ganlab.files import disk_error, is_disk_error
from ganlab.redact import redact_logging, redact_text

if TYPE_CHECKING:
    import torch


def pick_device(name: str) -> torch.device:
    """``device=auto|cpu|cuda|cuda:N`` of the command-line tools."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def one_line(error: BaseException) -> str:
    text = str(error).split("Config search path:")[0]  # Hydra appends its search path: noise here
    return " ".join(text.split())


def report(error: BaseException) -> None:
    """Print a user error as one line on stderr."""
    print(f"error: {redact_text(one_line(error))}", file=sys.stderr)


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()  # Lightning's advert; its note that our summary replaced its own;
        # its stop reason, which names max_epochs when max_iters or a signal stopped the run (train
        # prints the true one)
        return (
            "litlogger" not in message
            and "Skipping setting a default `ModelSummary`" not in message
            and not (message.startswith("`Trainer.fit` stopped:") and "No training batches" not in message)
        )


def quiet_third_party() -> None:
    """Hide library chatter that says nothing about the run (adverts, deprecations of internals)."""
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropAdverts) for f in rank_zero.filters):  # called by run_cli and each job
        rank_zero.addFilter(_DropAdverts())
    warnings.filterwarnings("ignore", message=".*set_vital.* is deprecated")
    warnings.filterwarnings("ignore", message="Metric `Kernel Inception Distance` will save all")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)")
    # said once in ganlab's words at the start of training (StopSignal.on_train_start)
    warnings.filterwarnings("ignore", message="The number of training batches .* is smaller than the logging")
    # a SLURM login node: ganlab reaches SLURM through hydra/launcher=slurm, never a bare srun
    warnings.filterwarnings(
        "ignore", message="The `srun` command is available on your system but is not used"
    )
    warnings.filterwarnings("ignore", message="Precision .* is not supported by the model summary")


def user_error(error: BaseException) -> BaseException | None:
    """The user-facing error behind ``error`` (hydra.instantiate wraps constructors' errors)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, GanlabError):
            return cause
        cause = cause.__cause__
    cause = error
    while cause is not None:  # a failed write anywhere (a logger's file, Hydra's run dir): one line too
        if is_disk_error(cause):
            return disk_error(cause)  # type: ignore[arg-type]
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, OmegaConfBaseException) and str(error).startswith(RESOLVER_ERROR):
        return ConfigError(str(error)[len(RESOLVER_ERROR) :].split("\n")[0])  # a resolver's own line
    if isinstance(error, ValueError) and _raised_by_hydras_flags(error):  # e.g. -m with --cfg
        return ConfigError(f"{error}; run them as separate commands")
    return error if isinstance(error, HydraException | OmegaConfBaseException) else None


def _raised_by_hydras_flags(error: BaseException) -> bool:
    """Hydra's own command-line check (``_run_hydra``: flags that exclude each other) raised it."""
    last = None
    for frame, _ in traceback.walk_tb(error.__traceback__):
        last = frame
    return last is not None and last.f_code.co_name == "_run_hydra"


RESOLVER_ERROR = "ConfigError raised while resolving interpolation: "


_traces = {"wanted": False}  # HYDRA_FULL_ERROR=1 as the user set it, before run_cli sets it for itself


def one_line_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Inside ``@hydra.main``: a user error prints one line and exits 1 before Hydra adds its
    own "Error executing job with overrides" report."""

    @functools.wraps(fn)
    def wrapper(cfg: DictConfig, *args: Any, **kwargs: Any) -> Any:
        try:
            from hydra.core.hydra_config import HydraConfig

            from ganlab.plugins import load_plugins
            from ganlab.validate import validate_tool  # every option's type and range, first

            load_plugins(cfg.get("plugins"))  # the user's code (installed, or plugins=[...]), never a file's
            validate_tool(cfg, Path(config_dir()) / f"{HydraConfig.get().job.config_name}.yaml")
            return fn(cfg, *args, **kwargs)
        except Exception as e:
            error = user_error(e)
            if error is None or _traces["wanted"]:
                raise
            report(error)
            sys.exit(getattr(error, "exit_code", 1))

    return wrapper


def config_dir() -> str:
    """The configs: ``ganlab/conf`` inside an installed wheel, else the checkout's top-level ``conf/``."""
    here = Path(__file__).resolve().parent
    packaged, checkout = here / "conf", here.parents[1] / "conf"
    return str(packaged if (packaged / "train.yaml").is_file() else checkout)


def answer_help(tool: str, doc: str | None, module: str) -> None:
    """``ganlab-<tool> --help``, answered at the top of the tool's module, before it imports torch
    (a second instead of five); only when the module runs as the command, never on an import."""
    command = module == "__main__" or Path(sys.argv[0]).name == f"ganlab-{tool}"
    if command and any(arg in ("--help", "-h") for arg in sys.argv[1:]):
        print(tool_help(tool, doc))
        sys.exit(0)


def tool_help(name: str, doc: str | None) -> str:
    """``ganlab-<name> --help``: the tool's own docstring and its options with their comments (its
    ``conf/<name>.yaml`` up to the Hydra plumbing), not train's config groups."""
    options = (Path(config_dir()) / f"{name}.yaml").read_text().split("\ndefaults:")[0].rstrip()
    return (
        f"{(doc or '').strip()}\n\nOptions, as key=value (defaults and meaning, from {name}.yaml):\n\n"
        f"{options}\n\n--cfg job prints the composed config; errors are one line and exit 1."
    )


def missing_key_hint(message: str, config_name: str) -> str | None:
    """For Hydra's "Could not override 'model.lrr'": "model has no key lrr; did you mean lr?" (the
    closest key of that node in the config the other overrides compose), else None."""
    found = re.search(r"Could not override '([^']+)'", message)
    if found is None:
        return None
    key = found.group(1)
    parent, _, leaf = key.rpartition(".")
    others = [a for a in sys.argv[1:] if "=" in a and not a.startswith(("-", f"{key}=", f"+{key}="))]
    keys: list[str] = []
    nested: list[str] = []  # ``lr=1``: where the config does have the key (model.lr)
    try:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name, overrides=others)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        keys = [str(k) for k in node] if isinstance(node, DictConfig) else []
        if isinstance(node, DictConfig):
            nested = _paths_ending_in(node, leaf)
    except Exception:  # the other overrides do not compose alone (a sweep list): no suggestion
        pass
    close = difflib.get_close_matches(leaf, keys, n=1, cutoff=0.6)
    owner = parent or "the config"
    if close:
        return f"{owner} has no key {leaf}; did you mean {f'{parent}.' if parent else ''}{close[0]}?"
    if nested:
        full = [f"{parent}.{n}" if parent else n for n in nested]
        return f"{owner} has no key {leaf}; did you mean {' or '.join(full[:3])}?"
    listed = f" (its keys: {', '.join(keys)})" if keys else ""
    return f"{owner} has no key {leaf}{listed}; to add a new key on purpose, write +{key}=..."


def _paths_ending_in(node: DictConfig, leaf: str, prefix: str = "", depth: int = 3) -> list[str]:
    """Paths below ``node`` (a few levels deep) whose last key is ``leaf``: model.lr, model.generator.ngf."""
    found = []
    for key, value in node.items_ex(resolve=False):
        if isinstance(value, DictConfig) and depth > 1:
            if leaf in value:
                found.append(f"{prefix}{key}.{leaf}")
            found += _paths_ending_in(value, leaf, f"{prefix}{key}.", depth - 1)
    return found


def run_cli(entry: Callable[[], object], tool: str | None = None, doc: str | None = None) -> None:
    """Run a ``@hydra.main`` function; config and data errors print one line and exit 1.

    Hydra normally prints its own multi-line report; with ``HYDRA_FULL_ERROR`` set it lets
    exceptions through, so we can condense them. A user who set it gets full tracebacks. A
    ``tool`` answers ``--help`` with its own options (train keeps Hydra's help: its config groups).
    """
    if tool is not None and any(arg in ("--help", "-h") for arg in sys.argv[1:]):
        print(tool_help(tool, doc))
        return
    quiet_third_party()
    redact_logging()  # Hydra logs the overrides of each sweep job
    user_wants_traces = _traces["wanted"] = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        entry()
    except KeyboardInterrupt:  # during start-up (a started run stops on its own, saving its state)
        print("error: interrupted (Ctrl-C) while starting; nothing was run", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        error = user_error(e)
        if error is None or user_wants_traces:
            raise
        hint = missing_key_hint(str(error), tool or "train")
        print(f"error: {hint}", file=sys.stderr) if hint else report(error)
        sys.exit(getattr(error, "exit_code", 1))
