"""Translate a folder of images with a CycleGAN checkpoint, keeping file names.

python -m ganlab.translate ckpt=<last.ckpt> input=<dir> output=<dir> direction=AtoB|BtoA [size=native]
"""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from PIL import Image
from torch import Tensor, nn
from torchvision.transforms.v2 import functional as TF

from ganlab.checkpoint import build_network, load_checkpoint, model_kind
from ganlab.cli import pick_device, run_cli
from ganlab.data.images import load_rgb, readable_images
from ganlab.errors import ConfigError
from ganlab.train import CONFIG_DIR


@torch.no_grad()
def run_generator(net: nn.Module, images: Tensor) -> Tensor:
    """uint8 (B, 3, H, W) → uint8 (B, 3, H, W); reflection-pads H, W to multiples of 4 and crops back."""
    h, w = images.shape[-2:]
    pad_h, pad_w = -h % 4, -w % 4
    x = images.float().div(127.5).sub(1.0)
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    y = net(x)[..., :h, :w]
    return y.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def translate_folder(cfg: DictConfig) -> int:
    """Translate every image below ``cfg.input`` into ``cfg.output``; returns the count."""
    if cfg.direction not in ("AtoB", "BtoA"):
        raise ConfigError(f"direction={cfg.direction} must be AtoB or BtoA")
    if cfg.size not in ("crop", "native"):
        raise ConfigError(f"size={cfg.size} must be crop (the trained size) or native")
    ckpt = load_checkpoint(cfg.ckpt)
    if model_kind(ckpt) != "CycleGAN":
        raise ConfigError(
            f"ckpt={cfg.ckpt} is a {model_kind(ckpt)} checkpoint; translate needs a CycleGAN one"
        )
    device = pick_device(cfg.device)
    net = build_network(ckpt, "generator", "g_a." if cfg.direction == "AtoB" else "g_b.").to(device)
    src, dst = Path(cfg.input), Path(cfg.output)
    paths = readable_images(src, "input")
    crop = int(ckpt["ganlab_config"]["data"]["crop_size"])
    batch: list[tuple[Path, Tensor]] = []
    for i, path in enumerate(paths):
        image = TF.pil_to_tensor(load_rgb(path))
        if cfg.size == "crop":
            image = TF.resize(image, [crop, crop], interpolation=TF.InterpolationMode.BICUBIC)
        batch.append((path, image))
        last = i == len(paths) - 1
        if len(batch) == cfg.batch_size or last or cfg.size == "native":  # native: sizes differ
            _write(net, batch, src, dst, device)
            batch = []
    return len(paths)


def _write(
    net: nn.Module, batch: list[tuple[Path, Tensor]], src: Path, dst: Path, device: torch.device
) -> None:
    out = run_generator(net, torch.stack([image for _, image in batch]).to(device)).cpu()
    for (path, _), image in zip(batch, out, strict=True):
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(target, quality=95)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="translate")
def _hydra_main(cfg: DictConfig) -> None:
    count = translate_folder(cfg)
    print(f"translated {count} image(s) {cfg.direction} into {cfg.output}")


def main() -> None:
    run_cli(_hydra_main)


if __name__ == "__main__":
    main()
