"""Image folders and CelebA: fabricated trees in real formats, both loader modes, splits, labels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

import fabricate
from conftest import TINY, make_cfg, run_module
from ganlab.cli import one_line, user_error
from ganlab.data.celeba import CelebADataModule
from ganlab.data.folder import ImageFolderDataModule
from ganlab.data.images import fingerprint
from ganlab.errors import ConfigError, DataError
from ganlab.train import train


@pytest.fixture(scope="module")
def classes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fabricate.image_folder(tmp_path_factory.mktemp("folder"))


def folder(root: Path, **kwargs) -> ImageFolderDataModule:
    args = {"root": str(root), "image_size": 16, "batch_size": 4, "num_workers": 0, "holdout": 0.2, **kwargs}
    return ImageFolderDataModule(**args)


def batches(dm: ImageFolderDataModule, n: int) -> list:
    """The first n training batches, across epochs as Lightning runs them (set_epoch, iterate)."""
    loader, out, epoch = dm.train_dataloader(), [], 0
    while len(out) < n:
        loader.sampler.set_epoch(epoch)
        out, epoch = out + list(loader), epoch + 1
    return out[:n]


def test_every_format_is_read_recursively_and_preprocessed(classes_root: Path) -> None:
    dm = folder(classes_root)
    dm.setup()
    split = dm.scan()
    assert len(split["train"]) + len(split["test"]) == 24  # the .txt file is ignored
    assert any("deeper" in p.parts for p in split["train"] + split["test"])
    assert dm.in_memory and dm.train_set.images.shape[1:] == (3, 16, 16)
    assert dm.train_set.images.dtype == torch.uint8
    gray = folder(classes_root, channels=1)
    gray.setup()
    assert gray.train_set.images.shape[1:] == (1, 16, 16)
    batch = dm.on_after_batch_transfer(batches(dm, 1)[0], 0)
    assert batch.shape == (4, 3, 16, 16) and batch.min() >= -1.0 and batch.max() <= 1.0


def test_short_side_resize_then_centre_crop_as_pytorch_examples(tmp_path: Path) -> None:
    """A 20×40 image, black at its left and right edges: the centre square of the 10×20 resize is
    all white, a squashing resize would show the black."""
    pixels = torch.zeros(20, 40, 3, dtype=torch.uint8)
    pixels[:, 6:34] = 255
    (tmp_path / "a").mkdir()
    for i in range(2):
        Image.fromarray(pixels.numpy()).save(tmp_path / "a" / f"{i}.png")
    dm = folder(tmp_path, image_size=10, batch_size=1, holdout=0.0)
    dm.setup()
    assert dm.train_set.images.shape == (2, 3, 10, 10)
    assert dm.train_set.images.min() >= 250  # resized to 10×20, centre 10×10 is in the white band
    cropped = folder(tmp_path, image_size=10, batch_size=1, holdout=0.0, center_crop=4)
    cropped.setup()
    assert cropped.train_set.images.min() >= 250


def test_in_memory_and_streamed_give_the_same_batches(classes_root: Path) -> None:
    memory = folder(classes_root, flip=True, labels="folders")
    stream = folder(classes_root, flip=True, labels="folders", memory_limit_gb=0, num_workers=2)
    for dm in (memory, stream):
        dm.use_labels()
        dm.setup()
    assert memory.in_memory and not stream.in_memory
    for (x1, y1), (x2, y2) in zip(batches(memory, 6), batches(stream, 6), strict=True):  # > 1 epoch
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    flipped = [x for x, _ in batches(memory, 5)]
    plain = folder(classes_root, labels="folders")
    plain.use_labels()
    plain.setup()
    assert any(not torch.equal(a, b) for a, (b, _) in zip(flipped, batches(plain, 5), strict=True))


def test_class_subfolders_are_labels(classes_root: Path) -> None:
    dm = folder(classes_root, labels="folders", holdout=0.0)
    assert dm.use_labels() == ["cats", "dogs"]
    dm.setup()
    labels = dm.train_set.labels
    for path, label in zip(dm.train_set.paths, labels.tolist(), strict=True):
        assert path.relative_to(classes_root).parts[0] == ["cats", "dogs"][label]
    refs = dm.fid_references("train", per_class=True)
    assert set(refs) == {"", "class_0", "class_1"}
    assert len(refs["class_0"].images) + len(refs["class_1"].images) == len(refs[""].images)


def test_test_folder_is_the_held_out_split(tmp_path: Path) -> None:
    fabricate.image_folder(tmp_path / "train", per_class=4)
    fabricate.image_folder(tmp_path / "test", per_class=2, seed=1)
    dm = folder(tmp_path, holdout=0.5)
    split = dm.scan()
    assert len(split["test"]) == 4 and all("test" in p.parts for p in split["test"])
    assert len(split["train"]) == 8
    assert dm.split_info()["held_out"].endswith("test folder")


def test_holdout_is_seeded_by_path_and_stable_when_files_are_added(tmp_path: Path) -> None:
    fabricate.image_folder(tmp_path, per_class=20)
    before = set(folder(tmp_path, holdout=0.25).scan()["test"])
    assert 0 < len(before) < 40
    Image.new("RGB", (8, 8)).save(tmp_path / "cats" / "new.png")
    after = set(folder(tmp_path, holdout=0.25).scan()["test"])
    assert before <= after  # adding a file never moves the held-out ones


def test_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    fabricate.image_folder(tmp_path, per_class=3)

    def key() -> str:
        dm = folder(tmp_path, holdout=0.0, batch_size=1)
        return dm.fid_references("train")[""].dataset

    first = key()
    assert key() == first
    target = tmp_path / "cats" / "cats0.png"
    Image.new("RGB", (9, 9), "red").save(target)  # replaced
    replaced = key()
    assert replaced != first
    os.utime(target, ns=(1, 1))  # only the modification time
    assert key() != replaced
    target.unlink()
    assert key() not in (first, replaced)
    paths = sorted(tmp_path.rglob("*.png"))
    assert fingerprint(tmp_path, paths, "a") != fingerprint(tmp_path, paths, "b")  # preprocessing


def test_streamed_reference_decodes_lazily_to_the_same_images(classes_root: Path) -> None:
    memory, stream = folder(classes_root), folder(classes_root, memory_limit_gb=0)
    a, b = memory.fid_references("test")[""], stream.fid_references("test")[""]
    assert a.dataset == b.dataset
    assert torch.equal(torch.cat(list(a.images.split(3))), torch.cat(list(b.images.split(3))))


def test_corrupt_files_are_named_or_skipped(tmp_path: Path) -> None:
    fabricate.image_folder(tmp_path, per_class=4)
    (tmp_path / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    good = (tmp_path / "dogs" / "dogs1.jpg").read_bytes()
    (tmp_path / "dogs" / "cut.jpg").write_bytes(good[: len(good) // 2])  # truncated
    for limit in (4.0, 0.0):  # both modes check every file before training
        with pytest.raises(DataError) as err:
            folder(tmp_path, holdout=0.0, memory_limit_gb=limit).setup()
        message = str(err.value)
        assert "\n" not in message and "2 unreadable" in message
        assert "broken.jpg" in message and "cut.jpg" in message and "skip_corrupt" in message
    with pytest.warns(UserWarning, match="skipping 2 unreadable"):
        dm = folder(tmp_path, holdout=0.0, skip_corrupt=True)
        dm.setup()
    assert len(dm.train_set) == 8


def _with_top_level_image(root: Path) -> None:
    fabricate.image_folder(root, per_class=4)
    Image.new("RGB", (8, 8)).save(root / "t.png")


@pytest.mark.parametrize(
    "make, overrides, expected",
    [
        (lambda root: None, [], "holds no training images"),
        (lambda root: (root / "notes.txt").write_text("x"), [], "only other files (notes.txt)"),
        (lambda root: fabricate.image_folder(root, classes=("one",), per_class=4), ["data.labels=folders"],
         "found 1 class folder(s)"),
        (_with_top_level_image, ["data.labels=folders"], "1 are at its top level (e.g. t.png)"),
        (lambda root: fabricate.image_folder(root, per_class=2), ["data.batch_size=16"],
         "data.batch_size=16 exceeds the 4 training images"),
        (lambda root: fabricate.image_folder(root, per_class=4), ["data.labels=folder"],
         "data.labels=folder must be one of none, folders"),
    ],
)  # fmt: skip
def test_bad_folders_fail_in_one_line_before_training(tmp_path: Path, make, overrides, expected) -> None:
    root = tmp_path / "images"
    root.mkdir()
    make(root)
    conditional = "model.conditional=true" if "data.labels=folders" in overrides else "seed=0"
    args = ["data=image_folder", f"data.root={root}", "data.image_size=16", "data.holdout=0",
            "data.num_workers=0", conditional, *TINY, "data.batch_size=2", "logger=csv",
            *overrides]  # fmt: skip
    if "data.labels=folder" in overrides or "data.batch_size=16" in overrides:  # config errors: the CLI
        result = run_module("ganlab.train", *args, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
        assert result.returncode == 1, result.stderr[-2000:]
        error = result.stderr.strip().splitlines()[-1]
        assert error.startswith("error: ") and expected in error, error
        assert not (tmp_path / "run").exists()  # leave nothing behind
        return
    with pytest.raises(Exception) as raised:  # data errors: the same line, in-process (seconds saved)
        train(make_cfg(tmp_path / "run", args))
    error = one_line(user_error(raised.value))
    assert isinstance(user_error(raised.value), DataError | ConfigError) and expected in error, error
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_config_error_never_removes_an_existing_run_dir(tmp_path: Path, classes_root: Path) -> None:
    """An error the run meets once the directory exists (a batch larger than the folder is known only
    when the data is scanned): the earlier run's files stay, and so does this run's record."""
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "samples" / "fixed_noise_0000500.png").write_bytes(b"an earlier run")
    result = run_module("ganlab.train", "data=image_folder", f"data.root={classes_root}",
                        "data.num_workers=0", "data.batch_size=10000", "logger=csv", "metrics=none",
                        f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "data.batch_size=10000 exceeds the" in result.stderr, result.stderr
    assert (run / "samples" / "fixed_noise_0000500.png").read_bytes() == b"an earlier run"
    assert (run / ".hydra").is_dir()  # this run's own record stays beside the earlier files


def test_root_that_is_a_file_or_missing(tmp_path: Path) -> None:
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        folder(tmp_path / "file.png").scan()
    with pytest.raises(DataError, match="does not exist"):
        folder(tmp_path / "nowhere").scan()
    with pytest.raises(ConfigError, match=r"needs data\.root"):
        ImageFolderDataModule()


@pytest.mark.slow
@pytest.mark.parametrize("memory_limit_gb", [4.0, 0.0])
def test_folder_resume_is_exact_in_both_modes(
    tmp_path: Path, classes_root: Path, memory_limit_gb: float
) -> None:
    common = [*TINY, "data=image_folder", f"data.root={classes_root}", "data.image_size=16",
              "data.batch_size=4", "data.flip=true", "data.num_workers=0", "data.holdout=0.2",
              f"data.memory_limit_gb={memory_limit_gb}", "model.conditional=true", "data.labels=folders",
              "logger=csv", "trainer.max_epochs=3", "trainer.limit_train_batches=null"]  # fmt: skip
    from test_train import read_csv_losses

    train(make_cfg(tmp_path / "full", [*common, "max_iters=7"]))
    train(make_cfg(tmp_path / "first", [*common, "max_iters=3"]))
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(make_cfg(tmp_path / "resumed", [*common, "max_iters=7", f"ckpt_path={ckpt}"]))
    full, resumed = read_csv_losses(tmp_path / "full"), read_csv_losses(tmp_path / "resumed")
    assert len(resumed) == 4  # 21 images, 5 batches per epoch: iterations 4–7 cross an epoch boundary
    for step, losses in resumed.items():
        assert losses == pytest.approx(full[step], rel=1e-5, abs=1e-6), step
    stored = torch.load(ckpt, weights_only=True)["ganlab_config"]
    assert stored["data_split"]["train_images"] == 21 and "holdout=0.2" in stored["data_split"]["held_out"]
    assert stored["model"]["class_names"] == ["cats", "dogs"]


# --- CelebA ---


def celeba_dm(root: Path, **kwargs) -> CelebADataModule:
    args = {"data_dir": str(root), "image_size": 16, "batch_size": 4, "num_workers": 0, "download": False}
    return CelebADataModule(**{**args, **kwargs})


def test_celeba_official_partition_and_attribute_classes(tmp_path: Path) -> None:
    fabricate.celeba(tmp_path)
    dm = celeba_dm(tmp_path, attribute="Smiling", center_crop=108)
    assert dm.use_labels() == ["not Smiling", "Smiling"]
    dm.setup()
    assert len(dm.train_set) == 16 and len(dm.test_set) == 4  # partition 0 / 2; 1 (valid) unused
    # Smiling is column 2: +1 when (i + 2) is odd, i.e. odd file numbers minus one
    expected = [int((int(p.stem) - 1 + 2) % 2 == 1) for p in dm.train_set.paths]
    assert dm.train_set.labels.tolist() == expected
    assert dm.train_set.images.shape[1:] == (3, 16, 16)


def test_celeba_errors(tmp_path: Path) -> None:
    fabricate.celeba(tmp_path)
    with pytest.raises(ConfigError) as err:
        celeba_dm(tmp_path, attribute="Smilling").use_labels()
    assert "not a CelebA attribute" in str(err.value) and "Smiling" in str(err.value)
    with pytest.raises(ConfigError, match=r"data\.attribute=<name>"):
        celeba_dm(tmp_path).use_labels()
    with pytest.raises(DataError) as err:
        celeba_dm(tmp_path / "empty").prepare_data()
    assert "CelebA not found" in str(err.value) and "download disabled" in str(err.value)


def test_celeba_failed_download_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No network here: every request goes to a proxy on a closed local port and fails at once."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(DataError) as err:
        celeba_dm(tmp_path, download=True).prepare_data()
    message = str(err.value)
    assert "\n" not in message and "download from Google Drive failed" in message
    assert "img_align_celeba" in message


def test_celeba_partition_cannot_name_files_outside_its_folder(tmp_path: Path) -> None:
    fabricate.celeba(tmp_path)
    partition = tmp_path / "celeba" / "list_eval_partition.txt"
    partition.write_text(partition.read_text() + "../../../etc/passwd 0\n")
    with pytest.raises(DataError, match="not a file name"):
        celeba_dm(tmp_path).scan()
