"""What each built-in data set needs on disk, and how it is fetched, apart from its LightningDataModule.

A data module's ``prepare_data`` is its source's ``prepare``; ``train``'s preflight builds the same
source from the config (``source_of``) before Lightning, torchvision or a run directory exists, so
missing data is said at once. Nothing here imports torch or torchvision until a download needs
torchvision's official file lists and checksums.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ganlab.data.archive import gunzip_atomic, refuse_existing, safe_extract
from ganlab.data.downloads import download_cyclegan, download_pix2pix, fetch
from ganlab.errors import ConfigError, DataError
from ganlab.fetch import network_timeout

# torchvision's names (torchvision.datasets.MNIST, CIFAR10, CelebA; a test checks they agree), so
# that a presence check imports no torchvision
MNIST_RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST_MAX_UNPACKED = 60_000_000  # the largest IDX file (train images) is 47 MB
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CELEBA_FOLDER = "celeba"
CELEBA_IMAGES, CELEBA_PARTITION, CELEBA_ATTRIBUTES = (
    "img_align_celeba",
    "list_eval_partition.txt",
    "list_attr_celeba.txt",
)


class Source:
    """The files a data set needs: ``prepare`` checks them and fetches what is missing (when the
    config allows), or raises a one-line ``DataError`` naming what is missing and where it goes."""

    paired: ClassVar[bool] = False  # batches of (source, target) pairs: LPIPS needs its weights too

    def prepare(self) -> None:
        raise NotImplementedError


class MnistFiles(Source):
    """``<data_dir>/MNIST/raw/``: the four IDX files, unpacked from their .gz, downloaded if absent."""

    def __init__(self, data_dir: str | Path, download: bool = True, mirrors: list[str] | None = None) -> None:
        self.raw_dir = Path(data_dir) / "MNIST" / "raw"
        self.download, self.mirrors = download, mirrors

    def missing(self) -> list[str]:
        return [f for f in MNIST_RAW_FILES if not (self.raw_dir / f).is_file()]

    def prepare(self) -> None:
        self.unpack()
        if not self.missing():
            return
        reason = "download disabled (data.download=false)"
        if self.download:
            reason = self._download()
            if reason is None:
                return
        raise DataError(
            f"MNIST not found in {self.raw_dir} and {reason}; expected {', '.join(self.missing())} "
            f"there (or their .gz); put them there or set paths.data_dir=<dir> (or GANLAB_DATA_DIR) "
            "to a folder holding MNIST/raw/"
        )

    def _download(self) -> str | None:
        """torchvision's files from its mirrors (md5-checked, atomic); the reason for failure, or None."""
        from torchvision.datasets import MNIST

        mirrors = self.mirrors if self.mirrors is not None else MNIST.mirrors
        errors: list[str] = []
        for filename, md5 in MNIST.resources:
            packed = self.raw_dir / filename
            if (self.raw_dir / filename.removesuffix(".gz")).is_file() or packed.is_file():
                continue
            if not any(self._fetch_one(mirror + filename, packed, md5, errors) for mirror in mirrors):
                return f"the download failed ({'; '.join(errors)})"
        self.unpack()
        return None

    @staticmethod
    def _fetch_one(url: str, packed: Path, md5: str, errors: list[str]) -> bool:
        try:
            fetch(url, packed, MNIST_MAX_UNPACKED)
        except DataError as e:
            errors.append(str(e))
            return False
        digest = hashlib.md5(packed.read_bytes(), usedforsecurity=False).hexdigest()
        if digest != md5:
            packed.unlink()  # just written by fetch above
            errors.append(f"{url} is not MNIST's file (md5 {digest}, expected {md5})")
            return False
        return True

    def unpack(self) -> None:
        """The .gz files as distributed, unpacked via a temporary name (a kill leaves no partial IDX)."""
        for name in self.missing():
            packed = self.raw_dir / f"{name}.gz"
            if packed.is_file():
                gunzip_atomic(packed, self.raw_dir / name, MNIST_MAX_UNPACKED)


