# ruff: noqa: E402  (--help is answered before the heavy imports below)
"""Translate images with a CycleGAN or pix2pix checkpoint or an official generator file, keeping names.

python -m ganlab.translate ckpt=<last.ckpt | latest_net_G_A.pth> input=<image | dir | glob>
    output=<dir | file> [direction=AtoB|BtoA] [size=native [tile=512]] [overwrite=true]

An official weight file holds one generator, so ``direction`` does not apply to it; it runs as the
official ``test.py --model test --no_dropout`` does (PIL bicubic resize to ``crop_size``, batch
norm on each image's own statistics). Outputs are rounded to the nearest grey level where the
official code truncates: they differ from the official files by at most 1 (tested).

``output`` may not be ``input`` or lie inside it (or around it), and existing files are never
replaced, unless ``overwrite=true``. At ``size=native`` the memory an image needs is estimated
first; a photo too large for it is refused with the largest size that fits, or translated in
overlapping tiles (``tile=<px>``) whose seams are blended.
"""

from __future__ import annotations

from ganlab.cli import answer_help

answer_help("translate", __doc__, __name__)  # before torch is imported

import glob
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from PIL import Image
from torch import Tensor, nn

from ganlab.checkpoint import (
    build_network,
    is_ganlab,
    model_kind,
    read_torch_file,
    stored_int,
    weights_prefix,
)
from ganlab.cli import one_line_errors, pick_device, run_cli
from ganlab.data.images import IMG_EXTENSIONS, find_unreadable, image_size, list_images, load_rgb
from ganlab.errors import CheckpointError, ConfigError, DataError
from ganlab.modules.shapes import DoesNotFit, first_conv_channels, keeps_size, nearby_sizes, on_meta
from ganlab.official import build_official, is_state_dict, official_inference, resolve_model
from ganlab.outputs import check_apart, check_new_files, write_image
from ganlab.train import CONFIG_DIR

# bytes per pixel of inference, per channel of the network's first layer (measured on the CPU for
# ResNet-9 at 512 and 1024 px: ~3.7 float32 tensors of that width alive at the peak), with headroom
BYTES_PER_PIXEL_PER_CHANNEL = 4 * 4.5


@torch.no_grad()
def _forward(net: nn.Module, images: Tensor) -> Tensor:
    """uint8 (B, 3, H, W) → float (B, 3, H, W) in [−1, 1]; H, W reflection-padded to multiples of 4."""
    h, w = images.shape[-2:]
    pad_h, pad_w = -h % 4, -w % 4
    x = images.float().div(127.5).sub(1.0)
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    return net(x)[..., :h, :w].float()


def _to_uint8(y: Tensor) -> Tensor:
    return y.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def run_generator(net: nn.Module, images: Tensor) -> Tensor:
    """uint8 (B, 3, H, W) → uint8 (B, 3, H, W)."""
    return _to_uint8(_forward(net, images))


def _starts(n: int, tile: int, step: int) -> list[int]:
    if n <= tile:
        return [0]
    return [*range(0, n - tile, step), n - tile]


def _ramp(n: int, overlap: int, device: torch.device) -> Tensor:
    """Blending weights along one side of a tile: rising over ``overlap`` pixels at each end, > 0."""
    t = torch.arange(n, device=device, dtype=torch.float32)
    return torch.minimum((t + 1) / (overlap + 1), (n - t) / (overlap + 1)).clamp(max=1.0)


def _coverage(n: int, tile: int, step: int, overlap: int, device: torch.device) -> Tensor:
    """Sum of the ramps of every tile along one side: the blending weight there, > 0 everywhere."""
    total = torch.zeros(n, device=device)
    for start in _starts(n, tile, step):
        length = min(tile, n - start)
        total[start : start + length] += _ramp(length, overlap, device)
    return total


