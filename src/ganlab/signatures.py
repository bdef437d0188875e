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
import re
import sys
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any

# the packages whose source is read: ganlab's, and those of the classes its configs name (Lightning's
# Trainer and loggers, torch's optimizers); another package's class is imported by the run
READABLE = ("ganlab", "lightning", "torch")
# the names followed as type aliases (``_PRECISION_INPUT``, ``_PATH``): constants' spelling; a
# CamelCase name is a class, and looking it up would read (parse) large files for nothing
ALIAS_NAME = re.compile(r"_*[A-Z][A-Z0-9_]*")
# decorators of another package's __init__ that keep its signature (Lightning's env-var defaults)
KEEPS_SIGNATURE = ("_defaults_from_env_vars",)

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
    if target.split(".")[0] not in READABLE:
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
    if depth > 8 or module.split(".")[0] not in READABLE:
        return None
    found = _tree(module)
    if found is None:
        return None
    tree, is_package = found
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return _from_def(node, skip_self=False, module=module)
        if isinstance(node, ast.ClassDef) and node.name == name:
            return _from_class(node, module, depth)
    source = _import_of(tree, name, module, is_package)
    return _static(*source, depth + 1) if source is not None else None


def _import_of(tree: ast.Module, name: str, module: str, is_package: bool) -> tuple[str, str] | None:
    """(module, name there) of a ``from … import`` that binds ``name`` at the top of ``tree``."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return _imported_from(node, module, is_package), alias.name
    return None


def _from_class(node: ast.ClassDef, module: str, depth: int) -> Signature | None:
    if node.decorator_list and not all(_is_register(d) for d in node.decorator_list):
        return None  # a decorator that may change the constructor (dataclass, …): import it instead
    ours = module.startswith("ganlab")
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            if not ours and not all(_keeps_signature(d) for d in item.decorator_list):
                return None
            return _from_def(item, skip_self=True, module=module)
    if not ours:
        return None  # another package's class without an __init__ of its own: the run imports it
    for base in node.bases:  # no __init__ of its own: its first base's that has one (ganlab's only)
        if isinstance(base, ast.Name):
            signature = _static(module, base.id, depth + 1)
            if signature is not None:
                return signature
    return None


def _keeps_signature(decorator: ast.expr) -> bool:
    return isinstance(decorator, ast.Name) and decorator.id in KEEPS_SIGNATURE


def _is_register(decorator: ast.expr) -> bool:
    """``@register`` (ganlab's registry returns the class unchanged)."""
    return isinstance(decorator, ast.Name) and decorator.id == "register"


def _from_def(node: ast.FunctionDef, skip_self: bool, module: str) -> Signature:
    args = node.args
    positional = [*args.posonlyargs, *args.args][1 if skip_self else 0 :]
    params = [*positional, *args.kwonlyargs]
    hints = {}
    for arg in params:
        hint = _hint(arg.annotation, module)
        if hint is not _UNKNOWN:
            hints[arg.arg] = hint
    return Signature([a.arg for a in params], args.kwarg is not None, hints)


_UNKNOWN = object()


def _hint(annotation: ast.expr | None, module: str, depth: int = 0) -> Any:
    """The hint's object, if it uses only the names above and module-level aliases of them
    (``_PRECISION_INPUT = Union[Literal[...], ...]``, followed through imports); else unknown (any
    value passes)."""
    if annotation is None or depth > 8:
        return _UNKNOWN
    text = annotation.value if isinstance(annotation, ast.Constant) else ast.unparse(annotation)
    if not isinstance(text, str):
        return _UNKNOWN
    try:
        expression = ast.parse(text, mode="eval")
    except SyntaxError:
        return _UNKNOWN
    if any(isinstance(n, ast.Attribute | ast.Call | ast.Lambda) for n in ast.walk(expression)):
        return _UNKNOWN
    namespace = dict(_HINT_NAMES)
    for name in {n.id for n in ast.walk(expression) if isinstance(n, ast.Name)} - set(_HINT_NAMES):
        if not ALIAS_NAME.fullmatch(name):  # a class (Tensor, Accelerator): its instances are no config value
            return _UNKNOWN
        value = _alias(module, name, depth + 1)
        if value is _UNKNOWN:
            return _UNKNOWN
        namespace[name] = value
    try:
        return eval(compile(expression, "<hint>", "eval"), {"__builtins__": {}}, namespace)
    except Exception:
        return _UNKNOWN


def _alias(module: str, name: str, depth: int) -> Any:
    """The object a module-level ``name = <hint>`` of ``module`` stands for (followed through
    ``from … import``), or unknown."""
    if depth > 8 or module.split(".")[0] not in READABLE:
        return _UNKNOWN
    try:
        found = _tree(module)
    except (OSError, SyntaxError, ValueError, ImportError):
        return _UNKNOWN
    if found is None:
        return _UNKNOWN
    tree, is_package = found
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        target = node.target if isinstance(node, ast.AnnAssign) and node.value is not None else target
        if isinstance(target, ast.Name) and target.id == name:
            return _hint(node.value, module, depth)  # type: ignore[union-attr]
    source = _import_of(tree, name, module, is_package)
    return _alias(*source, depth + 1) if source is not None else _UNKNOWN
