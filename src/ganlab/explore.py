# ruff: noqa: E402  (--help is answered before the heavy imports below)
"""Latent interpolation and DCGAN vector arithmetic from a checkpoint.

python -m ganlab.explore mode=interpolate ckpt=<file> seeds=[0,1,2] steps=8 method=slerp output=<file.png>
python -m ganlab.explore mode=arithmetic ckpt=<file> seed=0 a=[..] b=[..] c=[..] output=<file.png>
Conditional models: class=<k> fixes the class; mode=interpolate classes=[3,8] walks between classes
at the fixed z of seeds[0].
"""

from __future__ import annotations

from ganlab.cli import answer_help

answer_help("explore", __doc__, __name__)  # before torch is imported

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from PIL import Image, ImageDraw
from torch import Tensor
from torchvision.utils import make_grid

from ganlab.cli import one_line_errors, pick_device, run_cli
from ganlab.errors import ConfigError
from ganlab.generate import save_images
from ganlab.latent import (
    arithmetic,
    class_index,
    class_path,
    interpolation_path,
    latents,
    load_generator,
    render,
)
from ganlab.outputs import check_new_files, write_image
from ganlab.train import CONFIG_DIR


def labelled_grid(images: Tensor, path: Path, nrow: int = 8, scale: int = 3) -> None:
    """A grid with each image's index printed in its corner, enlarged so the numbers are legible."""
    grid = make_grid(images.add(1.0).div(2.0).clamp(0.0, 1.0), nrow=nrow, padding=2)
    array = grid.mul(255).round().byte().permute(1, 2, 0).numpy()
    picture = Image.fromarray(array).convert("RGB")
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    h, w = images.shape[-2:]
    for i in range(len(images)):
        x = (2 + (i % nrow) * (w + 2)) * scale
        y = (2 + (i // nrow) * (h + 2)) * scale
        draw.rectangle([x, y, x + 6 * len(str(i)) + 3, y + 11], fill=(0, 0, 0))
        draw.text((x + 2, y), str(i), fill=(255, 255, 0))
    write_image(picture, path)


def fixed_class(cfg: DictConfig, generator: torch.nn.Module, n: int) -> Tensor | None:
    """Labels for a walk or sum at one class (``class=``); required by a conditional model."""
    if cfg.get("class") is None:
        if generator.num_classes:
            raise ConfigError(
                f"ckpt={cfg.ckpt} is conditional ({generator.num_classes} classes): give class=<k> "
                "(or mode=interpolate classes=[a,b] to walk between classes at a fixed z)"
            )
        return None
    return torch.full((n,), class_index(cfg.get("class"), generator), dtype=torch.long)


def interpolate(cfg: DictConfig) -> Path:
    """Latent walks at a fixed class, or (``classes=[a,b,...]``) class walks at the fixed z of seeds[0]."""
    check_new_files([Path(cfg.output)], bool(cfg.overwrite))
    generator = load_generator(cfg.ckpt, pick_device(cfg.device), bool(cfg.ema))
    if cfg.get("classes"):
        classes = [class_index(c, generator, "classes") for c in cfg.classes]
        if len(classes) < 2 or cfg.steps < 2:
            raise ConfigError("classes=[a,b,...] needs at least two classes and steps ≥ 2")
        y = class_path(classes, cfg.steps, generator.num_classes)
        z = latents(cfg.seeds[0], 1, generator.latent_dim).expand(len(y), -1)
    else:
        z = interpolation_path(list(cfg.seeds), cfg.steps, cfg.method, generator.latent_dim)
        y = fixed_class(cfg, generator, len(z))
    return save_images(render(generator, z, y=y), Path(cfg.output), nrow=cfg.steps)[0]


def vector_arithmetic(cfg: DictConfig) -> tuple[Path, Path]:
    """Reference grid (indexed) beside the output; output rows: G(mean a), G(mean b), G(mean c),
    G(a − b + c), then perturbations of a − b + c."""
    output = Path(cfg.output)
    ref_path = output.with_name(f"{output.stem}_reference{output.suffix or '.png'}")
    check_new_files([output, ref_path], bool(cfg.overwrite))
    generator = load_generator(cfg.ckpt, pick_device(cfg.device), bool(cfg.ema))
    reference = latents(cfg.seed, cfg.n, generator.latent_dim)
    result = arithmetic(reference, list(cfg.a), list(cfg.b), list(cfg.c))
    labelled_grid(render(generator, reference, y=fixed_class(cfg, generator, len(reference))), ref_path)
    means = torch.stack([reference[list(g)].mean(0) for g in (cfg.a, cfg.b, cfg.c)])
    noise = torch.randn(cfg.perturbations, len(result), generator=torch.Generator().manual_seed(cfg.seed + 1))
    z = torch.cat([means, result[None], result + cfg.noise * noise])
    save_images(render(generator, z, y=fixed_class(cfg, generator, len(z))), output, nrow=4)
    return output, ref_path


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="explore")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    if cfg.mode == "interpolate":
        print(f"wrote {interpolate(cfg)}")
    elif cfg.mode == "arithmetic":
        output, ref = vector_arithmetic(cfg)
        print(f"wrote {output} (reference grid with indices: {ref})")
    else:
        raise ConfigError(f"mode={cfg.mode} must be interpolate or arithmetic")


def main() -> None:
    run_cli(_hydra_main, tool="explore", doc=__doc__)


if __name__ == "__main__":
    main()
