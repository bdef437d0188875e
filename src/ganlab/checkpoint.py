"""Reading ganlab checkpoints as data: ``weights_only`` loading, networks rebuilt from the registry.

A checkpoint stores the run's resolved config (``ganlab_config``) so the tools can rebuild its
networks. That config is *data*: a ``_target_`` in it is looked up, as an exact string and by kind,
in ``ganlab.registry`` (ganlab's own parts, and those of the plugins the user installed or passed
with ``plugins=``); nothing is imported or called by name, and every argument must be a plain value
(number, string, bool, None, or a list of those) that the class accepts. A name no plugin registered
is one line naming the plugin to pass (from the checkpoint's ``ganlab_plugins`` record, which is
shown, never loaded). Networks are first built on the ``meta`` device and compared with the stored
weights, so a config that asks for a network larger than the file's own tensors is refused before
memory is allocated.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganlab import plugins, registry
from ganlab.errors import CheckpointError
from ganlab.files import check_real_bytes, load_failure
from ganlab.official import first_difference

# the kinds a sub-config of the model may name: a network, or an optimizer (a partial)
COMPONENT_KINDS = ("network", "optimizer")
# a file never chooses where ganlab downloads from, or how much it unpacks: these stored data keys
# are dropped (the class defaults apply); data_dir comes from the tool's own options
NOT_FROM_FILES = ("url", "mirrors", "max_extract_gb")
# integer arguments above these would allocate without bound (sizes, counts)
INT_LIMITS = {
    "image_size": 4096,
    "crop_size": 4096,
    "load_size": 8192,
    "size": 1 << 20,
    "batch_size": 1 << 14,
}
NETWORK_INT_LIMIT = 1 << 16
META_KEYS = ("_target_", "_partial_", "_convert_")  # Hydra's, read as data; no other "_" key passes
WANDB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


BUILTIN_NETWORKS = ("ganlab.nets.dcgan", "ganlab.nets.patchgan", "ganlab.nets.resnet", "ganlab.nets.unet")
BUILTIN_PARTS = (  # importing these registers ganlab's own parts (Lightning and torchvision with them)
    "ganlab.data.celeba", "ganlab.data.cifar10", "ganlab.data.folder", "ganlab.data.mnist",
    "ganlab.data.paired", "ganlab.data.synthetic", "ganlab.data.unpaired", "ganlab.modules.cyclegan",
    "ganlab.modules.dcgan", "ganlab.modules.pix2pix", *BUILTIN_NETWORKS,
)  # fmt: skip
# ganlab's own GAN modules by the name a config gives, without importing them (Lightning): what the
# tools that only rebuild a network (generate, explore, export, translate) need to know of the module
BUILTIN_MODULES = {
    "ganlab.modules.dcgan.DCGAN": "DCGAN",
    "ganlab.modules.cyclegan.CycleGAN": "CycleGAN",
    "ganlab.modules.pix2pix.Pix2Pix": "Pix2Pix",
}

# ganlab's own data modules by the name a config gives → their plain data set (``ganlab.data.sets``):
# the same code without Lightning's base, which `evaluate` builds
BUILTIN_DATA = {
    "ganlab.data.mnist.MNISTDataModule": "ganlab.data.sets.mnist.MNISTData",
    "ganlab.data.cifar10.CIFAR10DataModule": "ganlab.data.sets.cifar10.CIFAR10Data",
    "ganlab.data.celeba.CelebADataModule": "ganlab.data.sets.celeba.CelebAData",
    "ganlab.data.folder.ImageFolderDataModule": "ganlab.data.sets.folder.ImageFolderData",
    "ganlab.data.unpaired.UnpairedDataModule": "ganlab.data.sets.unpaired.UnpairedData",
    "ganlab.data.paired.PairedDataModule": "ganlab.data.sets.paired.PairedData",
    "ganlab.data.synthetic.SyntheticImages": "ganlab.data.sets.synthetic.SyntheticImagesData",
    "ganlab.data.synthetic.SyntheticUnpaired": "ganlab.data.sets.synthetic.SyntheticUnpairedData",
}


def register_builtins(networks_only: bool = False) -> None:
    """ganlab's own parts in the registry, imported the first time a stored config is read (an
    official weights file never needs them: translate starts without Lightning). ``networks_only``:
    the networks alone (torch), for a tool that rebuilds a generator and nothing else."""
    for module in BUILTIN_NETWORKS if networks_only else BUILTIN_PARTS:
        importlib.import_module(module)


def read_torch_file(path: str | Path, option: str = "ckpt") -> Any:
    """What a torch file holds, tensors and plain containers only (never executes code).

    Memory-mapped: tensors are read from disk only when used, so a caller that needs a few
    entries (train.py's resume, before Lightning loads the file itself) reads little. A file whose
    tensors claim more memory than it holds (views) is refused (``files.check_real_bytes``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{option}={path} does not exist; give the path of a checkpoints/last.ckpt")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise CheckpointError(f"{option}={path} {load_failure(e)}") from None
    check_real_bytes(obj, f"{option}={path}")  # before any network is built from its shapes
    return obj


def is_ganlab(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("ganlab_config"), dict)


def load_checkpoint(path: str | Path, option: str = "ckpt") -> dict[str, Any]:
    """A ganlab checkpoint's contents (see ``read_torch_file``); anything else is refused."""
    ckpt = read_torch_file(path, option)
    if not is_ganlab(ckpt):
        raise CheckpointError(f"{option}={path} has no ganlab config; was it written by ganlab.train?")
    return ckpt


# --- checking what a file says ---


def _refuse(where: str, key: str, what: str) -> CheckpointError:
    return CheckpointError(f"{where}: {key} {what}; refusing to build it (nothing was run)")


def _plain(value: Any, where: str, key: str, limit: int | None = None) -> Any:
    """``value`` if it is a plain value (or a list of them), else a refusal naming ``key``."""
    if isinstance(value, list | tuple):
        return [_plain(v, where, f"{key}[{i}]", limit) for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) and not k.startswith("_") for k in value):
        return {k: _plain(v, where, f"{key}.{k}", limit) for k, v in value.items()}  # e.g. model.ema
    if value is None or isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        if limit is not None and abs(value) > limit:
            raise _refuse(where, key, f"is {value}, above the limit of {limit}")
        return value
    shown = (
        f"a nested config naming {value.get('_target_')!r}"
        if isinstance(value, dict)
        else type(value).__name__
    )
    raise _refuse(where, key, f"holds {shown}, not a plain value")


def _accepted(cls: type) -> set[str] | None:
    """Keyword arguments of ``cls``'s constructor, following ``**kwargs`` up the class tree."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names - {"self"}
    return None  # **kwargs to the top: accept what the class itself checks


def _resolve(
    conf: Any, kinds: tuple[str, ...], where: str, key: str, stored: list[str] | None = None
) -> tuple[type, bool]:
    """(class, partial?) for a sub-config, by exact name among the registered parts of ``kinds``;
    refuses anything else, naming the plugin to pass when the name is not registered."""
    register_builtins(networks_only=set(kinds) <= set(COMPONENT_KINDS))
    if not isinstance(conf, dict):
        raise _refuse(where, key, f"is a {type(conf).__name__}, not a config")
    target = conf.get("_target_")
    cls = next((c for kind in kinds if (c := registry.lookup(kind, target)) is not None), None)
    if cls is None:
        raise _unregistered(where, f"{key}._target_", target, kinds, stored or [])
    _check_meta(conf, where, key)
    return cls, conf.get("_partial_", False)


def _check_meta(conf: dict[str, Any], where: str, key: str) -> None:
    """Only plain argument names and Hydra's own keys with their plain values."""
    for name in conf:
        if not isinstance(name, str) or (name.startswith("_") and name not in META_KEYS):
            raise _refuse(where, f"{key}.{name}", "is not a plain argument")
    partial = conf.get("_partial_", False)
    if not isinstance(partial, bool):
        raise _refuse(where, f"{key}._partial_", "is not true or false")
    if conf.get("_convert_", "all") not in ("none", "partial", "object", "all"):
        raise _refuse(where, f"{key}._convert_", "is not a Hydra conversion mode")


def _stored_plugins(ckpt: dict[str, Any]) -> list[str]:
    """The plugins a checkpoint says it was trained with: shown to the user, never loaded."""
    stored = ckpt.get("ganlab_plugins")
    names = stored if isinstance(stored, list) else []
    return [p for p in names if isinstance(p, str) and re.fullmatch(r"[A-Za-z_][\w.]{0,100}", p)][:8]


def _unregistered(
    where: str, key: str, target: Any, kinds: tuple[str, ...], stored: list[str]
) -> CheckpointError:
    """A name that is not registered. If it looks like a plugin's class, the one line says which
    plugin to pass (from the checkpoint's own informational list, shown, never loaded)."""
    shown = repr(target)[:120] if isinstance(target, str) else type(target).__name__
    builtin = [n for kind in kinds for n in registry.names(kind) if registry.is_builtin(kind, n)]
    plain = isinstance(target, str) and re.fullmatch(r"[A-Za-z_][\w.]*", target or "") is not None
    if not plain or str(target).startswith(("ganlab.", "torch.", "builtins.", "os.", "subprocess.")):
        return _refuse(where, key, f"names {shown}, which is not one of ganlab's {', '.join(builtin)}")
    module = str(target).rpartition(".")[0]
    what = " or ".join(KIND_WORDS[k] for k in kinds)
    if module in plugins.LOADED:  # the user passed the module: the class is there but not registered
        return CheckpointError(
            f"{where}: {key} names {shown}, which plugin {module} does not register as a {what}; "
            "decorate the class with @register (from ganlab.plugin import register) (nothing was run)"
        )
    return CheckpointError(
        f"{where}: {key} names {shown}, which is not a registered {what}; it comes from a plugin: "
        f"pass plugins=[{','.join(stored or [module])}] (or install the package that provides it) "
        "(nothing was run)"
    )


KIND_WORDS = {"network": "network", "optimizer": "optimizer", "module": "GAN module", "data": "data module"}


def _kwargs(
    cls: type, conf: dict[str, Any], where: str, key: str, int_limit: int | None = None
) -> dict[str, Any]:
    """The plain keyword arguments of ``conf`` for ``cls``; unknown names are refused."""
    accepted = _accepted(cls)
    out = {}
    for name, value in conf.items():
        if name in META_KEYS:
            continue
        if accepted is not None and name not in accepted:
            raise _refuse(where, f"{key}.{name}", f"is not an argument of {cls.__name__}")
        out[name] = _plain(value, where, f"{key}.{name}", INT_LIMITS.get(name, int_limit))
    return out


def _component(conf: Any, where: str, key: str, stored: list[str]) -> tuple[type, bool, dict]:
    cls, partial = _resolve(conf, COMPONENT_KINDS, where, key, stored)
    limit = NETWORK_INT_LIMIT if registry.kind_of(cls) == "network" else None
    return cls, partial, _kwargs(cls, conf, where, key, limit)


def _is_component(value: Any) -> bool:
    return isinstance(value, dict) and "_target_" in value


def _model_parts(ckpt: dict[str, Any], where: str) -> tuple[type, dict[str, Any], dict[str, tuple]]:
    """(module class, plain kwargs, {component: (class, partial, kwargs)}) of the stored model config;
    a component is any sub-config naming a ``_target_`` (generator, discriminator, optimizer, …)."""
    stored = _stored_plugins(ckpt)
    conf = ckpt["ganlab_config"].get("model")
    cls, _ = _resolve(conf, ("module",), where, "model", stored)
    components = {
        name: _component(value, where, f"model.{name}", stored)
        for name, value in conf.items()
        if _is_component(value)
    }
    plain = {k: v for k, v in conf.items() if k not in components}
    return cls, _kwargs(cls, plain, where, "model"), components


def _network_parts(ckpt: dict[str, Any], where: str) -> tuple[str | None, dict[str, tuple]]:
    """(family of ganlab's module, or None for a plugin's, {component: (class, partial, kwargs)}):
    what rebuilding one network needs. A module of ganlab's own is known by name, so nothing of
    Lightning is imported (the tools that only generate); a plugin's module is resolved as in
    training, which imports what it derives from."""
    conf = ckpt["ganlab_config"].get("model")
    family = BUILTIN_MODULES.get(conf.get("_target_")) if isinstance(conf, dict) else None
    if family is None or "ganlab.modules.base" in sys.modules:  # imported already: check it whole
        cls, _, components = _model_parts(ckpt, where)
        return _family(cls), components
    stored = _stored_plugins(ckpt)
    _check_meta(conf, where, "model")
    components = {}
    for name, value in conf.items():
        if _is_component(value):
            components[name] = _component(value, where, f"model.{name}", stored)
        elif not (isinstance(name, str) and name.startswith("_")):
            _plain(value, where, f"model.{name}", INT_LIMITS.get(name))  # unused here, still plain
    return family, components


def builtin_module(ckpt: dict[str, Any]) -> str | None:
    """The family of the checkpoint's GAN module if it is ganlab's own (its networks are all a tool
    needs), else None (a plugin's module, which may generate its own way)."""
    conf = ckpt["ganlab_config"].get("model")
    target = conf.get("_target_") if isinstance(conf, dict) else None
    return BUILTIN_MODULES.get(target) if isinstance(target, str) else None


def check_config(ckpt: dict[str, Any], where: str = "checkpoint") -> None:
    """Refuse (one line) a checkpoint whose stored config names anything but ganlab's own classes."""
    _model_parts(ckpt, where)
    data = ckpt["ganlab_config"].get("data")
    if data is not None:
        _data_parts(data, where, _stored_plugins(ckpt))
    run_id = ckpt.get("wandb_run_id")
    if run_id is not None and not (isinstance(run_id, str) and WANDB_ID.fullmatch(run_id)):
        raise _refuse(where, "wandb_run_id", f"is {str(run_id)[:40]!r}, not a W&B run id")


def _loader_state_problem(value: Any, key: str, depth: int = 0) -> str | None:
    """What is wrong with a data loader's saved state (counts, flags, RNG states), or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if value >= 0 else f"{key} is {value}, not a count"
    if isinstance(value, torch.Tensor):
        ok = value.dtype == torch.uint8 and value.dim() == 1
        return None if ok else f"{key} is a {value.dtype} tensor, not a generator state"
    if isinstance(value, dict) and depth < 8:
        for k, v in value.items():
            if (problem := _loader_state_problem(v, f"{key}.{k}", depth + 1)) is not None:
                return problem
        return None
    return f"{key} is {type(value).__name__} {str(value)[:30]!r}, not a count or a generator state"


def check_resume_state(ckpt: dict[str, Any], where: str = "checkpoint") -> None:
    """Refuse, before Lightning loads it, a data loader state that it would only trip over once
    training runs (a mid-epoch resume restores the sampler lazily, at the first batch): counts
    must be whole numbers ≥ 0 and RNG states uint8 tensors."""
    loops = ckpt.get("loops")
    fit = loops.get("fit_loop") if isinstance(loops, dict) else None
    state = fit.get("state_dict") if isinstance(fit, dict) else None
    loaders = state.get("combined_loader") if isinstance(state, dict) else None
    if loaders is None:
        return
    if not isinstance(loaders, list | tuple):
        raise CheckpointError(
            f"{where}: its data loader state is not a list; the file is damaged or was edited"
        )
    for i, loader in enumerate(loaders):
        problem = _loader_state_problem(loader, f"combined_loader[{i}]")
        if problem is not None:
            raise CheckpointError(
                f"{where}: its data loader state is damaged ({problem}); the file was edited or "
                "damaged (nothing was trained from it)"
            )


FAMILIES = ("DCGAN", "CycleGAN", "Pix2Pix")  # what the tools know how to use


def model_kind(ckpt: dict[str, Any], where: str = "checkpoint") -> str:
    """'CycleGAN', 'DCGAN', 'Pix2Pix': the ganlab module the run's module is or derives from (a
    plugin's ``RelativisticGAN(DCGAN)`` is a DCGAN to the tools); else the class's own name."""
    return _network_parts(ckpt, where)[0]


def _family(cls: type) -> str:
    family = next((c for c in cls.__mro__ if registry.is_builtin("module", registry.name_of(c))), cls)
    return family.__name__


# --- rebuilding networks, the module and the data module ---


def _weights(ckpt: dict[str, Any], prefix: str) -> dict[str, torch.Tensor]:
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError("checkpoint has no state_dict; was it written by ganlab.train?")
    return {
        k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and isinstance(v, torch.Tensor)
    }


def _meta_shapes(cls: type, kwargs: dict[str, Any], where: str, key: str) -> dict[str, torch.Size]:
    """Shapes of the network's state, built on the meta device (no memory, no weights)."""
    try:
        with torch.device("meta"):
            probe = cls(**kwargs)
    except Exception as e:
        raise _refuse(where, key, f"does not build a {cls.__name__} ({' '.join(str(e).split())})") from None
    return {k: v.shape for k, v in probe.state_dict().items()}


def has_ema(ckpt: dict[str, Any], prefix: str) -> bool:
    """Whether the checkpoint holds an EMA copy of the network under ``prefix`` (``generator.``)."""
    ema = prefix.rstrip(".") + "_ema."
    return any(k.startswith(ema) for k in (ckpt.get("state_dict") or {}))


def weights_prefix(ckpt: dict[str, Any], prefix: str, ema: bool = True) -> str:
    """Where a generator's weights are read: its EMA copy (``generator_ema.``) when ``ema`` and the
    checkpoint holds one (the averaged weights the run's panels and FID used), else ``prefix``."""
    return prefix.rstrip(".") + "_ema." if ema and has_ema(ckpt, prefix) else prefix


def build_network(ckpt: dict[str, Any], key: str, prefix: str, where: str = "checkpoint") -> nn.Module:
    """The network ``model.<key>`` of the checkpoint's config, with the weights under ``prefix``."""
    _, components = _network_parts(ckpt, where)
    if key not in components:
        raise _refuse(where, f"model.{key}", "is missing")
    cls, _, kwargs = components[key]
    state = _weights(ckpt, prefix)
    differ = first_difference(_meta_shapes(cls, kwargs, where, f"model.{key}"), state)
    if differ is not None:
        raise CheckpointError(
            f"{where}: the weights under {prefix!r} do not fit model.{key} as configured "
            f"(first difference: {differ!r}); the file is damaged or was edited"
        )
    net = cls(**kwargs)
    net.load_state_dict(state)
    return net.eval()


def _factory(cls: type, partial: bool, kwargs: dict[str, Any]) -> Any:
    if registry.kind_of(cls) == "optimizer":
        return functools.partial(cls, **kwargs)  # the module supplies params and lr
    return functools.partial(cls, **kwargs) if partial else cls(**kwargs)


def build_module(ckpt: dict[str, Any], where: str = "checkpoint") -> nn.Module:
    """The run's LightningModule with its weights, rebuilt from the registry (evaluation)."""
    cls, kwargs, components = _model_parts(ckpt, where)
    state = ckpt.get("state_dict") or {}
    in_file = sum(v.numel() for v in state.values() if isinstance(v, torch.Tensor))
    wanted = 0
    for name, (ncls, partial, nkw) in components.items():
        if registry.kind_of(ncls) == "network":
            copies = 2 if partial else 1  # CycleGAN builds two of each from one partial config
            wanted += copies * sum(
                s.numel() for s in _meta_shapes(ncls, nkw, where, f"model.{name}").values()
            )
    if wanted > in_file:
        raise CheckpointError(
            f"{where}: model config asks for {wanted:,} weights but the file holds {in_file:,}; "
            "the file is damaged or was edited"
        )
    parts = {name: _factory(*spec) for name, spec in components.items()}
    try:
        module = cls(**kwargs, **parts)
        module.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(
            f"{where}: cannot rebuild its model ({' '.join(str(e).split())[:300]})"
        ) from None
    return module


def _data_parts(conf: Any, where: str, stored: list[str] | None = None) -> tuple[type, dict[str, Any]]:
    cls, _ = _resolve(conf, ("data",), where, "data", stored)
    kept = {k: v for k, v in conf.items() if k not in NOT_FROM_FILES}
    return cls, _kwargs(cls, kept, where, "data")


def plain_data_class(target: Any) -> type | None:
    """The plain data set (no Lightning) of ganlab's own data module named ``target``, else None."""
    plain = BUILTIN_DATA.get(target) if isinstance(target, str) else None
    if plain is None:
        return None
    module, _, name = plain.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _plain_data_parts(conf: Any, where: str) -> tuple[type, dict[str, Any]] | None:
    """(plain data set class, kwargs) for ganlab's own data modules, found by exact name in
    ``BUILTIN_DATA`` (a table of ganlab's, never a name the file chooses); None for others."""
    cls = plain_data_class(conf.get("_target_") if isinstance(conf, dict) else None)
    if cls is None:
        return None
    _check_meta(conf, where, "data")
    kept = {k: v for k, v in conf.items() if k not in NOT_FROM_FILES}
    return cls, _kwargs(cls, kept, where, "data")


def build_datamodule(
    ckpt: dict[str, Any], data_dir: str | None, where: str = "checkpoint", plain: bool = False
) -> Any:
    """The run's DataModule from the stored config; downloads only from ganlab's official sources,
    into ``data_dir`` (the user's option, never the folder the file names). ``plain``: ganlab's own
    data set without Lightning (``ganlab.data.sets``, the same code), for tools that only read it;
    a plugin's data module is its registered class either way."""
    conf = ckpt["ganlab_config"].get("data")
    parts = _plain_data_parts(conf, where) if plain else None
    cls, kwargs = parts or _data_parts(conf, where, _stored_plugins(ckpt))
    if "data_dir" in kwargs:
        kwargs["data_dir"] = data_dir if data_dir is not None else "data"
    return cls(**kwargs)


def stored_int(ckpt: dict[str, Any], section: str, key: str, where: str = "checkpoint") -> int:
    """A bounded integer of the stored config (e.g. ``data.crop_size``)."""
    value = ckpt["ganlab_config"].get(section, {}).get(key)
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 1 <= value <= INT_LIMITS.get(key, 1 << 16)
    ):
        raise _refuse(where, f"{section}.{key}", f"is {value!r}, not a size ganlab writes")
    return value


