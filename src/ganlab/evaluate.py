# ruff: noqa: E402  (--help is answered before the heavy imports below)
"""FID and KID of a checkpoint or of two image folders, printed as one JSON object.

python -m ganlab.evaluate ckpt=<last.ckpt> [metrics.reference=test]
python -m ganlab.evaluate real=<dir> fake=<dir> [metrics.fid.weights_path=<file>]
python -m ganlab.evaluate ckpt=<latest_net_G_A.pth | last.ckpt> input=<dir> real=<dir> [direction=BtoA]

Add metrics.prc=true (precision/recall, VGG-16) or metrics.isc=true (Inception Score) to any form.

The third form translates ``input`` (as ``translate`` does at ``size=crop``) and scores the
translations against ``real``: for official generator files, which carry no data config.
"""

from __future__ import annotations

from ganlab.cli import answer_help

answer_help("evaluate", __doc__, __name__)  # before torch is imported

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from PIL import Image
from torch import Tensor, nn
from torchvision.transforms.v2 import functional as TF

from ganlab.checkpoint import (
    build_datamodule,
    build_module,
    build_network,
    builtin_module,
    is_ganlab,
    load_checkpoint,
    model_kind,
    read_torch_file,
    weights_prefix,
)
from ganlab.cli import one_line_errors, pick_device, run_cli
from ganlab.data.images import load_rgb, readable_images
from ganlab.errors import CheckpointError, ConfigError, GanlabError, raise_all
from ganlab.metrics.evaluator import FIDEvaluator, generated_batches
from ganlab.metrics.inception import MissingWeightsError, resolve_weights
from ganlab.metrics.lpips import Lpips, resolve_alexnet
from ganlab.metrics.paired import paired_scores
from ganlab.metrics.vgg import resolve_vgg16
from ganlab.modules.scoring import generate_latents, latent_sources, no_classes, paper_test_time
from ganlab.official import resolve_model
from ganlab.pixels import to_model_range
from ganlab.reference import Reference
from ganlab.train import CONFIG_DIR
from ganlab.translate import load_translator, run_generator


def folder_images(folder: Path, name: str) -> list[Tensor]:
    """uint8 (3, H, W) images of a folder (RGB-converted), in file-name order."""
    return [TF.pil_to_tensor(load_rgb(p)) for p in readable_images(folder, name, at_least=2)]


def same_size_batches(images: list[Tensor], batch_size: int) -> Iterator[Tensor]:
    """Consecutive images of one size stacked, at most ``batch_size`` at a time."""
    batch: list[Tensor] = []
    for image in images:
        if batch and (image.shape != batch[0].shape or len(batch) == batch_size):
            yield torch.stack(batch)
            batch = []
        batch.append(image)
    if batch:
        yield torch.stack(batch)


def _evaluator(cfg: DictConfig, device: torch.device) -> FIDEvaluator:
    m = cfg.metrics
    if not m:
        raise ConfigError("metrics=none leaves nothing to evaluate; drop that override")
    found: dict[str, Path] = {}
    problems: list[GanlabError] = []  # every missing weights file named at once, as training's preflight
    wanted = {
        "inception": lambda: resolve_weights(  # evaluate is FID: no advice to turn it off
            m.fid.weights_path, allow_other=bool(m.fid.allow_other_weights), off=None
        )
    }
    if m.get("prc"):
        wanted["vgg"] = lambda: resolve_vgg16((m.get("vgg") or {}).get("weights_path"))
    for name, resolve in wanted.items():
        try:
            found[name] = resolve()
        except GanlabError as e:
            problems.append(e)
    raise_all(problems, MissingWeightsError)
    return FIDEvaluator(
        found["inception"], m.cache_dir, device, dim=int(m.fid.feature), batch_size=int(m.batch_size),
        kid_subsets=int(m.kid.subsets), kid_subset_size=int(m.kid.subset_size),
        vgg_weights=found.get("vgg"), isc=bool(m.get("isc", False)),
    )  # fmt: skip


def evaluate_folders(cfg: DictConfig) -> dict[str, Any]:
    device = pick_device(cfg.device)
    real, fake = folder_images(Path(cfg.real), "real"), folder_images(Path(cfg.fake), "fake")
    evaluator = _evaluator(cfg, device)
    # folders may mix sizes: features per same-size batch; the extractor resizes to 299
    evaluator.set_reference_batches("folders", same_size_batches(real, evaluator.batch_size))
    result = evaluator.score("folders", same_size_batches(fake, evaluator.batch_size))
    return {**result, "protocol": {**evaluator.protocol(), "real": str(cfg.real), "fake": str(cfg.fake)}}


