"""Loading the user's code: installed ``ganlab.plugins`` entry points and ``plugins=[...]``.

Trusted: code installed in the environment (an entry point in the ``ganlab.plugins`` group, the
convention pytest's ``pytest11`` follows) and the modules the user names on the command line or in
their own config file. Not trusted: any file a tool reads (a checkpoint, its stored config and its
stored ``plugins`` list, which only shows the user what to pass). Every tool calls
``load_plugins`` with its *own* ``plugins`` option before anything is built.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

from ganlab import registry
from ganlab.errors import ConfigError

GROUP = "ganlab.plugins"
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
LOADED: set[str] = set()  # plugin modules imported in this process (entry points and plugins=)
_entry_points_done = {"done": False}


class PluginError(ConfigError):
    """A plugin that cannot be imported, or that fails while it registers its parts."""


def _import(module: str, label: str, advice: str | None = None) -> Any:
    registry._loading.append(module)
    try:
        return importlib.import_module(module)
    except registry.RegistryError as e:
        raise PluginError(f"{label}: {e}") from None
    except Exception as e:
        detail = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        missing = isinstance(e, ModuleNotFoundError) and e.name and module.startswith(e.name)
        advice = advice or (
            "install it or put its folder on PYTHONPATH" if missing else "fix the plugin, or leave it out"
        )
        raise PluginError(f"{label} failed to import ({detail}); {advice}") from None
    finally:
        registry._loading.pop()


def load_entry_points() -> None:
    """Every installed ``ganlab.plugins`` entry point, once per process (each names a module)."""
    if _entry_points_done["done"]:
        return
    _entry_points_done["done"] = True
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        module = ep.value.split(":")[0].strip()
        dist = getattr(ep.dist, "name", "?")
        label = f"the installed plugin {ep.name} = {ep.value} (package {dist}, entry point group {GROUP})"
        if not MODULE_NAME.fullmatch(module):
            raise PluginError(f"{label} does not name a module; fix or uninstall {dist}")
        _import(module, label, f"fix it, or uninstall it: pip uninstall {dist}")
        LOADED.add(module)


def load_plugins(given: Iterable[Any] | None = None) -> list[str]:
    """Installed entry points, then each module of ``plugins=[...]`` (imported, so its ``@register``
    calls run). Returns the modules given. One line for a name that is not a module or fails."""
    load_entry_points()
    modules = [] if given is None else ([given] if isinstance(given, str) else list(given))
    for module in modules:
        if not isinstance(module, str) or not MODULE_NAME.fullmatch(module):
            raise PluginError(
                f"plugins=[{module}]: not a module name; give importable modules, e.g. plugins=[mypkg.nets]"
            )
        _import(module, f"plugins=[{module}]: {module}")
        LOADED.add(module)
    return modules


def config_targets(node: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(config path, node) of every node of a plain config that names a ``_target_``."""
    if isinstance(node, Mapping):
        if isinstance(node.get("_target_"), str):
            yield path, node
        for key, value in node.items():
            yield from config_targets(value, f"{path}.{key}" if path else str(key))


def register_run_parts(config: dict[str, Any]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The parts a run config (the user's own command line and config files: trusted) builds, as
    (kind, name), and {config path: registered name} for a ``_target_`` that names a registered
    class by another import path (``mypkg.MyGen`` for ``mypkg.nets.MyGen``): the run stores the
    registered name, so the tools find it. A class that no ``@register`` added is registered for
    this process, so this run's checkpoints resume with the same command line; the tools need it
    registered by a plugin (they never take a class from a file)."""
    from hydra.utils import get_object  # the user's own config: importing what it names is theirs

    parts: list[tuple[str, str]] = []
    renamed: dict[str, str] = {}
    for section in ("model", "data"):
        for path, node in config_targets(config.get(section), section):
            target = node["_target_"]
            obj = get_object(target)
            kind = registry.kind_of(obj)
            if kind is None:
                continue  # not a part the registry holds (e.g. a Hydra helper); Hydra builds it
            canonical = registry.name_of(obj)
            if registry.lookup(kind, target) is None and registry.lookup(kind, canonical) is obj:
                renamed[path] = target = canonical
            elif registry.lookup(kind, target) is None:
                registry.register_as(kind, target, obj)
            parts.append((kind, target))
    model = config.get("model") or {}
    if isinstance(model.get("loss"), str):
        parts.append(("loss", model["loss"]))
    augment = model.get("augment") or []
    for name in augment.split(",") if isinstance(augment, str) else augment:
        parts.append(("augment", str(name).strip()))
    return parts, renamed
