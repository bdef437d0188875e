# ruff: noqa: E402  (--help is answered before the heavy imports below)
"""Samples from a DCGAN checkpoint: one PNG each in a folder, or one grid.

python -m ganlab.generate ckpt=<last.ckpt> n=64 seed=0 output=<dir>|<file.png>
python -m ganlab.generate ckpt=<conditional last.ckpt> class=7|class=<name>|class=all n=8 output=grid.png
"""

from __future__ import annotations

from ganlab.cli import answer_help

answer_help("generate", __doc__, __name__)  # before torch is imported

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

from ganlab.cli import one_line_errors, pick_device, run_cli
from ganlab.errors import ConfigError
from ganlab.latent import class_labels, latents, load_generator, render
from ganlab.outputs import check_new_files, write_image
from ganlab.train import CONFIG_DIR


def output_paths(output: Path, n: int) -> list[Path]:
    """The files ``save_images`` writes: the grid itself, or ``00000.png`` ... in the folder."""
    if output.suffix.lower() == ".png":
        return [output]
    return [output / f"{i:05d}.png" for i in range(n)]


def save_images(images: Tensor, output: Path, nrow: int = 8) -> list[Path]:
    """Images in [−1, 1] → one grid (output ends in .png) or numbered PNGs in a folder, each file
    whole or not at all (``write_image``)."""
    images = images.add(1.0).div(2.0).clamp(0.0, 1.0)
    paths = output_paths(output, len(images))
    if output.suffix.lower() == ".png":
        write_image(to_picture(make_grid(images, nrow=nrow, padding=2)), output)
        return paths
    if output.exists() and not output.is_dir():
        raise ConfigError(
            f"output={output} is a file, not a folder; end it in .png for one grid, or choose a folder"
        )
    for image, path in zip(images, paths, strict=True):
        write_image(to_picture(image), path)
    return paths


def to_picture(image: Tensor) -> Image.Image:
    """A (C, H, W) image in [0, 1] as an 8-bit PIL image (torchvision's save_image rounding)."""
    array = image.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8).numpy()
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def generate(cfg: DictConfig) -> list[Path]:
    """n samples; a conditional model: of ``class`` (index or name), or ``class=all``: n of each
    class, one row per class in a grid (the same n latents in every row)."""
    if cfg.n < 1:
        raise ConfigError(f"n={cfg.n} must be ≥ 1")
    generator = load_generator(cfg.ckpt, pick_device(cfg.device), bool(cfg.ema))
    labels = class_labels(cfg.get("class"), generator, cfg.n, cfg.seed)
    z, nrow = latents(cfg.seed, cfg.n, generator.latent_dim), cfg.nrow
    if cfg.get("class") == "all":
        z, nrow = z.repeat(generator.num_classes, 1), cfg.n
    check_new_files(output_paths(Path(cfg.output), len(z)), bool(cfg.overwrite))
    return save_images(render(generator, z, cfg.batch_size, labels), Path(cfg.output), nrow)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="generate")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    paths = generate(cfg)
    where = paths[0] if len(paths) == 1 else paths[0].parent
    print(f"wrote {len(paths)} file(s) (seed {cfg.seed}) to {where}")


def main() -> None:
    run_cli(_hydra_main, tool="generate", doc=__doc__)


if __name__ == "__main__":
    main()
