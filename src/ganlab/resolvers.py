"""ganlab's OmegaConf resolvers, registered on import (by ``ganlab.cli``, which every entry point uses).

- ``${ganlab.env:NAME,default}``: an environment variable *taken literally*. OmegaConf's ``oc.env``
  returns a string that Hydra's ``instantiate`` resolves again, so ``GANLAB_DATA_DIR='${oc.env:TOKEN}'``
  would read another variable (a secret) into a folder name. A value holding ``${`` is refused in
  one line; so is a folder variable that names a file, or a place inside /proc or /sys.
- ``${ganlab.if:<bool>,<then>,<else>}``: a value that depends on another.
- ``${ganlab.cpus:<n>}``: the CPUs this process may use (its affinity), at most n.
- ``${ganlab.gpus:<accelerator>,<devices>}``: the GPUs a SLURM job asks for; none for a CPU trainer.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from ganlab.errors import ConfigError

KERNEL_FILE_SYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))


def folder_from_env(name: str, default: str | None = None) -> str | None:
    """The folder ``$name`` names, literally (else ``default``); refused in one line when it cannot
    be a folder of data: an interpolation, an existing file, a kernel file system."""
    value = os.environ.get(name) or None
    if value is None:
        return default
    if "${" in value:
        raise ConfigError(
            f"{name} holds an interpolation ({value[:60]!r}); environment values are taken literally, "
            f"never resolved: set {name} to a plain folder path"
        )
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name}={value} is a file, not a folder: point {name} at a folder (or unset it)")
    resolved = path.resolve()
    if any(resolved == k or k in resolved.parents for k in KERNEL_FILE_SYSTEMS):
        raise ConfigError(
            f"{name}={value} is inside {resolved.parts[0]}{resolved.parts[1]}, a kernel file system: "
            f"point {name} at a folder on disk (or unset it)"
        )
    return value


OmegaConf.register_new_resolver("ganlab.env", folder_from_env, replace=True)
OmegaConf.register_new_resolver("ganlab.if", lambda cond, then, other: then if cond else other, replace=True)
OmegaConf.register_new_resolver(
    "ganlab.cpus", lambda most: max(1, min(int(most), len(os.sched_getaffinity(0)))), replace=True
)
OmegaConf.register_new_resolver(
    "ganlab.gpus", lambda accelerator, devices: 0 if str(accelerator) == "cpu" else devices, replace=True
)
