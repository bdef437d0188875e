"""FID/KID: the Fréchet distance, torch-fidelity agreement, the cache, preflight, best.ckpt, DDP."""

from __future__ import annotations

import csv
import json
import os
import socket
import time
import warnings
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image
from scipy import linalg

import fabricate
from conftest import TINY, fid_weights, make_cfg, run_module
from ganlab.metrics.cache import RealStatsCache
from ganlab.metrics.evaluator import FIDEvaluator, Reference, generated_batches, precision_recall, shard
from ganlab.metrics.fid import FidKid
from ganlab.metrics.inception import (
    InceptionFeatures,
    MissingWeightsError,
    WrongWeightsError,
    resolve_weights,
)
from ganlab.train import train


def scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
    """‖μx − μy‖² + Tr(Σx + Σy − 2(ΣxΣy)^½), as in Heusel et al. 2017 / pytorch-fid."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_distance_matches_scipy_on_known_gaussians() -> None:
    rng = np.random.default_rng(0)
    dim = 6
    a = rng.normal(size=(dim, dim))
    x = rng.multivariate_normal(np.zeros(dim), np.eye(dim), size=4000)
    y = rng.multivariate_normal(np.full(dim, 0.5), a @ a.T / dim + np.eye(dim) * 0.1, size=3000)
    metric = FidKid(dim=dim, kid_subset_size=500)
    for chunk in np.array_split(x, 7):  # batched updates accumulate exactly
        metric.update(torch.from_numpy(chunk), real=True)
    metric.update(torch.from_numpy(y), real=False)
    result = metric.compute()
    assert result["fid"] == pytest.approx(scipy_fid(x, y), rel=1e-6)
    # and near the closed form for these two Gaussians (sampling error only)
    s2 = a @ a.T / dim + np.eye(dim) * 0.1
    exact = dim * 0.25 + np.trace(np.eye(dim) + s2 - 2 * linalg.sqrtm(s2).real)
    assert result["fid"] == pytest.approx(exact, rel=0.05)


def test_identical_sets_have_zero_fid() -> None:
    x = torch.randn(500, 4, dtype=torch.float64)
    metric = FidKid(dim=4, kid_subset_size=100)
    metric.update(x, real=True)
    metric.update(x, real=False)
    assert abs(metric.compute()["fid"]) < 1e-6


def write_folder(folder: Path, n: int, mean: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        pixels = np.clip(rng.normal(mean, 50, size=(32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return folder


@pytest.mark.slow  # ~30 s: two torch-fidelity runs beside ours
def test_evaluate_folders_agrees_with_torch_fidelity(tmp_path: Path, weights: Path) -> None:
    import torch_fidelity

    real = write_folder(tmp_path / "real", 60, 110, seed=1)
    fake = write_folder(tmp_path / "fake", 50, 150, seed=2)
    result = run_module(
        "ganlab.evaluate", f"real={real}", f"fake={fake}", *fid_weights(weights),
        "metrics.fid.feature=64", "device=cpu", "metrics.isc=true", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout.strip().splitlines()[-1])
    theirs = torch_fidelity.calculate_metrics(
        input1=str(real), input2=str(fake), fid=True, kid=True, kid_subset_size=50, feature_layer_fid="64",
        feature_layer_kid="64", feature_extractor_weights_path=str(weights), cuda=False, verbose=False,
    )  # fmt: skip
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-3)
    # metrics.isc: the Inception Score of the generated side (torch-fidelity's input1)
    theirs = torch_fidelity.calculate_metrics(
        input1=str(fake), isc=True, feature_extractor_weights_path=str(weights), cuda=False, verbose=False
    )
    assert ours["isc_mean"] == pytest.approx(theirs["inception_score_mean"], rel=1e-5)
    assert ours["isc_std"] == pytest.approx(theirs["inception_score_std"], rel=1e-4, abs=1e-7)
    assert "precision" not in ours  # metrics.prc is off by default
    assert ours["num_real"] == 60 and ours["num_fake"] == 50
    assert ours["protocol"]["weights_sha256"] and "antialias=False" in ours["protocol"]["resize"]


def test_precision_is_of_the_generated_side_and_recall_of_the_real_side() -> None:
    """Generated images that copy a few real ones: all inside the real manifold (precision 1), and
    they cover little of it (recall low). Swapped arguments would give the opposite."""
    g = torch.Generator().manual_seed(0)
    real = torch.randn(200, 2, generator=g)
    fake = real[0] + 1e-3 * torch.randn(20, 2, generator=g)  # a tight cluster at one real image
    out = precision_recall(fake, real)
    assert out["precision"] == 1.0 and out["recall"] < 0.05


@pytest.mark.slow
def test_precision_recall_agrees_with_torch_fidelity(tmp_path: Path, weights: Path) -> None:
    """metrics.prc=true: VGG-16 fc2_relu features, k = 3, as torch-fidelity (random VGG-16 values in
    torchvision's layout: no download here); a missing VGG file is named with the Inception one."""
    import torch_fidelity
    import torchvision

    vgg = tmp_path / "vgg16.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), vgg)
    real = write_folder(tmp_path / "real", 16, 110, seed=1)
    fake = write_folder(tmp_path / "fake", 14, 150, seed=2)
    args = [f"real={real}", f"fake={fake}", "metrics.fid.feature=64", "device=cpu", "metrics.prc=true"]
    result = run_module(
        "ganlab.evaluate", *args, *fid_weights(weights), f"metrics.vgg.weights_path={vgg}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout.strip().splitlines()[-1])
    theirs = torch_fidelity.calculate_metrics(
        input1=str(fake), input2=str(real), prc=True, feature_extractor_weights_path=str(vgg), cuda=False,
        verbose=False,
    )  # fmt: skip
    for name in ("precision", "recall", "f_score"):
        assert ours[name] == pytest.approx(theirs[name], abs=1e-6), name
    missing = run_module(
        "ganlab.evaluate", *args, "metrics.fid.weights_path=no_inception.pth",
        "metrics.vgg.weights_path=no_vgg.pth", cwd=tmp_path,
    )  # fmt: skip
    (error,) = [line for line in missing.stderr.splitlines() if line.startswith("error:")]
    assert "no_inception.pth" in error and "no_vgg.pth" in error


class CountingEvaluator(FIDEvaluator):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.images_seen = 0

    def features(self, images: torch.Tensor) -> torch.Tensor:
        self.images_seen += len(images)
        return super().features(images)


def reference(n: int = 24) -> Reference:
    g = torch.Generator().manual_seed(0)
    return Reference(
        "toy", "train", "32px", torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    )


def test_real_statistics_are_cached_and_reused(tmp_path: Path, weights: Path) -> None:
    cpu = torch.device("cpu")
    first = CountingEvaluator(weights, tmp_path, cpu, dim=64, batch_size=10, kid_subset_size=10)
    first.set_reference("", reference())
    assert first.images_seen == 24 and first.cache_hits == []
    second = CountingEvaluator(weights, tmp_path, cpu, dim=64, batch_size=10, kid_subset_size=10)
    second.set_reference("", reference())
    assert second.images_seen == 0 and second.cache_hits == [""]  # nothing recomputed
    fakes = reference(20).images
    a = first.score("", iter([fakes]))
    b = second.score("", iter([fakes]))
    assert a["fid"] == pytest.approx(b["fid"], rel=1e-9) and a["num_real"] == b["num_real"] == 24
    # another image count is another key
    third = CountingEvaluator(weights, tmp_path, cpu, dim=64, batch_size=10, kid_subset_size=10)
    third.set_reference("", reference(12))
    assert third.images_seen == 12


def test_jobs_needing_the_same_statistics_at_once_compute_them_once(tmp_path: Path, weights: Path) -> None:
    """Two jobs of a sweep (here two threads: flock is per open file, as between processes) reach
    the same missing statistics together: one computes while the other waits, then reads its file."""
    import threading

    cpu = torch.device("cpu")
    jobs = [CountingEvaluator(weights, tmp_path, cpu, dim=64, batch_size=4) for _ in range(2)]
    inside = threading.Barrier(2)

    def run(job: CountingEvaluator) -> None:
        inside.wait()
        job.set_reference("", reference())

    original = CountingEvaluator.features
    CountingEvaluator.features = lambda self, images: (time.sleep(0.2), original(self, images))[1]
    try:
        threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        CountingEvaluator.features = original
    assert sorted(job.images_seen for job in jobs) == [0, 24]  # computed once, read once
    assert sorted(len(job.cache_hits) for job in jobs) == [0, 1]


def test_damaged_cache_is_detected_and_recomputed(tmp_path: Path, weights: Path) -> None:
    cpu = torch.device("cpu")
    CountingEvaluator(weights, tmp_path, cpu, dim=64, batch_size=10).set_reference("", reference())
    (cache_file,) = (tmp_path / "fid-real").glob("*.pt")
    blob = bytearray(cache_file.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte inside the tensors
    cache_file.write_bytes(bytes(blob))
    again = CountingEvaluator(weights, tmp_path, cpu, dim=64, batch_size=10)
    with pytest.warns(UserWarning, match="damaged"):
        again.set_reference("", reference())
    assert again.images_seen == 24 and again.cache_hits == []
    assert RealStatsCache(tmp_path).load(json.loads(json.dumps(_meta_of(again)))) is not None


def _meta_of(evaluator: FIDEvaluator) -> dict:
    ref = reference()
    return {
        "dataset": ref.dataset, "split": ref.split, "transform": ref.transform, "count": len(ref.images),
        "weights_sha256": evaluator.weights_sha256, "feature": 64,
    }  # fmt: skip


def test_missing_weights_stop_before_training(tmp_path: Path, mnist_root: Path) -> None:
    env = {
        "TORCH_HOME": str(tmp_path / "torch"),
        "https_proxy": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    args = [a for a in TINY if a != "metrics=none"]
    result = run_module(
        "ganlab.train", *args, f"paths.data_dir={mnist_root}", "logger=none",
        f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 1
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "weights-inception-2015-12-05-6726825d.pth" in error and "metrics=none" in error
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in error and "github.com" in error
    assert not (tmp_path / "run" / "checkpoints").exists()  # stopped before training


def test_preflight_names_missing_data_and_weights_at_once(tmp_path: Path) -> None:
    """Offline, without MNIST and without the Inception weights: one error naming both, before training."""
    args = [a for a in TINY if a != "metrics=none"]
    result = run_module(
        "ganlab.train", *args, f"paths.data_dir={tmp_path / 'empty'}", "data.download=false", "logger=none",
        f"metrics.fid.weights_path={tmp_path / 'inception.pth'}", f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "MNIST" in error and "download disabled" in error and "inception.pth does not exist" in error
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_fid_over_fewer_images_than_features_warns_once(weights: Path) -> None:
    evaluator = FIDEvaluator(weights, None, torch.device("cpu"), dim=64, batch_size=8, kid_subset_size=4)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=g)
    evaluator.set_reference_batches("a2b", iter([images]))
    with pytest.warns(UserWarning, match=r"FID \(a2b\) over 10 images, fewer than the 64 feature dimensions"):
        evaluator.score("a2b", iter([images.flip(-1)]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per comparison, not at every evaluation
        evaluator.score("a2b", iter([images.flip(-1)]))


def test_weights_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="does not exist"):
        resolve_weights(str(tmp_path / "nope.pth"))


def test_training_logs_fid_and_keeps_best_ckpt_of_the_lowest(
    tmp_path: Path, mnist_root: Path, weights: Path
) -> None:
    overrides = [
        *[a for a in TINY if a != "metrics=none"], f"paths.data_dir={mnist_root}", "logger=csv",
        *fid_weights(weights), "metrics.fid.feature=64", "metrics.every_n_epochs=null",
        "metrics.every_n_iters=1", "metrics.num_fake=16", "metrics.num_real=16", "metrics.batch_size=16",
        "metrics.kid.subset_size=8", f"paths.cache_dir={tmp_path / 'cache'}", "model.lr=0.01",
    ]  # fmt: skip
    best = train(make_cfg(tmp_path / "run", overrides))
    (path,) = (tmp_path / "run").glob("csv/version_*/metrics.csv")
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/fid")]
    fids = [float(r["val/fid"]) for r in rows]
    assert len(fids) == 4 and best == pytest.approx(min(fids), rel=1e-6)
    assert float(rows[-1]["val/fid_best"]) == pytest.approx(min(fids), rel=1e-6)
    saved = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)
    assert saved["iteration"] == 1 + int(np.argmin(fids))  # the lower value wins
    assert not any("inception" in k or "extractor" in k for k in saved["state_dict"])  # no Inception weights
    # a second run on the same data reuses the cached real statistics
    train(make_cfg(tmp_path / "run2", overrides))
    assert len(list((tmp_path / "cache" / "fid-real").glob("*.pt"))) == 1


def test_best_fid_and_best_ckpt_survive_a_resume(tmp_path: Path, mnist_root: Path, weights: Path) -> None:
    """FID is settled before last.ckpt is written at the same iteration, so last.ckpt holds the best
    so far; after a resume a worse model never replaces best.ckpt and val/fid_best stays the minimum."""
    overrides = [
        *[a for a in TINY if a != "metrics=none"], f"paths.data_dir={mnist_root}", "logger=csv",
        *fid_weights(weights), "metrics.fid.feature=64", "metrics.every_n_epochs=null",
        "metrics.every_n_iters=2", "metrics.num_fake=16", "metrics.num_real=16", "metrics.batch_size=16",
        "metrics.kid.subset_size=8", f"paths.cache_dir={tmp_path / 'cache'}", "model.lr=0.01",
        "trainer.max_epochs=2",
    ]  # fmt: skip
    train(make_cfg(tmp_path / "first", [*overrides, "max_iters=2"]))
    last = torch.load(tmp_path / "first" / "checkpoints" / "last.ckpt", weights_only=True)
    (state,) = [v for k, v in last["callbacks"].items() if k.startswith("FIDCallback")]
    (first_fid,) = read_fids(tmp_path / "first")
    assert (
        last["iteration"] == 2 and state["best"] == pytest.approx(first_fid) and state["best_iteration"] == 2
    )
    resumed = [*overrides, "max_iters=8", f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}"]
    train(make_cfg(tmp_path / "second", resumed))
    fids = [first_fid, *read_fids(tmp_path / "second")]
    with open(next((tmp_path / "second").glob("csv/version_*/metrics.csv"))) as f:
        logged_best = [float(r["val/fid_best"]) for r in csv.DictReader(f) if r.get("val/fid_best")]
    assert logged_best[-1] == pytest.approx(min(fids))  # the first run's value counts after the resume
    best_ckpt = tmp_path / "second" / "checkpoints" / "best.ckpt"
    if min(fids) == first_fid:  # the resumed run never beat the first one: its best.ckpt stays where it is
        assert not best_ckpt.exists()
    else:
        saved = torch.load(best_ckpt, weights_only=True)
        (best_state,) = [v for k, v in saved["callbacks"].items() if k.startswith("FIDCallback")]
        assert (
            best_state["best"] == pytest.approx(min(fids))
            and saved["iteration"] == best_state["best_iteration"]
        )


def read_fids(run_dir: Path) -> list[float]:
    with open(next(run_dir.glob("csv/version_*/metrics.csv"))) as f:
        return [float(r["val/fid"]) for r in csv.DictReader(f) if r.get("val/fid")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, weights: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    try:
        result = _score(Path(weights))
        if rank == 0:
            Path(out).write_text(json.dumps(result))
    finally:
        torch.distributed.destroy_process_group()


def _score(weights: Path) -> dict:
    evaluator = FIDEvaluator(weights, None, torch.device("cpu"), dim=64, batch_size=7, kid_subset_size=10)
    evaluator.set_reference("", reference(23))
    sources = torch.linspace(-1, 1, 21 * 3 * 32 * 32).view(21, 3, 32, 32).sin()
    return evaluator.score("", generated_batches(lambda x: x.cos() * 0.9, sources, 5))


def test_ddp_on_two_processes_equals_one_process(tmp_path: Path, weights: Path) -> None:
    single = _score(weights)
    out = tmp_path / "ddp.json"
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(weights), str(out)), nprocs=2, join=True)
    ddp = json.loads(out.read_text())
    assert ddp["num_real"] == 23 and ddp["num_fake"] == 21  # split exactly, no padding duplicates
    assert ddp["fid"] == pytest.approx(single["fid"], rel=1e-6)
    assert ddp["kid_mean"] == pytest.approx(single["kid_mean"], rel=1e-5)


def test_shards_cover_exactly_once() -> None:
    parts = [shard(23, r, 3) for r in range(3)]
    assert [list(range(23))[p] for p in parts] == [list(range(0, 8)), list(range(8, 16)), list(range(16, 23))]


def test_cyclegan_fid_both_directions(tmp_path: Path, weights: Path) -> None:
    from test_cyclegan import TINY_CYCLE

    root = fabricate.unpaired_folder(tmp_path / "data")
    (root / "trainA" / "zz_corrupt.jpg").unlink()
    overrides = [
        *[a for a in TINY_CYCLE if a != "metrics=none"], f"data.root={root}", "trainer.max_epochs=2",
        *fid_weights(weights), "metrics.fid.feature=64", "metrics.reference=test",
        "metrics.kid.subset_size=2", f"paths.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    best = train(make_cfg(tmp_path / "run", overrides))
    (path,) = (tmp_path / "run").glob("csv/version_*/metrics.csv")
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/fid_a2b")]
    assert len(rows) == 2 and all(r["val/fid_b2a"] and r["val/kid_a2b"] and r["val/kid_b2a"] for r in rows)
    assert best == pytest.approx(min(float(r["val/fid_a2b"]) for r in rows), rel=1e-6)  # monitor: a2b
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()


def test_evaluate_a_checkpoint(tmp_path: Path, mnist_root: Path, weights: Path, dcgan_ckpt: Path) -> None:
    result = run_module(
        "ganlab.evaluate", f"ckpt={dcgan_ckpt}", *fid_weights(weights),
        "metrics.fid.feature=64", "metrics.reference=test", "num_fake=24", "metrics.kid.subset_size=8",
        f"paths.cache_dir={tmp_path / 'cache'}", "device=cpu", f"data_dir={mnist_root}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["num_real"] == 64 and out["num_fake"] == 24  # the fabricated test split, num_fake latents
    assert out["fid"] >= 0 and out["iteration"] == 4 and out["protocol"]["reference"] == "test"
    assert len(list((tmp_path / "cache" / "fid-real").glob("*.pt"))) == 1  # real stats cached


def test_garbage_truncated_or_wrong_inception_weights_are_one_line(tmp_path: Path, weights: Path) -> None:
    """Each bad file is refused by its sha256 first; used anyway (allow_other_weights), it is still
    one short line: never an unpickling traceback, a missing-keys dump or torch's weights_only advice."""
    blob = weights.read_bytes()
    files = {
        "garbage.pth": (np.random.default_rng(0).bytes(4096), "is not a torch file of plain data"),
        "truncated.pth": (blob[: len(blob) // 2], "is truncated or damaged"),
    }
    for name, (content, _) in files.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"state_dict": {"w": torch.zeros(1)}, "ganlab_config": {"seed": 0}}, tmp_path / "run.ckpt")
    files["run.ckpt"] = (b"", "is not a state dict of tensors")
    torch.save({"generator.0.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    files["other.pth"] = (b"", "does not fit torch-fidelity's Inception")
    for name, (_, message) in files.items():
        with pytest.raises(WrongWeightsError, match="not torch-fidelity's Inception weights"):
            resolve_weights(str(tmp_path / name))
        with pytest.raises(WrongWeightsError) as raised:
            InceptionFeatures(resolve_weights(str(tmp_path / name), allow_other=True), dim=64)
        text = str(raised.value)
        assert message in text and "\n" not in text and len(text) < 500 and "weights_only" not in text, text