def run_tiled(net: nn.Module, image: Tensor, tile: int, overlap: int) -> Tensor:
    """uint8 (1, 3, H, W) → uint8 (1, 3, H, W), translated in ``tile``-px tiles overlapping by
    ``overlap`` px and blended with linear ramps (a weighted mean where tiles overlap).

    Memory beyond the tiles' own: one float32 accumulator of the image (12 bytes a pixel) and the
    uint8 result. Tiles form a grid of rows × columns, so the summed weights are the product of a
    per-row and a per-column sum: no full-size weight image, and the division and the conversion to
    uint8 run in place, row band by row band.
    """
    h, w = image.shape[-2:]
    step = max(1, tile - overlap)
    total = torch.zeros(1, 3, h, w, device=image.device)
    for top in _starts(h, tile, step):
        for left in _starts(w, tile, step):
            patch = image[..., top : top + tile, left : left + tile]
            ph, pw = patch.shape[-2:]
            ramp = _ramp(ph, overlap, image.device)[:, None] * _ramp(pw, overlap, image.device)[None, :]
            total[..., top : top + ph, left : left + pw] += _forward(net, patch) * ramp
    rows = _coverage(h, tile, step, overlap, image.device)
    cols = _coverage(w, tile, step, overlap, image.device)
    out = torch.empty(1, 3, h, w, dtype=torch.uint8, device=image.device)
    for top in range(0, h, 256):  # in place, a band at a time: no full-size float temporaries
        band = total[..., top : top + 256, :]
        band.div_(rows[top : top + 256, None] * cols[None, :])
        out[..., top : top + 256, :] = band.add_(1.0).mul_(127.5).round_().clamp_(0, 255)
    return out


# bytes per pixel of the whole image at size=native, beyond the network's own: the decoded photo
# and its tensor (uint8), the tiled accumulator (float32), the uint8 result and the image written
FULL_IMAGE_BYTES_PER_PIXEL = 3 + 3 + 12 + 3 + 3


def bytes_needed(net: nn.Module, height: int, width: int) -> int:
    """Estimated peak memory of one forward pass at (height, width)."""
    first = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    return int(BYTES_PER_PIXEL_PER_CHANNEL * first.out_channels * (height + 3) * (width + 3))


