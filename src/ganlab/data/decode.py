"""Decoding image files to uint8 tensors with torchvision's decoders, and DCGAN's preprocessing.

JPEG, PNG and WebP go through ``torchvision.io.decode_image`` (libjpeg-turbo/libpng, no PIL
round trip); other formats through PIL with the rules of ``ganlab.data.images``. Either way the
header is read by PIL first, so the decompression-bomb limit and the refused pixel modes are the
same as for every other folder ganlab reads, and 16-bit images are scaled to 8 bits (v·255/65535).
A camera's EXIF orientation is applied (a phone photo taken sideways trains upright), as image
viewers do; pytorch/examples and the official CycleGAN code read such photos as stored.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as TF

from ganlab.data.images import _check_mode, open_image, to_rgb, upright
from ganlab.errors import ConfigError, DataError

TORCHVISION_FORMATS = (".jpg", ".jpeg", ".png", ".webp")


class UnreadableImage(DataError):
    """A file that does not decode (truncated, corrupt, not an image despite its name)."""


def _from_pil(path: Path, channels: int) -> Tensor:
    with open_image(path) as image:
        rgb = to_rgb(upright(image), path)
    pixels = np.asarray(rgb.convert("L") if channels == 1 else rgb)
    tensor = torch.from_numpy(pixels.copy())
    return tensor[None] if channels == 1 else tensor.permute(2, 0, 1)  # (C, H, W)


def decode_checked(path: Path, channels: int) -> Tensor:
    """uint8 (channels, H, W) of an image file; ``UnreadableImage`` if it does not decode."""
    try:
        with open_image(path) as image:  # the header only: bomb limit and pixel mode
            _check_mode(image, path)
        if path.suffix.lower() not in TORCHVISION_FORMATS:
            return _from_pil(path, channels)
        mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # libjpeg's "premature end": a truncated file
            warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 points to TorchCodec
            data = torch.from_numpy(np.fromfile(path, dtype=np.uint8))
            image = decode_image(data, mode=mode, apply_exif_orientation=True)
        if image.dtype == torch.uint16:
            image = ((image.to(torch.int64) * 255 + 32767) // 65535).to(torch.uint8)
        return image
    except DataError as e:
        if "decompression-bomb" in str(e) or "pixel mode" in str(e) or "32-bit" in str(e):
            raise
        raise UnreadableImage(f"{path} is unreadable") from None
    except Exception:
        raise UnreadableImage(f"{path} is unreadable") from None


class Preprocess:
    """pytorch/examples' DCGAN transform on uint8 tensors: [centre crop ``center_crop``], resize the
    short side to ``image_size`` (bilinear, antialiased), centre crop to a square."""

    def __init__(self, image_size: int, channels: int, center_crop: int | None = None) -> None:
        if channels not in (1, 3):
            raise ConfigError(f"data.channels={channels} must be 1 (grayscale) or 3 (RGB)")
        if image_size < 4 or (center_crop is not None and center_crop < 1):
            raise ConfigError("data.image_size must be ≥ 4 and data.center_crop ≥ 1 (or null)")
        self.image_size, self.channels, self.center_crop = image_size, channels, center_crop

    def __call__(self, image: Tensor) -> Tensor:
        if self.center_crop is not None:
            image = TF.center_crop(image, [self.center_crop, self.center_crop])  # pads when smaller
        image = TF.resize(image, self.image_size, antialias=True)  # short side → image_size
        return TF.center_crop(image, [self.image_size, self.image_size]).contiguous()


class LazyImages:
    """Files decoded on demand, sliced and split like a uint8 (N, C, S, S) tensor: the FID reference
    of a streamed folder, which does not fit in memory at once."""

    def __init__(self, paths: list[Path], preprocess: Preprocess) -> None:
        self.paths, self.preprocess = paths, preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: slice | Tensor) -> LazyImages:
        if isinstance(index, Tensor):  # a boolean mask (per-class references)
            return LazyImages(
                [p for p, keep in zip(self.paths, index.tolist(), strict=True) if keep], self.preprocess
            )
        return LazyImages(self.paths[index], self.preprocess)

    def split(self, batch_size: int) -> Iterator[Tensor]:
        for start in range(0, len(self.paths), batch_size):
            chunk = self.paths[start : start + batch_size]
            yield torch.stack([self.preprocess(decode_checked(p, self.preprocess.channels)) for p in chunk])