def evaluate_translation(cfg: DictConfig) -> dict[str, Any]:
    """FID/KID of ``input`` translated by ``ckpt``'s generator against the images of ``real``."""
    device = pick_device(cfg.device)
    translator = load_translator(cfg, device)
    sources = readable_images(Path(cfg.input), "input", at_least=2)
    real = folder_images(Path(cfg.real), "real")
    evaluator = _evaluator(cfg, device)
    evaluator.set_reference_batches("translation", same_size_batches(real, evaluator.batch_size))
    crop = translator.crop

    def translated() -> Iterator[Tensor]:
        for start in range(0, len(sources), evaluator.batch_size):
            batch = [
                load_rgb(p).resize((crop, crop), Image.BICUBIC)
                for p in sources[start : start + evaluator.batch_size]
            ]
            yield run_generator(translator.net, torch.stack([TF.pil_to_tensor(b) for b in batch]).to(device))

    result = evaluator.score("translation", translated())
    protocol = {**evaluator.protocol(), "ckpt": str(cfg.ckpt), "generator": translator.what,
                "input": str(cfg.input), "real": str(cfg.real)}  # fmt: skip
    return {**result, "protocol": protocol}


def _lpips(cfg: DictConfig, device: torch.device) -> Lpips | None:
    conf = cfg.metrics.get("lpips") or {}
    if not conf.get("enabled", True):
        return None
    return Lpips(resolve_alexnet(conf.get("weights_path"))).to(device)


def _reference(cfg: DictConfig, ckpt: dict[str, Any]) -> str:
    """``metrics.reference`` as given on the command line, else the one the run was scored with."""
    given = HydraConfig.initialized() and any(
        o.startswith("metrics.reference=") for o in HydraConfig.get().overrides.task
    )
    stored = (ckpt["ganlab_config"].get("metrics") or {}).get("reference")
    return stored if not given and stored in ("train", "test") else cfg.metrics.reference


@dataclass
class Scoring:
    """What scoring needs of a checkpoint's GAN module: its FID sources, how it generates from them,
    and whether it has classes. ganlab's own modules are scored from their networks alone, with the
    functions the modules use (``modules.scoring``), so no Lightning is imported; a plugin's module
    is rebuilt whole, since it may score its own way."""

    sources: Callable[[Any, int, bool], dict[str, Tensor]]  # (data, num_fake, per_class) → sources
    generate: Callable[[str, Tensor], Tensor]  # (key, batch on the device) → images in [−1, 1]
    conditional: bool


def _scoring_from_networks(
    ckpt: dict[str, Any], cfg: DictConfig, family: str, device: torch.device
) -> Scoring:
    where, ema = f"ckpt={cfg.ckpt}", bool(cfg.get("ema", True))

    def network(prefix: str) -> nn.Module:  # the EMA copy when there is one and ema=true, as the run
        return build_network(ckpt, "generator", weights_prefix(ckpt, prefix, ema), where).to(device)

    if family == "DCGAN":
        net = network("generator.")
        k = getattr(net, "num_classes", None)
        return Scoring(
            lambda data, n, per_class: latent_sources(net.latent_dim, k, n, per_class),
            lambda key, source: generate_latents(net, source, k),
            conditional=bool(k),
        )
    if family == "CycleGAN":
        g, f = network("g_a."), network("g_b.")
        return Scoring(
            _source_images("CycleGAN"),
            lambda key, images: (g if key == "a2b" else f)(to_model_range(images)),
            conditional=False,
        )
    net, seed = network("generator."), _stored_seed(ckpt, where)  # pix2pix: no EMA copy
    return Scoring(
        _source_images("pix2pix"),
        lambda key, images: paper_test_time(net, to_model_range(images), seed, device),
        conditional=False,
    )


def _source_images(family: str) -> Callable[[Any, int, bool], dict[str, Tensor]]:
    """A translation model's FID sources: every evaluation image of its source domain(s)."""

    def sources(data: Any, num_fake: int, per_class: bool) -> dict[str, Tensor]:
        no_classes(per_class, family)
        return data.fid_sources()

    return sources