class Cifar10Files(Source):
    """``<data_dir>/cifar-10-batches-py/``: the python batches, extracted from the official archive."""

    def __init__(
        self, data_dir: str | Path, download: bool = True, url: str | None = None, max_extract_gb: float = 0.2
    ) -> None:
        self.data_dir, self.download, self.url, self.max_extract_gb = (
            Path(data_dir),
            download,
            url,
            max_extract_gb,
        )
        self.folder = self.data_dir / CIFAR10_FOLDER

    def prepare(self) -> None:
        missing = [f for f in CIFAR10_FILES if not (self.folder / f).is_file()]
        if not missing:
            return
        reason = "download disabled (data.download=false)"
        if self.download:
            refuse_existing(self.folder)  # a partial folder is the user's: never replaced
            from torchvision.datasets import CIFAR10
            from torchvision.datasets.utils import download_url

            url = self.url or CIFAR10.url
            try:
                with network_timeout():
                    download_url(url, str(self.data_dir), CIFAR10_ARCHIVE, CIFAR10.tgz_md5)
                archive = self.data_dir / CIFAR10_ARCHIVE
                if not archive.is_file():
                    raise OSError(f"no file at {url}")
                safe_extract(archive, self.data_dir, CIFAR10_FOLDER, int(self.max_extract_gb * 1e9))
                return
            except DataError:
                raise
            except Exception as e:
                reason = f"the download from {url} failed ({' '.join(str(e).split())})"
        raise DataError(
            f"CIFAR-10 not found in {self.folder} and {reason}; expected {', '.join(missing)} there; "
            "put them there or set paths.data_dir=<dir> (or GANLAB_DATA_DIR) to the folder holding "
            f"{CIFAR10_FOLDER}/"
        )


class CelebAFiles(Source):
    """``<data_dir>/celeba/``: the aligned images, the official partition (and attributes when a
    class attribute is asked for), fetched through torchvision's Google Drive ids."""

    def __init__(
        self,
        data_dir: str | Path,
        attribute: str | None = None,
        download: bool = True,
        max_extract_gb: float = 2.0,
    ) -> None:
        self.folder = Path(data_dir).expanduser() / CELEBA_FOLDER
        self.attribute, self.download, self.max_extract_gb = attribute, download, max_extract_gb

    def missing(self) -> list[str]:
        expected = [CELEBA_IMAGES, CELEBA_PARTITION] + ([CELEBA_ATTRIBUTES] if self.attribute else [])
        return [name for name in expected if not (self.folder / name).exists()]

    def prepare(self) -> None:
        if not self.missing():
            return
        reason = "download disabled (data.download=false)"
        if self.download:
            try:
                self._download()
                return
            except DataError:
                raise
            except Exception as e:
                reason = f"the download from Google Drive failed ({' '.join(str(e).split())[:200]})"
        raise DataError(
            f"CelebA not found in {self.folder} and {reason}; expected {', '.join(self.missing())} there "
            "(torchvision's layout); put them there or set paths.data_dir=<dir> holding celeba/"
        )

    def _download(self) -> None:
        """torchvision's official file ids and md5s; the zip extracted with ganlab's path checks."""
        from torchvision.datasets import CelebA
        from torchvision.datasets.utils import download_file_from_google_drive

        self.folder.mkdir(parents=True, exist_ok=True)
        with network_timeout():
            for file_id, md5, filename in CelebA.file_list:
                if filename.endswith(".zip") and (self.folder / CELEBA_IMAGES).is_dir():
                    continue
                if not (self.folder / filename).is_file():
                    download_file_from_google_drive(file_id, str(self.folder), filename, md5)
        archive = self.folder / f"{CELEBA_IMAGES}.zip"
        if not (self.folder / CELEBA_IMAGES).is_dir():
            safe_extract(archive, self.folder, CELEBA_IMAGES, int(self.max_extract_gb * 1e9))


class ImageFolder(Source):
    """``data.root``: a folder of images (its images are listed and decoded later, by the module)."""

    def __init__(self, root: str | Path | None = None) -> None:
        if root is None:
            raise ConfigError("data=image_folder needs data.root=<folder of images>")
        self.root = Path(root).expanduser()

    def prepare(self) -> None:
        if not self.root.exists():
            raise DataError(f"data.root={self.root} does not exist; give a folder of images")
        if not self.root.is_dir():
            raise DataError(
                f"data.root={self.root} is a file, not a folder; give the folder that holds the images"
            )


