"""Every value of a composed run config is checked before anything is built.

Types come from what each node builds: a node with ``_target_`` is checked against the type hints
of that class's constructor (as LightningCLI/jsonargparse do), so the signature stays the one
schema and a yaml file cannot drift from it. Ranges that a type cannot say (a learning rate > 0, a
cadence ≥ 1) are the table ``RANGES``, by config path. Every bad value is named in one line.
"""

from __future__ import annotations

import fnmatch
import inspect
import math
import types
import typing
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from ganlab.errors import ConfigError, raise_all
from ganlab.nets.sizes import dcgan_size_problem
from ganlab.plugins import config_targets
from ganlab.signatures import inspected, read_signature


@dataclass(frozen=True)
class Range:
    """``low <= value`` (``<`` when ``open_low``) and ``value < high``; ``None`` passes when allowed."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    integer: bool = False
    nullable: bool = True
    why: str = ""

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None if self.nullable else "must be set"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be an integer" if self.integer else "must be a number"
        if self.integer and not isinstance(value, int):
            return "must be an integer"
        if not math.isfinite(value):
            return "must be a finite number"
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return f"must be {'>' if self.open_low else '≥'} {_num(self.low)}"
        if self.high is not None and value >= self.high:
            return f"must be < {_num(self.high)}"
        return None


@dataclass(frozen=True)
class Pair:
    """Two numbers, each in [low, high) (Adam's betas)."""

    low: float
    high: float
    example: str
    why: str = ""

    def problem(self, value: Any) -> str | None:
        each = Range(low=self.low, high=self.high)
        if value is None:
            return None
        if not isinstance(value, list | tuple) or len(value) != 2 or any(each.problem(v) for v in value):
            bounds = f"each ≥ {_num(self.low)} and < {_num(self.high)}"
            return f"must be two numbers, {bounds} (e.g. {self.example})"
        return None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


POSITIVE = Range(low=0, open_low=True)
NON_NEGATIVE = Range(low=0)
COUNT = Range(low=1, integer=True)  # iterations, widths, batch sizes
NON_NEGATIVE_COUNT = Range(low=0, integer=True)
FRACTION = Range(low=0, high=1)

# path pattern (fnmatch on the dotted config path) → range; the first pattern that matches wins
RANGES: list[tuple[str, Range | Pair]] = [
    ("seed", Range(low=0, high=2**32, integer=True, nullable=False, why="numpy/torch seeds")),
    ("max_iters", Range(low=1, integer=True, why="iterations; null: trainer.max_epochs")),
    ("model.lr", Range(low=0, open_low=True, nullable=False, why="a learning rate")),
    ("model.lr_d", Range(low=0, open_low=True, why="D's learning rate; null: model.lr")),
    ("model.optimizer.betas", Pair(low=0, high=1, example="[0.5,0.999]", why="Adam's β1, β2")),
    ("model.ema.decay", FRACTION),
    ("model.label_smoothing", FRACTION),
    ("model.generator.dropout", FRACTION),
    ("model.*.ngf", COUNT),
    ("model.*.ndf", COUNT),
    ("model.*.latent_dim", COUNT),
    ("model.*.n_layers", COUNT),
    ("model.generator.num_downs", Range(low=5, integer=True, why="U-Net levels: 8 for 256 px")),
    ("model.*.num_downs", COUNT),
    ("model.generator.n_blocks", NON_NEGATIVE_COUNT),
    ("model.*_channels", COUNT),
    ("model.n_critic", COUNT),
    ("model.num_samples", COUNT),
    ("model.r1_every", COUNT),
    ("model.pool_size", NON_NEGATIVE_COUNT),
    ("model.n_epochs", NON_NEGATIVE_COUNT),
    ("model.n_epochs_decay", NON_NEGATIVE_COUNT),
    ("model.instance_noise_iters", NON_NEGATIVE_COUNT),
    ("model.lambda_*", NON_NEGATIVE),
    ("model.instance_noise", NON_NEGATIVE),
    ("model.r1_gamma", NON_NEGATIVE),
    ("model.gp_weight", NON_NEGATIVE),
    ("data.batch_size", Range(low=1, integer=True, nullable=False)),
    ("data.num_workers", NON_NEGATIVE_COUNT),
    ("data.image_size", Range(low=4, integer=True)),
    ("data.load_size", Range(low=4, integer=True)),
    ("data.channels", Range(low=1, integer=True)),
    ("data.limit_train", COUNT),
    ("data.val_fraction", FRACTION),
    ("callbacks.*.every_n_iters", Range(low=1, integer=True, nullable=False, why="a cadence")),
    ("callbacks.*.first_at", COUNT),
    ("metrics.every_n_epochs", COUNT),
    ("metrics.every_n_iters", COUNT),
    ("metrics.num_fake", COUNT),
    ("metrics.num_real", COUNT),
    ("metrics.batch_size", COUNT),
    ("metrics.kid.*", COUNT),
    ("trainer.max_epochs", Range(low=-1, integer=True, why="-1: no limit")),
    ("trainer.log_every_n_steps", COUNT),
    ("trainer.check_val_every_n_epoch", COUNT),
    ("trainer.num_nodes", COUNT),
]


# what a type cannot say of one class's argument (ganlab's own networks): (target, argument) → the
# problem with a value, or None; judged with the signature, before anything is imported
TARGET_RULES: dict[tuple[str, str], Callable[[Any], str | None]] = {
    ("ganlab.nets.dcgan.Generator", "image_size"): dcgan_size_problem,
    ("ganlab.nets.dcgan.Discriminator", "image_size"): dcgan_size_problem,
}


def validate(cfg: DictConfig, static: bool = False) -> None:
    """Raise one ConfigError naming every bad value of a composed run config: first those the value
    table judges (no class imported, so a bad number answers fast), then each node against its
    class's signature. A value copied from another key (``model.seed: ${seed}``) is judged where
    it is set, so it is named once. ``static``: only the classes whose signature can be read
    without importing them (``ganlab.signatures``); the run checks the others."""
    derived = {p for p, v in _leaves(OmegaConf.to_container(cfg, resolve=False)) if _is_copy(v)}
    resolved = OmegaConf.to_container(cfg, resolve=True)
    ranged: set[str] = set(derived)
    plain = list(range_problems(resolved, derived, ranged))  # no class imported: answers in a second
    raise_all([ConfigError(p) for p in plain], ConfigError)
    found = [
        p
        for path, node in config_targets(resolved)
        for p in _against_signature(path, node, skip=ranged, static=static)
    ]
    raise_all([ConfigError(p) for p in found], ConfigError)


# the command-line tools (generate, translate, …): flat options, typed by their yaml defaults
TOOL_RANGES: list[tuple[str, Range | Pair]] = [
    ("seed", Range(low=0, high=2**32, integer=True, nullable=False)),
    ("n", COUNT),
    ("nrow", COUNT),
    ("batch_size", COUNT),
    ("steps", Range(low=2, integer=True)),
    ("perturbations", COUNT),
    ("num_fake", COUNT),
    ("crop_size", COUNT),
    ("tile", COUNT),
    ("tile_overlap", NON_NEGATIVE_COUNT),
    ("noise", NON_NEGATIVE),
    ("max_memory_gb", POSITIVE),
]


def validate_tool(cfg: DictConfig, defaults_file: str | Path) -> None:
    """A tool's options against its yaml: a number, integer or true/false default takes only that
    kind of value (a string default takes anything: ``output=2024`` is a folder name); ranges from
    ``TOOL_RANGES``. Every bad value in one line."""
    defaults = OmegaConf.to_container(OmegaConf.load(defaults_file))
    values = OmegaConf.to_container(cfg, resolve=True)
    found = []
    for key, value in values.items():
        default = defaults.get(key) if isinstance(defaults, dict) else None
        kind = type(default) if isinstance(default, bool | int | float) else None
        if kind is not None and _conforms(value, kind) is False:
            found.append(f"{key}={_show(value)} must be {_describe(kind)}")
            continue
        for pattern, allowed in TOOL_RANGES:
            if key == pattern and (problem := allowed.problem(value)) is not None:
                found.append(f"{key}={_show(value)} {problem}")
    raise_all([ConfigError(p) for p in found], ConfigError)


def _is_copy(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def range_problems(config: Mapping[str, Any], skip: Collection[str], ranged: set[str]) -> Iterator[str]:
    """The bad values of a resolved config (plain containers) by ``RANGES``, one message each, with
    no class imported; ``skip``: paths not to judge; ``ranged`` collects the paths judged here (the
    signature check leaves them alone)."""
    for path, value in _leaves(config):
        if path in skip:
            continue
        for pattern, allowed in RANGES:
            if fnmatch.fnmatchcase(path, pattern):
                ranged.add(path)
                if (problem := allowed.problem(value)) is not None:
                    why = f" ({allowed.why})" if allowed.why else ""
                    yield f"{path}={_show(value)} {problem}{why}"
                break


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), node


def _against_signature(
    path: str, node: Mapping[str, Any], skip: set[str], static: bool = False
) -> Iterator[str]:
    """The node's keys against the constructor of ``_target_``: unknown keys and wrong types. Read
    from ganlab's source where it can be (nothing imported); else imported, or with ``static`` left
    for the run to check once it imports it."""
    signature = read_signature(node["_target_"])
    if signature is None and static:
        return
    if signature is None:
        try:
            signature = inspected(get_object(node["_target_"]))
            if signature is None:
                raise TypeError("no signature")
        except Exception as e:
            reason = " ".join(str(e).split())
            yield f"{path}._target_={node['_target_']} cannot be imported or inspected ({reason})"
            return
    for key, value in node.items():
        if key.startswith("_") and key.endswith("_"):
            continue
        where = f"{path}.{key}" if path else key
        if key not in signature.params:
            if not signature.open_kwargs:
                yield f"{where}: {node['_target_']} has no argument {key}; remove it (~{where})"
            continue
        hint = signature.hints.get(key, Any)
        if where not in skip and _conforms(value, hint) is False:
            yield f"{where}={_show(value)} must be {_describe(hint)}"
            continue
        rule = TARGET_RULES.get((node["_target_"], key))
        if where not in skip and rule is not None and (problem := rule(value)) is not None:
            yield f"{where}={_show(value)} {problem}"


def _conforms(value: Any, hint: Any) -> bool | None:
    """True or False where the hint is understood; None (accepted) for types a config cannot hold."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    if isinstance(value, Mapping) and "_target_" in value:
        return True  # a nested object: checked as its own node
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(_conforms(value, a) is not False for a in args)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin is typing.Annotated:
        return _conforms(value, args[0])
    simple: dict[Any, Callable[[Any], bool]] = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
    }
    if hint in simple:
        return simple[hint](value)
    if inspect.isclass(hint) and issubclass(hint, PurePath):
        return isinstance(value, str)
    container = origin or hint
    if container in (list, tuple, Sequence, typing.Sequence) or container is set:
        if not isinstance(value, list | tuple):
            return False
        inner = args[0] if args and (container is not tuple or (len(args) == 2 and args[1] is ...)) else None
        return all(_conforms(v, inner) is not False for v in value) if inner is not None else True
    if container in (dict, Mapping, typing.Mapping):
        return isinstance(value, Mapping)
    return None


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        choices = [str(c) for c in _literals(hint)]
        plain = [a for a in args if typing.get_origin(a) is not typing.Literal and a is not type(None)]
        others = [_describe(a) for a in plain]
        if choices:
            others.insert(0, "one of " + ", ".join(dict.fromkeys(choices)))
        if type(None) in args:
            others.append("null")
        return " or ".join(dict.fromkeys(others))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if hint is type(None):
        return "null"
    container = origin or hint
    if container in (list, tuple, Sequence, typing.Sequence, set):
        return "a list"
    if container in (dict, Mapping, typing.Mapping):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _literals(hint: Any) -> list[Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return list(args)
    if origin is typing.Union or origin is types.UnionType:
        return [c for a in args for c in _literals(a)]
    return []


def _show(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _cuda_available() -> bool:
    import torch  # here only: no other check needs torch

    return torch.cuda.is_available()


# ganlab's own losses and augmentations (ganlab.losses.LOSSES, ganlab.modules.augment.POLICIES; a test
# holds them equal): a config naming only these is judged without importing torch
BUILTIN_NAMES = {
    "loss": ("minimax", "non_saturating", "least_squares", "hinge", "wasserstein"),
    "augment": ("color", "translation", "cutout"),
}


def registered_names(cfg: DictConfig) -> None:
    """``model.loss`` and ``model.augment`` of ganlab's GAN modules name registered parts (ganlab's,
    or a plugin's: the plugins are loaded by now), checked with the values rather than when the
    module is built, after the data. A plugin's module judges its own options."""
    model = cfg.get("model") or {}
    if not str(model.get("_target_", "")).startswith("ganlab.modules."):
        return
    problems = []
    if model.get("loss") is not None and model.get("loss") not in BUILTIN_NAMES["loss"]:
        from ganlab.losses import get_loss

        try:
            get_loss(str(model.get("loss")))
        except ConfigError as e:
            problems.append(e)
    augment = model.get("augment")
    augment = OmegaConf.to_container(augment) if OmegaConf.is_config(augment) else augment
    given = [p.strip() for p in augment.split(",")] if isinstance(augment, str) else list(augment or [])
    if not set(given) <= set(BUILTIN_NAMES["augment"]):
        from ganlab.modules.augment import parse_policy

        try:
            parse_policy(augment)
        except ConfigError as e:
            problems.append(e)
    raise_all(problems, ConfigError)


def check_run(cfg: DictConfig, static: bool = False) -> None:
    """A run config's values, then what no single value says (max_steps, a GPU trainer without one).
    ``static``: the classes are not imported (see ``validate``)."""
    validate(cfg, static)
    if cfg.trainer.get("max_steps", -1) not in (-1, None):
        raise ConfigError(
            "trainer.max_steps counts optimizer steps (two or more per GAN iteration); "
            "set max_iters=N to stop after N iterations (batches)"
        )
    registered_names(cfg)
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not _cuda_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but this machine has no CUDA device: use trainer=cpu "
            "or trainer=auto"
        )
