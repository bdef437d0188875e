"""The seam between ganlab and your code: names → the parts a run is built from.

Kinds: ``network`` (``nn.Module``), ``module`` (a ``GanModule``), ``data`` (a
``LightningDataModule``), ``optimizer`` (a ``torch.optim.Optimizer``), ``loss`` (a G/D pair, by its
``model.loss`` name) and ``augment`` (a DiffAugment policy, by its ``model.augment`` name). Classes
are named by where they live (``mypkg.nets.MyGen``), the name a config's ``_target_`` holds.

It holds ganlab's own parts and grows only through code the user runs: ``@register`` in a module
that an installed package's ``ganlab.plugins`` entry point or the user's ``plugins=[...]`` imports
(``ganlab.plugins.load_plugins``). A checkpoint or any other file may *name* a registered part;
nothing here imports a module or calls anything by a name a file gives. This module is low in the
house: it imports no other part of ganlab but its errors; the packages that own the base classes of
``module`` and ``data`` declare them (``declare_kind``), so the registry needs neither Lightning nor them.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from ganlab.errors import ConfigError

T = TypeVar("T")


class RegistryError(ConfigError):
    """A part that cannot be registered (wrong kind, a name taken) or a name that is not registered."""


# kind → the base class its parts derive from (None: a value with its own check); the order is the
# order in which a class's kind is decided (a GanModule is also an nn.Module)
_BASES: dict[str, type | None] = {"module": None, "data": None, "network": None, "optimizer": None}
KINDS = ("network", "module", "data", "optimizer", "loss", "augment")
WHAT = {
    "network": "an nn.Module",
    "module": "a GanModule",
    "data": "a LightningDataModule",
    "optimizer": "a torch.optim.Optimizer",
    "loss": "a pair of losses with .d(real, fake, real_label) and .g(fake)",
    "augment": "a function (images, torch.Generator) → images",
}
_PARTS: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_ORIGIN: dict[tuple[str, str], str] = {}  # (kind, name) → "ganlab" or the plugin that registered it
_loading: list[str] = []  # the plugin being imported now (ganlab.plugins sets it), for messages


_TORCH_READY: list[bool] = []  # torch's bases and optimizers: added on first use, not at import


def _with_torch() -> None:
    """nn.Module and Optimizer as bases, Adam/AdamW/RMSprop/SGD as ganlab's optimizers: imported
    when the registry is first consulted, so a config error answers before torch is loaded."""
    if _TORCH_READY:
        return
    import torch

    _BASES["network"], _BASES["optimizer"] = torch.nn.Module, torch.optim.Optimizer
    for optimizer in (torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.SGD):
        _PARTS["optimizer"][f"torch.optim.{optimizer.__name__}"] = optimizer
        _ORIGIN[("optimizer", f"torch.optim.{optimizer.__name__}")] = "ganlab"
    _TORCH_READY.append(True)


def declare_kind(kind: str, base: type) -> None:
    """The base class of a kind whose base lives above the registry (``module``, ``data``)."""
    if kind not in ("module", "data"):
        raise ValueError(f"{kind} is not a kind declared from outside")
    _BASES[kind] = base


def name_of(cls: type) -> str:
    """``module.Qualname``: how a config's ``_target_`` names a class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def kind_of(obj: Any) -> str | None:
    """The kind a class is registered as, from its base classes; None if it is none of them."""
    if not inspect.isclass(obj):
        return None
    _with_torch()
    if _BASES["data"] is None and "lightning.pytorch" in sys.modules:  # a subclass means it is imported
        _BASES["data"] = sys.modules["lightning.pytorch"].LightningDataModule
    for kind, base in _BASES.items():
        if base is not None and issubclass(obj, base):
            return kind
    return None


def _same(a: Any, b: Any) -> bool:
    """The same part seen twice (a module imported once by name and once as a plugin) is not a clash."""
    if a is b:
        return True
    try:
        return name_of(a) == name_of(b) and inspect.getsourcefile(a) == inspect.getsourcefile(b)
    except (TypeError, AttributeError):
        return False


def _add(kind: str, name: str, obj: Any, where: str) -> None:
    if not isinstance(name, str) or not name or name != name.strip():
        raise RegistryError(f"register: {name!r} is not a name (a non-empty string, no spaces at its ends)")
    taken = _PARTS[kind].get(name)
    if taken is not None and not _same(taken, obj):
        raise RegistryError(
            f"the {kind} name {name!r} is registered twice (first by {_ORIGIN[(kind, name)]}, again by "
            f"{origin(where)}); rename one of them, or load only one of the plugins that define it"
        )
    _PARTS[kind][name] = obj
    _ORIGIN.setdefault((kind, name), origin(where))


def origin(module: str) -> str:
    """Who registers a part defined in ``module``: ganlab, the plugin being loaded, or that module."""
    if module == "ganlab" or module.startswith("ganlab."):
        return "ganlab"
    return _loading[-1] if _loading else module


def _caller() -> str:
    return sys._getframe(2).f_globals.get("__name__", "?")


class _Register:
    """``@register`` on a class: a network, GAN module, data module or optimizer, by its own name.
    ``register.loss(name, pair)`` and ``@register.augment(name)`` add a ``model.loss`` pair and a
    ``model.augment`` policy. A name registered twice, or a class of none of the kinds, is one line."""

    def __call__(self, cls: type[T]) -> type[T]:
        kind = kind_of(cls)
        if kind is None:
            shown = name_of(cls) if inspect.isclass(cls) else repr(cls)[:80]
            raise RegistryError(
                f"register({shown}): not an nn.Module, GanModule, LightningDataModule or torch optimizer "
                "class; register.loss(name, pair) adds a loss, @register.augment(name) an augmentation"
            )
        _add(kind, name_of(cls), cls, cls.__module__)
        return cls

    def loss(self, name: str, pair: Any) -> Any:
        if not (callable(getattr(pair, "d", None)) and callable(getattr(pair, "g", None))):
            raise RegistryError(f"register.loss({name!r}, …): needs {WHAT['loss']} (ganlab.plugin.GanLoss)")
        _add("loss", name, pair, _caller())
        return pair

    def augment(self, name: str) -> Callable[[T], T]:
        where = _caller()

        def add(fn: T) -> T:
            if not callable(fn):
                raise RegistryError(f"register.augment({name!r}): needs {WHAT['augment']}")
            _add("augment", name, fn, where)
            return fn

        return add


register = _Register()


def register_as(kind: str, name: str, obj: Any) -> None:
    """Register ``obj`` under ``name`` (ganlab.plugins: a class the user's run config names)."""
    if kind_of(obj) != kind:
        raise RegistryError(f"{name} is not {WHAT[kind]}")
    _add(kind, name, obj, getattr(obj, "__module__", "?"))


def lookup(kind: str, name: Any) -> Any | None:
    """The part registered as ``name`` (an exact string) of ``kind``, else None. Never imports."""
    _with_torch()
    return _PARTS[kind].get(name) if isinstance(name, str) else None


def names(kind: str) -> list[str]:
    _with_torch()
    return list(_PARTS[kind])


def is_builtin(kind: str, name: str) -> bool:
    _with_torch()
    return _ORIGIN.get((kind, name)) == "ganlab"


def plugin_origins(objs: list[tuple[str, str]]) -> list[str]:
    """The plugins (not ganlab) that registered these (kind, name) parts, in order, once each."""
    found = [_ORIGIN.get(key) for key in objs]
    return list(dict.fromkeys(o for o in found if o and o != "ganlab"))
