"""Small data sets in the real on-disk formats, and a reader for W&B offline run files."""

from __future__ import annotations

import gzip
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def mnist(root: Path, n_train: int = 256, n_test: int = 64, gz: bool = False, seed: int = 0) -> dict:
    """IDX files under ``root/MNIST/raw`` (big-endian headers, as LeCun distributes them)."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        image_name, label_name = MNIST_FILES[split]
        blobs = {
            image_name: struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes(),
            label_name: struct.pack(">II", 2049, n) + labels.tobytes(),
        }
        for name, blob in blobs.items():
            if gz:
                (raw / f"{name}.gz").write_bytes(gzip.compress(blob))
            else:
                (raw / name).write_bytes(blob)
        arrays[split] = images
    return arrays


def cifar10(root: Path, per_batch: int = 32, n_test: int = 32, seed: int = 0) -> dict:
    """Pickled batches under ``root/cifar-10-batches-py`` (N×3072 uint8: R, G, B planes)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict = {"train": []}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        batch = {"data": data, "labels": rng.integers(0, 10, size=n).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
        images = data.reshape(n, 3, 32, 32)
        if name == "test_batch":
            arrays["test"] = images
        else:
            arrays["train"].append(images)
    arrays["train"] = np.concatenate(arrays["train"])
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    return arrays


def wandb_records(run_file: Path) -> list:
    """Records of a ``run-*.wandb`` file (LevelDB log format: 32 KiB blocks of chunked records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw, block, pos, records, pending = run_file.read_bytes(), 32768, 7, [], b""
    while pos + 7 <= len(raw):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        data, pos = raw[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # full record, or last chunk
            record = pb.Record()
            record.ParseFromString(pending + data)
            records.append(record)
            pending = b""
        else:  # first or middle chunk
            pending = data if kind == 2 else pending + data
    return records


def wandb_keys(run_file: Path, kind: str) -> set[str]:
    """Keys of the 'history' or 'config' records of a W&B run file."""
    keys: set[str] = set()
    for record in wandb_records(run_file):
        if record.WhichOneof("record_type") == kind:
            items = record.history.item if kind == "history" else record.config.update
            keys |= {item.key or "/".join(item.nested_key) for item in items}
    return keys


def unpaired_folder(root: Path, size: int = 40, seed: int = 0) -> Path:
    """trainA/ trainB/ testA/ testB/ of small images: PNG, JPEG, one grayscale, one RGBA,
    one non-image file and one corrupt JPEG in trainA."""
    from PIL import Image

    rng = np.random.default_rng(seed)

    def image(mode: str = "RGB") -> Image.Image:
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        pixels = rng.integers(0, 256, size=(size, size, channels), dtype=np.uint8)
        return Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)

    counts = {"trainA": 4, "trainB": 5, "testA": 2, "testB": 3}
    for split, n in counts.items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            ext = "jpg" if i % 2 else "png"
            image().save(folder / f"{split}_{i}.{ext}")
    image("L").save(root / "trainA" / "gray.png")
    image("RGBA").save(root / "trainA" / "rgba.png")
    (root / "trainA" / "notes.txt").write_text("not an image")
    (root / "trainA" / "zz_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    return root


def paired_folder(root: Path, size: int = 40, counts: dict[str, int] | None = None, seed: int = 0) -> Path:
    """train/ (val/, test/) of A|B JPEGs side by side (2·size × size), as the official aligned sets:
    B is a fixed function of A (colours inverted, a bright band), so a translation can be learnt."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (counts or {"train": 6, "val": 2, "test": 3}).items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = rng.integers(0, 256, size=(size // 4, size // 4, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
            b = 255 - a
            b[: size // 8] = 255
            Image.fromarray(np.concatenate([a, b], axis=1)).save(folder / f"{i + 1}.jpg", quality=95)
    return root


def inception_weights(path: Path, seed: int = 0) -> Path:
    """A weights file for torch-fidelity's Inception with the real shapes and random values
    (the real file cannot be downloaded on these machines)."""
    import torch
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    if path.is_file():
        return path
    torch.manual_seed(seed)
    original_load = fe.FeatureExtractorInceptionV3.load_state_dict
    original_fetch = fe.load_state_dict_from_url
    fe.FeatureExtractorInceptionV3.load_state_dict = lambda self, state: None  # keep the random init
    fe.load_state_dict_from_url = lambda *args, **kwargs: {}
    try:
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    finally:
        fe.FeatureExtractorInceptionV3.load_state_dict = original_load
        fe.load_state_dict_from_url = original_fetch
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


def image_folder(
    root: Path, classes: tuple[str, ...] = ("cats", "dogs"), per_class: int = 12, seed: int = 0
) -> Path:
    """One subfolder per class, nested deeper for some files, mixed formats and sizes: PNG, JPEG,
    BMP, a grayscale, an RGBA, a palette and a 16-bit PNG, a CMYK JPEG, and a text file (ignored)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        for i in range(per_class):
            folder = root / name / ("deeper" if i % 4 == 3 else "")
            folder.mkdir(parents=True, exist_ok=True)
            h, w = 40 + 3 * (i % 12), 52 - 2 * (i % 12)  # portrait and landscape: short-side resize, crop
            pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            pixels[..., c % 3] //= 4  # classes differ in colour
            kind = ("png", "jpg", "bmp", "L", "RGBA", "P", "I;16", "CMYK")[i % 8]
            image = Image.fromarray(pixels)
            if kind == "I;16":
                Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).save(folder / f"{name}{i}.png")
            elif kind in ("L", "RGBA", "P"):
                image.convert(kind).save(folder / f"{name}{i}.png")
            elif kind == "CMYK":
                image.convert("CMYK").save(folder / f"{name}{i}.jpg")
            else:
                image.save(folder / f"{name}{i}.{kind}")
    (root / classes[0] / "README.txt").write_text("not an image")
    return root


def celeba(root: Path, n: int = 24, seed: int = 0) -> Path:
    """``root/celeba`` in torchvision's layout: 178×218 JPEGs, the partition and attribute files."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    names = ["5_o_Clock_Shadow", "Male", "Smiling", "Young"]
    partition, attributes = [], [str(n), " ".join(names)]
    for i in range(n):
        file = f"{i + 1:06d}.jpg"
        Image.fromarray(rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)).save(
            folder / "img_align_celeba" / file
        )
        partition.append(f"{file} {0 if i < n * 2 // 3 else (1 if i % 2 else 2)}")
        values = [1 if (i + k) % 2 else -1 for k in range(len(names))]
        attributes.append(f"{file} " + " ".join(f"{v:2d}" for v in values))
    (folder / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    (folder / "list_attr_celeba.txt").write_text("\n".join(attributes) + "\n")
    return root


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header says width × height (a few bytes of data, as a decompression bomb's):
    only the header is real, so only a reader that decodes it pays for the size."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
