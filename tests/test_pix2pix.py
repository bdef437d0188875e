"""pix2pix: aligned pairs (one crop for A and B), training, exact resume, metrics, tools, downloads."""

from __future__ import annotations

import csv
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from hydra import compose, initialize_config_dir
from PIL import Image

import fabricate
import official_arch as oa
from conftest import fid_weights, make_cfg, run_module
from ganlab.data.paired import PairedDataModule
from ganlab.errors import ConfigError, DataError, GanlabError
from ganlab.evaluate import evaluate
from ganlab.nets.unet import UnetGenerator
from ganlab.train import CONFIG_DIR, train

TINY_P2P = [
    "model=pix2pix", "data=paired_folder", "data.load_size=36", "data.crop_size=32", "data.num_workers=0",
    "data.num_panels=2", "model.generator.num_downs=5", "model.generator.ngf=4", "model.discriminator.ndf=4",
    "trainer=cpu", "trainer.log_every_n_steps=1", "~callbacks.progress_bar", "logger=csv", "metrics=none",
]  # fmt: skip


def losses(run_dir: Path) -> dict[int, tuple[float, ...]]:
    (path,) = run_dir.glob("csv/version_*/metrics.csv")
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss_d")]
    keys = ("train/loss_d", "train/loss_g_gan", "train/loss_g_l1")
    return {int(r["step"]): tuple(float(r[k]) for k in keys) for r in rows}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fabricate.paired_folder(tmp_path_factory.mktemp("facades"))


def test_one_crop_and_flip_for_both_halves(tmp_path: Path) -> None:
    """With A == B in every file, any difference between the two preprocessed halves would be a
    crop or flip drawn twice; the crops themselves vary from item to item and epoch to epoch."""
    root = tmp_path / "same"
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        a = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, a], axis=1)).save(root / "train" / f"{i}.png")
    dm = PairedDataModule(str(tmp_path), root=str(root), load_size=48, crop_size=32, num_workers=0)
    dm.setup()
    seen = []
    for tagged in range(12):  # three epochs of four
        item = dm.train_set[tagged]
        assert item["A"].shape == (3, 32, 32) and torch.equal(item["A"], item["B"])
        seen.append(item["A"])
    assert not torch.equal(seen[0], seen[4])  # the same file, another epoch: another crop or flip
    swapped = PairedDataModule(str(tmp_path), root=str(root), direction="BtoA", load_size=48, crop_size=32)
    swapped.setup()
    assert torch.equal(swapped.train_set[5]["A"], dm.train_set[5]["A"])  # (A == B here) same draw


def test_direction_picks_the_halves(pairs: Path, tmp_path: Path) -> None:
    a2b = PairedDataModule(str(tmp_path), root=str(pairs), crop_size=40, flip=False)
    b2a = PairedDataModule(str(tmp_path), root=str(pairs), crop_size=40, flip=False, direction="BtoA")
    (src, dst), (src2, dst2) = a2b.pairs(), b2a.pairs()
    assert src.shape == (3, 3, 40, 40) and torch.equal(src, dst2) and torch.equal(dst, src2)
    assert (dst[:, :, :3] > 200).all() and not (
        src[:, :, :3] > 200
    ).all()  # the band is in the right half (B), as fabricated
    with pytest.raises(ConfigError, match=r"data\.direction=sideways"):
        PairedDataModule(str(tmp_path), root=str(pairs), direction="sideways")


P2P_RUN = ["trainer.max_epochs=3", "callbacks.checkpoint.every_n_iters=3"]


@pytest.fixture(scope="module")
def p2p_run(tmp_path_factory: pytest.TempPathFactory, pairs: Path) -> Path:
    """An uninterrupted 8-iteration pix2pix run."""
    run = tmp_path_factory.mktemp("p2p")
    train(make_cfg(run, [*TINY_P2P, f"data.root={pairs}", *P2P_RUN, "max_iters=8"]))
    return run


