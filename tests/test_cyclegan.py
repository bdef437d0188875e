"""CycleGAN: unpaired folders, preprocessing, image pool, schedule, downloads, training, translate."""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

import fabricate
from conftest import make_cfg, run_module
from ganlab.data.downloads import download_cyclegan
from ganlab.data.images import list_images, load_rgb
from ganlab.data.sets.unpaired import Preprocess
from ganlab.data.unpaired import UnpairedDataModule
from ganlab.errors import DataError
from ganlab.modules.cyclegan import linear_decay
from ganlab.modules.pool import ImagePool
from ganlab.train import train


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fabricate.unpaired_folder(tmp_path_factory.mktemp("unpaired"))


@pytest.fixture
def clean_folder(folder: Path, tmp_path: Path) -> Path:
    """The fabricated tree without its corrupt file."""
    copy = shutil.copytree(folder, tmp_path / "clean")
    (copy / "trainA" / "zz_corrupt.jpg").unlink()
    return copy


def datamodule(root: Path, **kwargs) -> UnpairedDataModule:
    args = dict(data_dir=str(root.parent), root=str(root), load_size=36, crop_size=32, num_workers=0)
    return UnpairedDataModule(**{**args, **kwargs})


# --- data ---


def test_only_image_files_are_listed(folder: Path) -> None:
    names = [p.name for p in list_images(folder / "trainA")]
    assert "notes.txt" not in names and "gray.png" in names and len(names) == 7


def test_corrupt_images_are_listed_in_one_line(folder: Path) -> None:
    with pytest.raises(DataError) as err:
        datamodule(folder).setup("fit")
    assert "zz_corrupt.jpg" in str(err.value) and "skip_corrupt=true" in str(err.value)
    assert "\n" not in str(err.value)


def test_skip_corrupt_warns_once_and_continues(folder: Path) -> None:
    dm = datamodule(folder, skip_corrupt=True)
    with pytest.warns(UserWarning, match="zz_corrupt.jpg"):
        dm.setup("fit")
    assert len(dm.paths["trainA"]) == 6


def test_gray_and_rgba_become_rgb(folder: Path) -> None:
    for name in ("gray.png", "rgba.png"):
        assert load_rgb(folder / "trainA" / name).mode == "RGB"


@pytest.mark.parametrize(
    ("problem", "expected"),
    [("no_root", "does not exist"), ("no_trainB", "no trainB/"), ("empty_trainB", "holds no images")],
)
def test_bad_folders_are_one_line_errors(clean_folder: Path, problem: str, expected: str) -> None:
    root = clean_folder
    if problem == "no_root":
        root = clean_folder / "missing"
    elif problem == "no_trainB":
        shutil.rmtree(clean_folder / "trainB")
    else:
        for p in (clean_folder / "trainB").iterdir():
            p.unlink()
    with pytest.raises(DataError, match=expected):
        datamodule(root).setup("fit")


def test_batches_are_unaligned_pairs_in_model_range(clean_folder: Path) -> None:
    dm = datamodule(clean_folder, batch_size=2)
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["A"].shape == batch["B"].shape == (2, 3, 32, 32)
    assert batch["A"].min() >= -1 and batch["A"].max() <= 1
    assert len(dm.train_set) == 6  # max(|A|, |B|)


def test_items_are_a_function_of_seed_epoch_and_index(clean_folder: Path) -> None:
    dm = datamodule(clean_folder)
    dm.setup("fit")
    ds = dm.train_set
    assert torch.equal(ds[3]["A"], ds[3]["A"]) and torch.equal(ds[3]["B"], ds[3]["B"])
    n = len(ds)
    # the same image index in another epoch gets another crop/flip (or another B)
    differs = [
        not torch.equal(ds[i]["A"], ds[i + n]["A"]) or not torch.equal(ds[i]["B"], ds[i + n]["B"])
        for i in range(n)
    ]
    assert any(differs)


