"""The official CycleGAN data sets: download, verify, extract — never a half-complete folder."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from ganlab.data.archive import DEFAULT_MAX_EXTRACT_GB, refuse_existing, safe_extract
from ganlab.data.images import list_images
from ganlab.errors import DataError
from ganlab.fetch import download

# the authors' server, as in the official datasets/download_cyclegan_dataset.sh
CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
CYCLEGAN_SETS = (
    "apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo",
    "ukiyoe2photo", "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower",
    "mini", "mini_pix2pix", "mini_colorization", "ae_photos", "grumpifycat",
)  # fmt: skip
# image counts of trainA, trainB, testA, testB where checked against a real copy
KNOWN_COUNTS = {"horse2zebra": (1067, 1334, 120, 140)}
# bytes unpacked, where measured on a real copy (with headroom); other sets: data.max_extract_gb
KNOWN_SIZES = {"horse2zebra": 150_000_000}
SPLITS = ("trainA", "trainB", "testA", "testB")


def fetch(url: str, dest: Path, max_bytes: int | None = None) -> None:
    """``fetch.download`` with its failures as DataError (see there)."""
    download(url, dest, max_bytes, DataError)


def verify_archive(archive: Path, name: str, max_bytes: int) -> None:
    """A readable zip holding ``<name>/{trainA,trainB,testA,testB}/``, unpacking to ≤ ``max_bytes``."""
    try:
        with zipfile.ZipFile(archive) as zf:
            declared = sum(i.file_size for i in zf.infolist())
            if declared > max_bytes:  # before testzip, which would inflate every member
                if name in KNOWN_SIZES:  # a measured size, not the user's cap: the file is not that set
                    raise DataError(
                        f"{archive} unpacks to {declared / 1e9:.3g} GB, but the official {name} unpacks to "
                        f"under {KNOWN_SIZES[name] / 1e9:.3g} GB; it is not the official {name}: delete it "
                        "and download again (or set data.root=<your own trainA/trainB folder>)"
                    )
                raise DataError(
                    f"{archive} unpacks to {declared / 1e9:.3g} GB, more than the {max_bytes / 1e9:.3g} GB "
                    "allowed; if you trust it, raise data.max_extract_gb"
                )
            bad = zf.testzip()
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{archive} is not a valid zip ({e}); delete it and download again") from None
    if bad is not None:
        raise DataError(f"{archive} is damaged (CRC error in {bad}); delete it and download again")
    missing = [s for s in SPLITS if not any(n.startswith(f"{name}/{s}/") for n in names)]
    if missing:
        raise DataError(f"{archive} has no {', '.join(f'{name}/{s}/' for s in missing)}; not {name}")


def download_cyclegan(
    name: str, data_dir: Path, url: str | None = None, max_extract_gb: float = DEFAULT_MAX_EXTRACT_GB
) -> Path:
    """``<data_dir>/<name>/`` with the four splits, downloaded and checked if absent.

    A partial ``<data_dir>/<name>/`` (some splits missing) is the user's: it is never replaced.
    """
    target = data_dir / name
    if all((target / s).is_dir() for s in SPLITS):
        return target
    if url is None and name not in CYCLEGAN_SETS:
        raise DataError(
            f"data.name={name} is not an official CycleGAN set ({', '.join(CYCLEGAN_SETS)}); "
            "for your own images set data.root=<dir with trainA/ trainB/>"
        )
    refuse_existing(target)  # before downloading anything
    url = url or CYCLEGAN_URL.format(name=name)
    archive = data_dir / f"{name}.zip"
    fetched = not archive.is_file()
    max_bytes = KNOWN_SIZES.get(name, int(max_extract_gb * 1e9))
    if fetched:
        try:
            fetch(url, archive, max_bytes)  # a zip is never larger than what it unpacks to
        except DataError as e:
            raise DataError(
                f"{e}; or put it there yourself: download {url} and unzip it in {data_dir} (giving "
                f"{target}/trainA, trainB, testA, testB), or place {name}.zip in {data_dir} and run again, "
                "or set data.root=<your own folder with trainA/ and trainB/>"
            ) from None
    verify_archive(archive, name, max_bytes)
    safe_extract(archive, data_dir, keep=name, max_bytes=max_bytes)  # staged: appears only complete
    counts = tuple(len(list_images(target / s)) for s in SPLITS)
    if name in KNOWN_COUNTS and counts != KNOWN_COUNTS[name]:
        shutil.rmtree(target)  # created by the line above: leave nothing that looks complete
        raise DataError(
            f"{target} holds {counts} images in {'/'.join(SPLITS)}, expected {KNOWN_COUNTS[name]}; "
            f"delete {archive} and download again"
        )
    if fetched:
        archive.unlink()  # ours; a zip the user placed there stays
    return target


# the pix2pix authors' server, as in the official datasets/download_pix2pix_dataset.sh
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
PIX2PIX_SETS = ("facades", "maps", "edges2shoes", "edges2handbags", "night2day")


def download_pix2pix(
    name: str, data_dir: Path, url: str | None = None, max_extract_gb: float = DEFAULT_MAX_EXTRACT_GB
) -> Path:
    """``<data_dir>/<name>/`` (train/, and val/ or test/ of A|B images), downloaded if absent."""
    target = data_dir / name
    if (target / "train").is_dir():
        return target
    if name == "cityscapes" and url is None:
        raise DataError(
            "data.name=cityscapes: its licence forbids redistribution, so the official repository does "
            "not host it; download it (login needed) from https://www.cityscapes-dataset.com, convert it "
            "with the official datasets/prepare_cityscapes_dataset.py and set data.root=<that folder>"
        )
    if url is None and name not in PIX2PIX_SETS:
        raise DataError(
            f"data.name={name} is not an official pix2pix set ({', '.join(PIX2PIX_SETS)}); "
            "for your own pairs set data.root=<dir with train/ of A|B images>"
        )
    refuse_existing(target)  # a partial folder is the user's: never replaced
    url = url or PIX2PIX_URL.format(name=name)
    archive = data_dir / f"{name}.tar.gz"
    fetched = not archive.is_file()
    max_bytes = int(max_extract_gb * 1e9)
    if fetched:
        try:
            fetch(url, archive, max_bytes)
        except DataError as e:
            raise DataError(
                f"{e}; or put it there yourself: download {url} and unpack it in {data_dir} (giving "
                f"{target}/train/ of A|B images), or place {name}.tar.gz in {data_dir} and run again, or "
                "set data.root=<your own folder with train/>"
            ) from None
    safe_extract(archive, data_dir, keep=name, max_bytes=max_bytes)  # staged, path-checked, capped
    if not (target / "train").is_dir():
        shutil.rmtree(target)
        raise DataError(f"{archive} has no {name}/train/ folder; not the pix2pix set {name}")
    if fetched:
        archive.unlink()
    return target