def test_pix2pix_trains_and_resumes_exactly(tmp_path: Path, pairs: Path, p2p_run: Path) -> None:
    common = [*TINY_P2P, f"data.root={pairs}", *P2P_RUN]
    train(make_cfg(tmp_path / "first", [*common, "max_iters=4"]))
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(make_cfg(tmp_path / "resumed", [*common, "max_iters=8", f"ckpt_path={ckpt}"]))
    full, resumed = losses(p2p_run), losses(tmp_path / "resumed")
    assert len(full) == 8 and sorted(resumed) == [4, 5, 6, 7]
    for step, values in resumed.items():  # dropout masks, crops, flips and order all continue exactly
        assert values == pytest.approx(full[step], rel=1e-5, abs=1e-6), step
    assert full[7][2] < full[0][2]  # the L1 term falls
    assert (p2p_run / "samples" / "a2b_0000008.png").is_file()


@pytest.mark.slow
def test_pix2pix_translate_and_export(tmp_path: Path, pairs: Path, p2p_run: Path) -> None:
    last = p2p_run / "checkpoints" / "last.ckpt"
    out = [tmp_path / "t1", tmp_path / "t2"]
    for folder in out:  # translate: dropout on at test time, seeded: the same output twice
        result = run_module("ganlab.translate", f"ckpt={last}", f"input={pairs / 'test'}", f"output={folder}",
                            "device=cpu", cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
    names = sorted(p.name for p in out[0].iterdir())
    assert names == ["1.jpg", "2.jpg", "3.jpg"]
    assert all((out[0] / n).read_bytes() == (out[1] / n).read_bytes() for n in names)

    result = run_module("ganlab.export", f"ckpt={last}", f"output={tmp_path / 'official'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    official_g = oa.UnetGenerator(3, 3, 5, ngf=4, norm="batch", use_dropout=True)
    official_g.load_state_dict(torch.load(tmp_path / "official" / "latest_net_G.pth", weights_only=True))
    official_d = oa.NLayerDiscriminator(6, ndf=4, norm="batch")
    official_d.load_state_dict(torch.load(tmp_path / "official" / "latest_net_D.pth", weights_only=True))


def test_pix2pix_metrics_on_the_test_pairs(tmp_path: Path, pairs: Path) -> None:
    weights = fabricate.inception_weights(tmp_path / "inception.pth")
    alexnet = tmp_path / "alexnet.pth"  # torchvision's AlexNet layout, random values (no download here)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), alexnet)
    metrics = ["metrics=fid", *fid_weights(weights), "metrics.fid.feature=64", "metrics.kid.subset_size=2",
               f"metrics.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    metrics.append(f"metrics.lpips.weights_path={alexnet}")
    args = [*TINY_P2P, f"data.root={pairs}", "trainer.max_epochs=1", "trainer.limit_train_batches=3"]
    args += metrics
    train(make_cfg(tmp_path / "run", args))
    (path,) = (tmp_path / "run").glob("csv/version_*/metrics.csv")
    with open(path) as f:
        row = next(r for r in csv.DictReader(f) if r.get("val/psnr"))
    assert (
        0 < float(row["val/l1"]) < 1 and 0 < float(row["val/psnr"]) < 60 and -1 <= float(row["val/ssim"]) <= 1
    )
    assert float(row["val/fid_a2b"]) >= 0
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["ganlab_config"]["metrics"]["reference"] == "test"  # the pix2pix default (model_data)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):  # evaluate: the same numbers
        cfg = compose(
            "evaluate", [f"ckpt={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}", "device=cpu", *metrics[1:]]
        )
    scores = evaluate(cfg)
    assert scores["protocol"]["reference"] == "test"
    for name in ("fid", "l1", "psnr", "ssim", "lpips"):
        assert scores["a2b"][name] == pytest.approx(
            float(row[f"val/{name}" if name != "fid" else "val/fid_a2b"]), rel=1e-4
        )


def test_preflight_names_every_missing_weights_file(tmp_path: Path, pairs: Path) -> None:
    """Offline, a pix2pix run lacking both the Inception and the AlexNet weights fails once, naming both,
    before training."""
    missing = ["metrics=fid", f"metrics.fid.weights_path={tmp_path / 'no_inception.pth'}",
               f"metrics.lpips.weights_path={tmp_path / 'no_alexnet.pth'}"]  # fmt: skip
    with pytest.raises(GanlabError) as error:
        train(make_cfg(tmp_path / "run", [*TINY_P2P, f"data.root={pairs}", "max_iters=2", *missing]))
    message = str(error.value)
    assert "no_inception.pth" in message and "no_alexnet.pth" in message and "\n" not in message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_pix2pix_needs_paired_data(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data=facades or data=paired_folder"):
        args = ["model=pix2pix", "data=synthetic", "trainer=cpu", "logger=none", "metrics=none"]
        train(make_cfg(tmp_path, args))


def test_unet_shapes_and_skip_layout() -> None:
    net = UnetGenerator(ngf=4, num_downs=6, dropout=0.5)
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 3, 64, 64)
    assert net.size_multiple == 64
    official = oa.UnetGenerator(3, 3, 6, ngf=4, norm="batch", use_dropout=True)
    assert net.state_dict().keys() == official.state_dict().keys()  # the official key layout


def _facades_archive(served: Path, tmp_path: Path, escape: bool = False) -> None:
    staged = fabricate.paired_folder(tmp_path / "stage" / "facades", counts={"train": 2, "test": 1})
    with tarfile.open(served / "facades.tar.gz", "w:gz") as tar:
        tar.add(staged, arcname="facades")
        if escape:
            tar.add(staged / "train" / "1.jpg", arcname="facades/../../escaped.jpg")


def test_official_set_download_and_its_refusals(tmp_path: Path, http_root: tuple[str, Path]) -> None:
    base, served = http_root
    _facades_archive(served, tmp_path)
    dm = PairedDataModule(str(tmp_path / "data"), name="facades", url=f"{base}facades.tar.gz")
    dm.prepare_data()
    assert sorted(p.name for p in (tmp_path / "data" / "facades" / "train").iterdir()) == ["1.jpg", "2.jpg"]
    assert not (tmp_path / "data" / "facades.tar.gz").exists()  # ours, removed once extracted
    dm.setup()
    assert dm.eval_split() == "test" and len(dm.train_set) == 2

    (served / "facades.tar.gz").unlink()
    _facades_archive(served, tmp_path / "evil", escape=True)
    with pytest.raises(DataError, match=r"escape|outside|refus"):
        PairedDataModule(str(tmp_path / "d2"), name="facades", url=f"{base}facades.tar.gz").prepare_data()
    assert not (tmp_path / "escaped.jpg").exists() and not (tmp_path / "d2" / "facades").exists()
    with pytest.raises(DataError, match=r"cityscapes-dataset\.com"):
        PairedDataModule(str(tmp_path / "d3"), name="cityscapes").prepare_data()
    with pytest.raises(DataError, match="failed"):
        PairedDataModule(str(tmp_path / "d4"), name="facades", url=f"{base}missing.tar.gz").prepare_data()


def test_lpips_weights_are_fetched_once_and_checked(tmp_path: Path, http_root, monkeypatch) -> None:
    """No file: fetched into the hub cache from the published URL; a wrong download is refused (sha256)
    and never takes the name; a failed one is one line saying how to get the file."""
    from ganlab.metrics import hub, lpips

    base, served = http_root
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), served / lpips.ALEXNET_FILE)
    monkeypatch.setattr(hub, "ALEXNET_URL", f"{base}{lpips.ALEXNET_FILE}")
    with pytest.raises(lpips.MissingLpipsWeightsError, match="not the published 7be5be79"):
        lpips.resolve_alexnet(None)
    assert not list((tmp_path / "hub" / "checkpoints").iterdir())  # no part file, nothing named
    monkeypatch.setattr(hub, "ALEXNET_URL", f"{base}missing.pth")
    with pytest.raises(lpips.MissingLpipsWeightsError, match=r"failed.*metrics\.lpips\.enabled=false"):
        lpips.resolve_alexnet(None)
    cached = tmp_path / "hub" / "checkpoints" / lpips.ALEXNET_FILE
    cached.write_bytes((served / lpips.ALEXNET_FILE).read_bytes())  # other weights under the cache's name
    with pytest.raises(
        lpips.MissingLpipsWeightsError, match=r"is not the published .* metrics.lpips.weights_path="
    ):
        lpips.resolve_alexnet(None)  # never used as the published file (a poisoned cache)
    assert lpips.resolve_alexnet(str(cached)) == cached  # the user's own file, named: used as it is
    assert lpips.Lpips(cached)(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)).item() == 0