def _stored_seed(ckpt: dict[str, Any], where: str) -> int:
    """The run's ``model.seed`` (pix2pix's test-time dropout masks), 0 when absent as the class's."""
    seed = ckpt["ganlab_config"]["model"].get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise CheckpointError(f"{where}: model.seed is {seed!r}, not an integer; the file was edited")
    return seed


def _scoring_of_module(ckpt: dict[str, Any], cfg: DictConfig, device: torch.device) -> Scoring:
    module = build_module(ckpt, f"ckpt={cfg.ckpt}").to(device).eval()  # a plugin's: imports Lightning
    module.use_ema = bool(cfg.get("ema", True))
    return Scoring(
        lambda data, n, per_class: module.fid_sources(data, n, per_class=per_class),
        module.fid_generate,
        conditional=bool(getattr(module, "num_classes", None)),
    )


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    ckpt = load_checkpoint(cfg.ckpt)
    where = f"ckpt={cfg.ckpt}"
    device = pick_device(cfg.device)
    family = model_kind(ckpt, where)  # its networks checked, then the weights: both before building
    evaluator = _evaluator(cfg, device)
    own = builtin_module(ckpt)
    scoring = (
        _scoring_from_networks(ckpt, cfg, family, device) if own else _scoring_of_module(ckpt, cfg, device)
    )
    data_dir = cfg.data_dir if cfg.data_dir is not None else cfg.paths.data_dir  # the user's, not the file's
    datamodule = build_datamodule(ckpt, data_dir, where, plain=True)  # ganlab's: no Lightning
    m = cfg.metrics
    per_class = bool(m.get("per_class"))  # conditional DCGAN: FID per class
    if per_class and scoring.conditional:
        datamodule.use_labels()
    datamodule.prepare_data()
    datamodule.setup("fit")
    reference = _reference(cfg, ckpt)
    sources = scoring.sources(datamodule, int(cfg.num_fake or m.num_fake), per_class)
    extra = {"per_class": True} if per_class else {}  # the translation data sets take no per_class
    refs: dict[str, Reference] = datamodule.fid_references(reference, m.num_real, **extra)
    results: dict[str, Any] = {}
    with torch.no_grad():
        for key, source in sources.items():
            evaluator.set_reference(key, refs[key])
            make = lambda batch, key=key: scoring.generate(key, batch.to(device))  # noqa: E731
            results[key or "all"] = evaluator.score(
                key, generated_batches(make, source, evaluator.batch_size)
            )
        if getattr(datamodule, "batch_kind", None) == "paired":  # pix2pix: each translation vs its target
            make = lambda batch: scoring.generate("a2b", batch)  # noqa: E731
            lpips = _lpips(cfg, device)
            results["a2b"] |= paired_scores(make, *datamodule.pairs(), evaluator.batch_size, device, lpips)
    protocol = {
        **evaluator.protocol(),
        "reference": reference,
        "ckpt": str(cfg.ckpt),
        "cache": evaluator.cache_hits,
    }
    if list(results) == ["all"]:
        return {**results["all"], "iteration": ckpt.get("iteration"), "protocol": protocol}
    return {**results, "iteration": ckpt.get("iteration"), "protocol": protocol}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """The scores of whichever of the three forms ``cfg`` gives (see the module docstring)."""
    if cfg.ckpt is not None and cfg.input is not None and cfg.real is not None and cfg.fake is None:
        return evaluate_translation(cfg)
    if cfg.ckpt is not None and cfg.real is None and cfg.fake is None:
        if not is_ganlab(read_torch_file(resolve_model(cfg.ckpt))):
            raise ConfigError(
                f"ckpt={cfg.ckpt} is not a ganlab checkpoint, so it names no data to score on; give "
                "input=<source images> real=<target images> (an official generator file is translated "
                "and scored)"
            )
        return evaluate_checkpoint(cfg)
    if cfg.ckpt is None and cfg.real is not None and cfg.fake is not None:
        return evaluate_folders(cfg)
    raise ConfigError(
        "give ckpt=<file>, or both real=<dir> fake=<dir>, or ckpt=<generator> input=<dir> real=<dir>"
    )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    print(json.dumps(evaluate(cfg)))


def main() -> None:
    run_cli(_hydra_main, tool="evaluate", doc=__doc__)


if __name__ == "__main__":
    main()
