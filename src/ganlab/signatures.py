"""The constructor signature of a config's ``_target_`` without importing it, where it can be read
from ganlab's own source (``ast``): ``train`` checks every value against its class before Lightning
(which each LightningModule and DataModule imports) is loaded, so a wrong value answers as fast as
a misspelt key. A target this cannot read (another package's class, a hint it does not know) is
checked again, importing it, once the run starts; a test holds what this reads to ``inspect``'s
answer for every class the configs name.
"""

from __future__ import annotations

import ast
import builtins
import collections.abc
import importlib.machinery
import importlib.util
import inspect
import pathlib
import sys
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any

# the names a hint of ganlab's may use, as objects; any other name makes the hint unknown (Any)
_HINT_NAMES: dict[str, Any] = {
    **{
        n: getattr(builtins, n)
        for n in ("int", "float", "str", "bool", "bytes", "list", "dict", "tuple", "set")
    },
    **{n: getattr(typing, n) for n in ("Any", "Literal", "Optional", "Union")},
    **{n: getattr(collections.abc, n) for n in ("Sequence", "Mapping", "Iterable", "Callable")},
    "None": None,
    "Path": pathlib.Path,
}


@dataclass
class Signature:
    """The parameters of a constructor (``self`` left out), whether it takes ``**kwargs``, and the
    type hint of each parameter whose hint is known (others: any value)."""

    params: list[str]
    open_kwargs: bool
    hints: dict[str, Any] = field(default_factory=dict)


def read_signature(target: str) -> Signature | None:
    """``target``'s signature: by ``inspect`` if its module is already imported (it costs nothing
    then), else from ganlab's source; None when neither (the caller imports it, or checks later)."""
    module, _, name = target.rpartition(".")
    if module in sys.modules:
        obj = getattr(sys.modules[module], name, None)
        return inspected(obj) if obj is not None else None
    if not target.startswith("ganlab."):
        return None
    try:
        return _static(module, name, depth=0)
    except (OSError, SyntaxError, ValueError, ImportError):
        return None


def inspected(obj: Any) -> Signature | None:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
    except Exception:  # a hint naming a type only a type checker imports: the keys are still checked
        hints = {}
    params = signature.parameters
    return Signature(
        [n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)],
        any(p.kind is p.VAR_KEYWORD for p in params.values()),
        {n: h for n, h in hints.items() if n in params},
    )


@cache
def _tree(module: str) -> tuple[ast.Module, bool] | None:
    """The module's syntax tree (and whether it is a package), found without running it or its
    parent packages (``ganlab.callbacks`` imports Lightning: its files are only read)."""
    parts = module.split(".")
    spec = importlib.util.find_spec(parts[0])  # the top package (ganlab: already imported)
    for depth in range(1, len(parts)):
        if spec is None or spec.submodule_search_locations is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(
            ".".join(parts[: depth + 1]), list(spec.submodule_search_locations)
        )
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    source = pathlib.Path(spec.origin).read_text(encoding="utf-8")
    return ast.parse(source, spec.origin), spec.submodule_search_locations is not None


def _imported_from(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _static(module: str, name: str, depth: int) -> Signature | None:
    if depth > 8 or not module.startswith("ganlab"):
        return None
    found = _tree(module)
    if found is None:
        return None
    tree, is_package = found
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return _from_def(node, skip_self=False)
        if isinstance(node, ast.ClassDef) and node.name == name:
            return _from_class(node, module, depth)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return _static(_imported_from(node, module, is_package), alias.name, depth + 1)
    return None


def _from_class(node: ast.ClassDef, module: str, depth: int) -> Signature | None:
    if node.decorator_list and not all(_is_register(d) for d in node.decorator_list):
        return None  # a decorator that may change the constructor (dataclass, …): import it instead
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            return _from_def(item, skip_self=True)
    for base in node.bases:  # no __init__ of its own: its first base's that has one (ganlab's only)
        if isinstance(base, ast.Name):
            signature = _static(module, base.id, depth + 1)
            if signature is not None:
                return signature
    return None


def _is_register(decorator: ast.expr) -> bool:
    """``@register`` (ganlab's registry returns the class unchanged)."""
    return isinstance(decorator, ast.Name) and decorator.id == "register"


def _from_def(node: ast.FunctionDef, skip_self: bool) -> Signature:
    args = node.args
    positional = [*args.posonlyargs, *args.args][1 if skip_self else 0 :]
    params = [*positional, *args.kwonlyargs]
    hints = {}
    for arg in params:
        hint = _hint(arg.annotation)
        if hint is not _UNKNOWN:
            hints[arg.arg] = hint
    return Signature([a.arg for a in params], args.kwarg is not None, hints)


_UNKNOWN = object()


def _hint(annotation: ast.expr | None) -> Any:
    """The hint's object, if it uses only the names above; else unknown (any value passes)."""
    if annotation is None:
        return _UNKNOWN
    text = annotation.value if isinstance(annotation, ast.Constant) else ast.unparse(annotation)
    if not isinstance(text, str):
        return _UNKNOWN
    try:
        expression = ast.parse(text, mode="eval")
    except SyntaxError:
        return _UNKNOWN
    if any(isinstance(n, ast.Name) and n.id not in _HINT_NAMES for n in ast.walk(expression)):
        return _UNKNOWN
    if any(isinstance(n, ast.Attribute | ast.Call | ast.Lambda) for n in ast.walk(expression)):
        return _UNKNOWN
    try:
        return eval(compile(expression, "<hint>", "eval"), {"__builtins__": {}}, dict(_HINT_NAMES))
    except Exception:
        return _UNKNOWN