def memory_budget(device: torch.device, max_memory_gb: float | None) -> int:
    """``max_memory_gb``, else 80 % of the memory available now on ``device``."""
    if max_memory_gb is not None:
        return int(max_memory_gb * 1e9)
    if device.type == "cuda":
        return int(0.8 * torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(0.8 * int(info["MemAvailable"].split()[0]) * 1024)
    except (OSError, KeyError, ValueError):
        return int(0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _size(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def check_fits(net: nn.Module, path: Path, height: int, width: int, budget: int, tile: int | None) -> None:
    """One line, before the image is decoded, when it would not fit in ``budget`` bytes: the whole
    image's buffers (``FULL_IMAGE_BYTES_PER_PIXEL``) plus one forward pass of the image or a tile."""
    side_h, side_w = (min(height, tile), min(width, tile)) if tile else (height, width)
    image = FULL_IMAGE_BYTES_PER_PIXEL * height * width
    need = image + bytes_needed(net, side_h, side_w)
    if need <= budget:
        return
    what = f"{path.name} ({width}×{height}) at size=native" + (f" with tile={tile}" if tile else "")
    per_pixel = bytes_needed(net, 1, 1) / 16  # a forward pass holds (h + 3)(w + 3) pixels' worth
    largest = ((budget - image) / per_pixel) ** 0.5 - 3 if budget > image else 0
    if largest < 16:  # no tile helps: the image's own buffers (and a 16 px tile) do not fit
        raise ConfigError(
            f"{what} needs about {_size(need)}, more than the {_size(budget)} available, {_size(image)} "
            "of it for the full-size image itself; use size=crop, downscale the image, or max_memory_gb=<GB>"
        )
    raise ConfigError(
        f"{what} needs about {_size(need)}, more than the {_size(budget)} available; the largest tile that "
        f"fits beside the full-size image is about {int(largest)}×{int(largest)} px: use "
        f"tile={max(16, min(512, int(largest) // 4 * 4))} (overlapping tiles, blended seams), size=crop, "
        "or max_memory_gb=<GB>"
    )


def check_rgb(net: nn.Module, translator: Translator) -> None:
    channels = first_conv_channels(net)
    if channels is not None and channels != 3:
        raise ConfigError(
            f"the generator ({translator.what}) takes {channels}-channel images; translate reads photos "
            "as RGB (3 channels)"
        )


def check_takes(net: nn.Module, translator: Translator, height: int, width: int, size: str) -> None:
    """The generator run on a (height, width) image on the meta device (shapes only): a size its
    depth cannot take is one line with the sizes it can. Asked when the real forward failed (a
    meta forward imports torch's compiler, a second of start-up no working run should pay)."""
    padded = (height + (-height % 4), width + (-width % 4))  # as _forward pads

    try:
        out = on_meta(net, torch.zeros(1, 3, *padded))
        if tuple(out.shape[-2:]) == padded:
            return
        problem = f"returns {out.shape[-2]}×{out.shape[-1]}"
    except NotImplementedError:
        return
    except DoesNotFit as e:
        problem = f"fails: {e}"
    others = nearby_sizes(max(height, width), lambda side: keeps_size(net, side))
    fix = (
        f"crop_size={' or '.join(map(str, others))} (the size it was trained at)"
        if others
        else "another size"
    )
    raise ConfigError(
        f"the generator ({translator.what}) cannot take a {width}×{height} image ({problem}); use "
        f"{'size=crop with ' if size == 'native' else ''}{fix}"
    )


def _settings(cfg: DictConfig) -> tuple[int | None, int]:
    if cfg.direction not in ("AtoB", "BtoA"):
        raise ConfigError(f"direction={cfg.direction} must be AtoB or BtoA")
    if cfg.size not in ("crop", "native"):
        raise ConfigError(f"size={cfg.size} must be crop (the trained size) or native")
    tile = cfg.get("tile")
    if tile is not None and (cfg.size != "native" or int(tile) < 16):
        raise ConfigError(f"tile={tile} needs size=native and at least 16 px (e.g. tile=512)")
    overlap = int(cfg.get("tile_overlap") or (int(tile) // 8 if tile else 0))
    if tile is not None and not 0 <= overlap < int(tile):
        raise ConfigError(f"tile_overlap={overlap} must be ≥ 0 and smaller than tile={tile}")
    return (int(tile) if tile is not None else None), overlap


@dataclass
class Translator:
    """A generator ready for inference, the size ``size=crop`` resizes to, and what it is."""

    net: nn.Module
    crop: int
    what: str


def load_translator(cfg: DictConfig, device: torch.device) -> Translator:
    """A ganlab CycleGAN / pix2pix checkpoint, or an official generator weight file."""
    where = f"ckpt={cfg.ckpt}"
    obj = read_torch_file(resolve_model(cfg.ckpt))
    if is_ganlab(obj):
        return _ganlab_translator(obj, cfg, where, device)
    if is_state_dict(obj):
        net, found = build_official(obj, where)
        if not found.is_generator:
            raise ConfigError(
                f"{where} is {found.describe()}; translate needs a generator: latest_net_G_A.pth "
                "(A→B), latest_net_G_B.pth (B→A) or a model-zoo <name>.pth"
            )
        # as the official test.py --model test --no_dropout: batch norm on the image's own statistics
        official_inference(net, batch_stats=True, dropout=False)
        return Translator(net.to(device), int(cfg.get("crop_size") or 256), found.describe())
    raise CheckpointError(f"{where} is {describe_file(obj)}; {EXPECTED}")


EXPECTED = (
    "expected a ganlab CycleGAN or pix2pix checkpoint (checkpoints/last.ckpt) or an official "
    "generator file (latest_net_G_A.pth, <name>.pth)"
)


def describe_file(obj: object) -> str:
    """What a torch file that is neither a ganlab checkpoint nor a state dict holds, in words."""
    if isinstance(obj, dict) and "state_dict" in obj and "pytorch-lightning_version" in obj:
        return "a Lightning checkpoint not written by ganlab (no ganlab config)"
    if isinstance(obj, dict):
        return f"a dict with keys {', '.join(map(str, list(obj)[:4]))}"
    return f"a {type(obj).__name__}, not a checkpoint"


def _ganlab_translator(ckpt: dict, cfg: DictConfig, where: str, device: torch.device) -> Translator:
    kind = model_kind(ckpt, where)
    if kind == "Pix2Pix":
        prefix = "generator."
    elif kind == "CycleGAN":
        prefix = "g_a." if cfg.direction == "AtoB" else "g_b."
    else:
        raise ConfigError(
            f"ckpt={cfg.ckpt} is a {kind} checkpoint; translate needs a CycleGAN or pix2pix one"
        )
    net = build_network(ckpt, "generator", weights_prefix(ckpt, prefix, bool(cfg.get("ema", True))), where)
    if kind == "Pix2Pix":  # the paper's test time: dropout on, batch norm on the test image's statistics
        torch.manual_seed(int(cfg.get("seed") or 0))
        official_inference(net, batch_stats=True, dropout=True)
    crop = stored_int(ckpt, "data", "crop_size", where)
    return Translator(net.to(device), crop, f"a ganlab {kind} checkpoint")


def resolve_inputs(spec: str) -> tuple[list[Path], Path]:
    """``input=``: one image, a folder (recursive) or a glob → (images, the folder names are relative
    to); listed, not decoded (``check_readable`` decodes them)."""
    path = Path(spec)
    if path.is_file():
        paths, base = [path], path.parent
    elif path.is_dir():
        paths, base = list_images(path), path
        if not paths:
            raise DataError(f"input={path} holds no image file ({', '.join(IMG_EXTENSIONS)})")
    elif glob.has_magic(spec):
        paths = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        paths = [p for p in paths if p.suffix.lower() in IMG_EXTENSIONS]
        if not paths:
            raise DataError(f"input={spec} matches no image file ({', '.join(IMG_EXTENSIONS)})")
        literal = Path(*[part for part in itertools.takewhile(lambda p: not glob.has_magic(p), path.parts)])
        base = literal if literal.is_dir() else Path(".")
    else:
        raise DataError(f"input={spec} does not exist; give an image, a folder of images or a glob")
    return paths, base


def check_readable(paths: list[Path]) -> None:
    bad = find_unreadable(paths)
    if bad:
        raise DataError(f"unreadable image(s): {', '.join(str(p) for p in bad[:10])}; remove them")


def plan_outputs(cfg: DictConfig, paths: list[Path], base: Path) -> list[Path]:
    """Where each translated image goes; names are kept (and their folders below the input)."""
    out = Path(cfg.output)
    single = len(paths) == 1 and Path(cfg.input).is_file()
    if single and out.suffix.lower() in IMG_EXTENSIONS and not out.is_dir():
        return [out]  # input=photo.jpg output=zebra.png
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"output={out} is a file; give a folder (or, for one input image, a new image file)"
        )
    if Path(cfg.input).is_dir():
        check_apart(Path(cfg.input), out, bool(cfg.overwrite))
    return [out / p.relative_to(base) for p in paths]


def translate_folder(cfg: DictConfig) -> int:
    """Translate the images of ``cfg.input`` (an image, a folder or a glob) into ``cfg.output``."""
    tile, overlap = _settings(cfg)
    device = pick_device(cfg.device)
    translator = load_translator(cfg, device)
    paths, base = resolve_inputs(str(cfg.input))
    targets = plan_outputs(cfg, paths, base)
    net, crop = translator.net, translator.crop
    check_new_files(targets, bool(cfg.overwrite))
    if set(map(Path.resolve, targets)) & set(map(Path.resolve, paths)) and not cfg.overwrite:
        raise ConfigError("output would replace an input image; choose another output or set overwrite=true")
    batch_size = int(cfg.batch_size)
    budget = memory_budget(device, cfg.get("max_memory_gb"))
    check_rgb(net, translator)
    for path in paths if cfg.size == "native" else []:  # from the headers: before anything is decoded
        width, height = image_size(path)
        check_fits(net, path, height, width, budget, tile)
    if cfg.size == "crop":
        check_fits(net, paths[0], crop * batch_size, crop, budget, None)
    check_readable(paths)
    batch: list[tuple[Path, Tensor]] = []
    for i, (path, target) in enumerate(zip(paths, targets, strict=True)):
        image = load_rgb(path)
        if cfg.size == "crop":  # PIL bicubic, as the official test's transforms.Resize on a PIL image
            image = image.resize((crop, crop), Image.BICUBIC)
        tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()  # (3, H, W)
        del image
        batch.append((target, tensor))
        if len(batch) == batch_size or i == len(paths) - 1 or cfg.size == "native":  # native: sizes differ
            height, width = batch[0][1].shape[-2:]
            try:
                _write(net, batch, device, tile, overlap)
            except (RuntimeError, ValueError):  # the network's own error: is this size the cause?
                side_h, side_w = (min(height, tile), min(width, tile)) if tile else (height, width)
                check_takes(net, translator, side_h, side_w, cfg.size)  # one line naming sizes that work
                raise
            batch = []
    return len(paths)


def _write(
    net: nn.Module, batch: list[tuple[Path, Tensor]], device: torch.device, tile: int | None, overlap: int
) -> None:
    images = batch[0][1][None] if len(batch) == 1 else torch.stack([image for _, image in batch])
    batch = [(target, None) for target, _ in batch]  # the inputs are held once, in ``images``
    images = images.to(device)
    out = (run_tiled(net, images, tile, overlap) if tile else run_generator(net, images)).cpu()
    del images
    for (target, _), image in zip(batch, out, strict=True):
        write_image(Image.fromarray(image.permute(1, 2, 0).numpy()), target, quality=95)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="translate")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    count = translate_folder(cfg)
    print(f"translated {count} image(s) into {cfg.output}")


def main() -> None:
    run_cli(_hydra_main, tool="translate", doc=__doc__)


if __name__ == "__main__":
    main()