def resume_info(ckpt_path: str | None) -> dict[str, Any]:
    """What ``train`` needs from the checkpoint it resumes, before Lightning loads it: the file is
    refused if it names code or its state cannot be restored (one line, nothing trained). The
    preflight and the run ask for the same file: it is read once (per size and mtime)."""
    if ckpt_path is None:
        return {}
    try:
        stat = Path(ckpt_path).stat()
    except OSError:
        return _resume_info(ckpt_path, 0, 0)  # load_checkpoint says what is wrong with the path
    return dict(_resume_info(ckpt_path, stat.st_size, stat.st_mtime_ns))


@functools.cache
def _resume_info(ckpt_path: str, size: int, mtime_ns: int) -> dict[str, Any]:
    ckpt = load_checkpoint(ckpt_path, option="ckpt_path")
    check_config(ckpt, f"ckpt_path={ckpt_path}")  # a file that names code is refused, not trained on
    check_resume_state(ckpt, f"ckpt_path={ckpt_path}")  # the state Lightning restores lazily, mid-run
    iteration = ckpt.get("iteration")
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        raise CheckpointError(
            f"ckpt_path={ckpt_path} has no iteration count; was it written by ganlab.train?"
        )
    return {"wandb_run_id": ckpt.get("wandb_run_id"), "iteration": iteration}