def test_serial_batches_pair_a_i_with_b_i(clean_folder: Path) -> None:
    dm = datamodule(clean_folder, serial_batches=True, preprocess="none", flip=False)
    dm.setup("fit")
    for i in range(len(dm.train_set)):
        item = dm.train_set[i]
        expected = Preprocess("none", 0, 0, flip=False)(
            load_rgb(dm.paths["trainB"][i % 5]), torch.Generator()
        )
        assert torch.equal(item["B"], expected)


@pytest.mark.parametrize(
    ("mode", "shape"),
    [("resize_and_crop", (32, 32)), ("crop", (32, 32)), ("scale_width", (36, 36)), ("none", (40, 40))],
)
def test_preprocess_modes(folder: Path, mode: str, shape: tuple[int, int]) -> None:
    image = load_rgb(folder / "trainB" / "trainB_0.png")  # 40×40
    out = Preprocess(mode, load_size=36, crop_size=32, flip=True)(image, torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and tuple(out.shape) == (3, *shape)


# --- image pool and schedule ---


def test_pool_fills_then_mixes_and_resumes_identically() -> None:
    pool = ImagePool(size=3, seed=0)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returns the new images
    state = pool.state_dict()
    new = torch.arange(100.0, 140.0).view(40, 1, 1, 1)
    out = pool.query(new)
    from_history = (out != new).sum().item()
    assert 8 < from_history < 32  # about half are swapped for a remembered image
    restored = ImagePool(size=3, seed=123)
    restored.load_state_dict(state)
    assert torch.equal(restored.query(new), out)  # same contents, same draws


def test_pool_size_zero_is_passthrough() -> None:
    x = torch.randn(4, 3, 2, 2)
    assert torch.equal(ImagePool(size=0).query(x), x)


def test_linear_decay_matches_the_official_schedule() -> None:
    assert linear_decay(0, 100, 100) == 1.0
    assert linear_decay(99, 100, 100) == 1.0
    assert linear_decay(100, 100, 100) == pytest.approx(1 - 1 / 101)
    assert linear_decay(149, 100, 100) == pytest.approx(1 - 50 / 101)
    assert linear_decay(199, 100, 100) == pytest.approx(1 - 100 / 101)


# --- downloads against a local server ---


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return buffer.getvalue()


def official_zip(name: str, counts=(2, 2, 1, 1)) -> bytes:
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (8, 8), (200, 10, 10)).save(png, "PNG")
    members = {}
    for split, n in zip(("trainA", "trainB", "testA", "testB"), counts, strict=True):
        for i in range(n):
            members[f"{name}/{split}/{i}.png"] = png.getvalue()
    return zip_bytes(members)


def test_download_success(tmp_path: Path, http_root) -> None:
    url, served = http_root
    (served / "toy.zip").write_bytes(official_zip("toy"))
    target = download_cyclegan("toy", tmp_path / "data", url=url + "toy.zip")
    assert sorted(p.name for p in target.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert not (tmp_path / "data" / "toy.zip").exists()  # the archive is removed once extracted


def test_download_404_leaves_nothing(tmp_path: Path, http_root) -> None:
    url, _ = http_root
    with pytest.raises(DataError, match="404"):
        download_cyclegan("toy", tmp_path / "data", url=url + "missing.zip")
    assert not (tmp_path / "data").exists()  # not even the folder the download made for it


def test_truncated_transfer_and_damaged_archive(tmp_path: Path, http_root) -> None:
    url, served = http_root
    (served / "cut.zip").write_bytes(official_zip("toy"))
    with pytest.raises(DataError, match=r"stopped after \d+ of \d+ bytes"):
        download_cyclegan("toy", tmp_path / "data", url=url + "cut.zip")
    assert not (tmp_path / "data" / "toy").exists()
    (served / "half.zip").write_bytes(official_zip("toy")[:300])
    with pytest.raises(DataError, match="not a valid zip"):
        download_cyclegan("toy", tmp_path / "data2", url=url + "half.zip")
    assert not (tmp_path / "data2" / "toy").exists()


def test_archive_escaping_its_folder_is_refused(tmp_path: Path, http_root) -> None:
    url, served = http_root
    members = {f"toy/{s}/x.png": b"x" for s in ("trainA", "trainB", "testA", "testB")}
    members["toy/../../escaped.txt"] = b"gotcha"
    (served / "evil.zip").write_bytes(zip_bytes(members))
    with pytest.raises(DataError, match="outside"):
        download_cyclegan("toy", tmp_path / "data", url=url + "evil.zip")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "data" / "toy").exists()


