"""CelebA in torchvision's layout: ``<data_dir>/celeba/img_align_celeba/`` with the official
partition (``list_eval_partition.txt``) and attributes (``list_attr_celeba.txt``)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ganlab.data.sets.folder import ImageFolderData
from ganlab.data.sources import CELEBA_ATTRIBUTES as ATTRIBUTES
from ganlab.data.sources import CELEBA_IMAGES as IMAGES
from ganlab.data.sources import CELEBA_PARTITION as PARTITION
from ganlab.data.sources import CelebAFiles
from ganlab.errors import ConfigError, DataError

SPLITS = {"train": "0", "test": "2"}  # the official partition: 0 train, 1 valid, 2 test


def read_attributes(path: Path) -> tuple[list[str], dict[str, list[int]]]:
    """(attribute names, {file: [±1, ...]}) of ``list_attr_celeba.txt`` (count, header, rows)."""
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise DataError(f"{path} has no header (a count line, then the attribute names); the file is damaged")
    names = lines[1].split()
    rows = {}
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1 or any(v not in ("1", "-1", "0") for v in parts[1:]):
            raise DataError(
                f"{path} line {number} is not a file name and {len(names)} values of 1 or -1 "
                f"({line[:60]!r}); the file is damaged: delete it to download it again"
            )
        rows[parts[0]] = [int(v) for v in parts[1:]]
    return names, rows


class CelebAData(ImageFolderData):
    """CelebA (Liu et al. 2015) faces, 162,770 train / 19,962 test, preprocessed as image folders.

    Args:
        attribute: a binary attribute as the class (``Smiling``: 0 = not smiling, 1 = smiling),
            for ``model.conditional=true``; null: unlabelled.
        download: fetch the official files through torchvision's Google Drive ids when absent.
    """

    no_labels_hint = "data=celeba has labels only with data.attribute=<name> (e.g. Smiling)"

    def __init__(
        self,
        data_dir: str,
        attribute: str | None = None,
        download: bool = True,
        max_extract_gb: float = 2.0,
        **kwargs,
    ) -> None:
        self.files = CelebAFiles(data_dir, attribute, download, max_extract_gb)
        self.folder = self.files.folder
        super().__init__(root=str(self.folder / IMAGES), **kwargs)
        self.attribute = attribute

    def prepare_data(self) -> None:
        self.files.prepare()

    def scan(self) -> dict[str, list[Path]]:
        if self.split is not None:
            return self.split
        self.prepare_data()
        partition = {}
        for line in (self.folder / PARTITION).read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                if Path(parts[0]).name != parts[0]:  # a listed name never reaches outside the folder
                    raise DataError(f"{self.folder / PARTITION} lists {parts[0]!r}, not a file name")
                partition[parts[0]] = parts[1]
        images = self.folder / IMAGES
        self.split = {
            name: [images / f for f, part in sorted(partition.items()) if part == code]
            for name, code in SPLITS.items()
        }
        self.split["held_out"] = [f"{PARTITION} (official test partition)"]
        missing = [p for p in self.split["train"][:1] + self.split["test"][:1] if not p.is_file()]
        if not self.split["train"] or missing:
            raise DataError(
                f"{self.folder / PARTITION} lists {missing[0] if missing else 'no training images'}, which "
                f"{images} does not hold; the folder is incomplete: delete it to download it again"
            )
        return self.split

    def split_info(self) -> dict[str, object]:
        return {"root": str(self.folder.resolve()), "held_out": "the official partition (0 train, 2 test)"}

    def class_names(self) -> list[str]:
        if self.attribute is None:
            return []
        if (self.folder / ATTRIBUTES).is_file():  # present: a misspelt name stops the run now
            self._column()
        return [f"not {self.attribute}", self.attribute]

    def _column(self) -> int:
        with open(self.folder / ATTRIBUTES) as f:  # the count line, then the names: no need for 200k rows
            f.readline()
            header = f.readline().split()
        if self.attribute not in header:
            valid = ", ".join(header)
            raise ConfigError(
                f"data.attribute={self.attribute} is not a CelebA attribute; choose one of {valid}"
            )
        return header.index(self.attribute)

    def _class_of(self, paths: list[Path], base: Path, names: list[str]) -> Tensor:
        column = self._column()
        _, rows = read_attributes(self.folder / ATTRIBUTES)
        try:
            return torch.tensor([int(rows[p.name][column] == 1) for p in paths], dtype=torch.long)
        except KeyError as e:
            raise DataError(
                f"{self.folder / ATTRIBUTES} has no row for {e.args[0]}; the file is damaged"
            ) from None