class UnpairedFolders(Source):
    """``data.root`` with trainA/ and trainB/, or an official CycleGAN set in ``<data_dir>/<name>``,
    downloaded when absent."""

    holds, expected, official = "trainA/ trainB/", "trainA/, trainB/", "official set"  # for messages
    download_set = staticmethod(download_cyclegan)

    def __init__(
        self,
        data_dir: str | Path,
        root: str | None = None,
        name: str | None = "horse2zebra",
        url: str | None = None,
        download: bool = True,
        max_extract_gb: float = 20.0,
    ) -> None:
        self.data_dir, self.root, self.name, self.url = Path(data_dir), root, name, url
        self.download, self.max_extract_gb = download, max_extract_gb

    @property
    def folder(self) -> Path:
        if self.root is not None:
            return Path(self.root)
        if self.name is None:
            raise ConfigError(f"set data.root=<dir with {self.holds}> or data.name=<{self.official}>")
        return self.data_dir / self.name

    def fetch(self) -> None:
        if self.root is None and self.download:
            self.download_set(self.folder.name, self.data_dir, self.url, self.max_extract_gb)

    def check_folder(self) -> None:
        if not self.folder.is_dir():
            raise DataError(f"data.root={self.folder} does not exist; expected a folder with {self.expected}")

    def prepare(self) -> None:
        self.fetch()
        for split in ("trainA", "trainB"):
            self.check_split(split)

    def check_split(self, split: str) -> bool:
        """Whether ``<folder>/<split>`` exists; a missing data folder (or train split) is an error."""
        self.check_folder()
        if (self.folder / split).is_dir():
            return True
        if split.startswith("train"):
            raise DataError(f"{self.folder} has no {split}/ folder; expected trainA/, trainB/ with images")
        return False


class PairedFolders(UnpairedFolders):
    """``data.root`` with train/ of side-by-side A|B images, or an official pix2pix set in
    ``<data_dir>/<name>``, downloaded when absent."""

    paired = True
    holds = expected = "train/ of A|B images"
    official = "official pix2pix set"
    download_set = staticmethod(download_pix2pix)

    def __init__(
        self,
        data_dir: str | Path,
        root: str | None = None,
        name: str | None = None,
        url: str | None = None,
        download: bool = True,
        max_extract_gb: float = 20.0,
    ) -> None:
        super().__init__(data_dir, root, name, url, download, max_extract_gb)

    def prepare(self) -> None:
        self.fetch()
        self.check_folder()
        if not (self.folder / "train").is_dir():
            raise DataError(
                f"{self.folder / 'train'} holds no images; expected train/ (and test/ or val/) of A|B images"
            )


class NoFiles(Source):
    """Data made in memory (the synthetic sets): nothing to check."""

    def prepare(self) -> None:
        pass


# the built-in data modules, by the ``_target_`` their configs name; a plugin's data module is
# prepared by its own prepare_data, when the run builds it
SOURCES: dict[str, type[Source]] = {
    "ganlab.data.mnist.MNISTDataModule": MnistFiles,
    "ganlab.data.cifar10.CIFAR10DataModule": Cifar10Files,
    "ganlab.data.celeba.CelebADataModule": CelebAFiles,
    "ganlab.data.folder.ImageFolderDataModule": ImageFolder,
    "ganlab.data.unpaired.UnpairedDataModule": UnpairedFolders,
    "ganlab.data.paired.PairedDataModule": PairedFolders,
    "ganlab.data.synthetic.SyntheticImages": NoFiles,
    "ganlab.data.synthetic.SyntheticUnpaired": NoFiles,
}


def source_of(data: Mapping[str, Any]) -> Source | None:
    """The source of a data config (``cfg.data``, resolved), or None for a data module that is not
    ganlab's: the arguments its source takes are picked from the config by name."""
    cls = SOURCES.get(str(data.get("_target_")))
    if cls is None:
        return None
    taken = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in data.items() if k in taken})