def test_known_counts_are_checked(tmp_path: Path, http_root) -> None:
    url, served = http_root
    (served / "h.zip").write_bytes(official_zip("horse2zebra"))
    with pytest.raises(DataError, match=r"expected \(1067, 1334, 120, 140\)"):
        download_cyclegan("horse2zebra", tmp_path / "data", url=url + "h.zip")
    assert not (tmp_path / "data" / "horse2zebra").exists()


def test_unknown_set_name(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not an official CycleGAN set"):
        download_cyclegan("cats2dogs", tmp_path)


# --- training, resume, translate ---

TINY_CYCLE = [
    "model=cyclegan",
    "data=unpaired_folder",
    "data.load_size=36",
    "data.crop_size=32",
    "data.num_workers=0",
    "data.num_panels=2",
    "model.generator.ngf=4",
    "model.generator.n_blocks=1",
    "model.discriminator.ndf=4",
    "model.discriminator.n_layers=2",
    "model.pool_size=3",
    "model.n_epochs=1",
    "model.n_epochs_decay=2",
    "trainer=cpu",
    "trainer.log_every_n_steps=1",
    "callbacks.checkpoint.every_n_iters=3",
    "callbacks.samples.every_n_iters=3",
    "~callbacks.progress_bar",
    "logger=csv",
    "metrics=none",
]


def losses_by_step(run_dir: Path) -> dict[int, dict[str, float]]:
    (path,) = run_dir.glob("csv/version_*/metrics.csv")
    return {
        int(r["step"]): {k: float(v) for k, v in r.items() if k.startswith("train/") and v}
        for r in csv.DictReader(open(path))
    }


def test_cyclegan_trains_logs_and_checkpoints(tmp_path: Path, clean_folder: Path) -> None:
    train(make_cfg(tmp_path, [*TINY_CYCLE, f"data.root={clean_folder}", "trainer.max_epochs=2"]))
    steps = losses_by_step(tmp_path)
    assert len(steps) == 12  # 6 iterations per epoch (max(|A|, |B|) at batch 1), 2 epochs
    for key in ("loss_g_a", "loss_cycle_a", "loss_idt_a", "loss_d_a"):
        assert f"train/{key}" in steps[0] and f"train/{key.replace('_a', '_b')}" in steps[0]
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["iteration"] == 12 and ckpt["image_pools"]["a"]["images"].shape == (3, 3, 32, 32)
    # lr: constant for n_epochs=1, then linear decay over 2: factor 1 − 1/3 after epoch 2
    assert steps[11]["train/lr"] == pytest.approx(2e-4 * (1 - 1 / 3))
    assert {p.name[:4] for p in (tmp_path / "samples").glob("*.png")} == {"a2b_", "b2a_"}


def test_cyclegan_resume_continues_exactly(tmp_path: Path, clean_folder: Path) -> None:
    common = [*TINY_CYCLE, f"data.root={clean_folder}", "trainer.max_epochs=3"]
    train(make_cfg(tmp_path / "full", [*common, "max_iters=9"]))
    train(make_cfg(tmp_path / "first", [*common, "max_iters=4"]))  # mid-epoch, pools full
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(make_cfg(tmp_path / "resumed", [*common, "max_iters=9", f"ckpt_path={ckpt}"]))
    full, resumed = losses_by_step(tmp_path / "full"), losses_by_step(tmp_path / "resumed")
    assert sorted(resumed) == [4, 5, 6, 7, 8]
    for step, values in resumed.items():
        assert values == pytest.approx(full[step], rel=1e-5, abs=1e-6), step


def test_translate_end_to_end(tmp_path: Path, clean_folder: Path) -> None:
    run = tmp_path / "run"
    train(make_cfg(run, [*TINY_CYCLE, f"data.root={clean_folder}", "trainer.max_epochs=1"]))
    ckpt = run / "checkpoints" / "last.ckpt"
    source = clean_folder / "testB"
    result = run_module(
        "ganlab.translate", f"ckpt={ckpt}", f"input={source}", f"output={tmp_path / 'out'}",
        "direction=BtoA", "batch_size=2", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    from PIL import Image

    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(p.name for p in source.iterdir())
    assert all(Image.open(tmp_path / "out" / n).size == (32, 32) for n in names)
    native = run_module(
        "ganlab.translate", f"ckpt={ckpt}", f"input={source}", f"output={tmp_path / 'native'}", "size=native",
        cwd=tmp_path,
    )  # fmt: skip
    assert native.returncode == 0, native.stderr
    assert all(Image.open(p).size == (40, 40) for p in (tmp_path / "native").iterdir())
    assert not (tmp_path / "outputs").exists()  # translate writes nothing else


def test_translate_refuses_a_dcgan_checkpoint(tmp_path: Path, mnist_root: Path) -> None:
    from conftest import TINY

    train(make_cfg(tmp_path, [*TINY, f"paths.data_dir={mnist_root}", "logger=csv"]))
    result = run_module(
        "ganlab.translate", f"ckpt={tmp_path / 'checkpoints' / 'last.ckpt'}", f"input={tmp_path / 'csv'}",
        f"output={tmp_path / 'o'}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1 and "DCGAN checkpoint" in result.stderr


def test_fid_protocol_defaults_to_the_test_split_with_a_content_keyed_cache(tmp_path: Path) -> None:
    """CycleGAN/CUT report FID against the target *test* images: the default for CycleGAN data; a
    folder without test images falls back to train with one warning; the cache key follows the files."""
    for data in ("horse2zebra", "unpaired_folder"):
        assert make_cfg(tmp_path, ["model=cyclegan", f"data={data}"]).metrics.reference == "test"
    root = fabricate.unpaired_folder(tmp_path / "data")
    (root / "trainA" / "zz_corrupt.jpg").unlink()
    dm = UnpairedDataModule(str(tmp_path), root=str(root), crop_size=32, load_size=36, num_workers=0)
    before = dm.fid_references("test")
    assert before["a2b"].split == "test" and len(before["a2b"].images) == 3  # testB
    (root / "testB" / "testB_0.png").write_bytes((root / "testB" / "testB_2.png").read_bytes())
    after = UnpairedDataModule(str(tmp_path), root=str(root), crop_size=32, num_workers=0).fid_references(
        "test"
    )
    assert after["a2b"].dataset != before["a2b"].dataset and after["b2a"].dataset == before["b2a"].dataset
    shutil.rmtree(root / "testB")
    no_test = UnpairedDataModule(str(tmp_path), root=str(root), crop_size=32, num_workers=0)
    with pytest.warns(UserWarning, match=r"no testB/ images: FID compares with trainB/"):
        refs = no_test.fid_references("test")
    assert refs["a2b"].split == "train" and refs["b2a"].split == "test"


def test_cyclegan_resume_applies_a_changed_lr_to_the_schedule(tmp_path: Path, clean_folder: Path) -> None:
    """A changed ``model.lr`` on resume becomes the schedule's base: the decay continues from it."""
    common = [*TINY_CYCLE, f"data.root={clean_folder}", "trainer.max_epochs=3"]
    train(make_cfg(tmp_path / "first", [*common, "max_iters=8"]))  # into epoch 2: decaying
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(make_cfg(tmp_path / "b", [*common, "max_iters=9", f"ckpt_path={ckpt}", "model.lr=1e-4"]))
    resumed = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)
    factor = 1 - 1 / 3  # n_epochs=1, then linear over 2: epoch 1's factor
    for state, sched in zip(resumed["optimizer_states"], resumed["lr_schedulers"], strict=True):
        assert state["param_groups"][0]["initial_lr"] == 1e-4 and sched["base_lrs"] == [1e-4]
        assert state["param_groups"][0]["lr"] == pytest.approx(1e-4 * factor)
    assert losses_by_step(tmp_path / "b")[8]["train/lr"] == pytest.approx(1e-4 * factor)
