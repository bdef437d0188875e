"""Class-conditional DCGAN: conditional BatchNorm G, projection D, labelled data, the tools."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from conftest import TINY, fid_weights, make_cfg, run_module
from ganlab.errors import ConfigError
from ganlab.modules.dcgan import DCGAN
from ganlab.nets.dcgan import Discriminator, Generator
from ganlab.train import train

CONDITIONAL = [*TINY, "model.conditional=true", "logger=csv"]


def nets(k: int | None = 10, size: int = 32) -> tuple[Generator, Discriminator]:
    torch.manual_seed(0)
    return (
        Generator(latent_dim=16, channels=1, image_size=size, ngf=8, num_classes=k),
        Discriminator(channels=1, image_size=size, ndf=8, num_classes=k),
    )


@pytest.mark.parametrize("size", [28, 32, 64])
def test_conditional_shapes_and_the_class_changes_the_output(size: int) -> None:
    g, d = nets(size=size)
    g.eval(), d.eval()
    z = torch.randn(4, 16)
    seven, three = g(z, torch.full((4,), 7)), g(z, torch.full((4,), 3))
    assert seven.shape == (4, 1, size, size) and d(seven, torch.full((4,), 7)).shape == (4,)
    with torch.no_grad():  # a trained G: per-class scales differ (at init all classes are the plain BN)
        g.net[1].gain.weight[3].mul_(2.0)
        d.projection.table.weight[3].add_(1.0)
    assert not torch.allclose(g(z, torch.full((4,), 3)), g(z, torch.full((4,), 7)))
    assert not torch.allclose(d(seven, torch.full((4,), 3)), d(seven, torch.full((4,), 7)))
    assert torch.allclose(three, g(z, torch.full((4,), 5)))  # untouched classes: identical at init


def test_one_hot_weights_equal_class_indices_and_blends_lie_between() -> None:
    g, d = nets()
    g.eval(), d.eval()
    with torch.no_grad():
        for layer in g.net:
            if hasattr(layer, "gain"):
                layer.gain.weight.uniform_(0.5, 1.5)
                layer.bias.weight.uniform_(-0.5, 0.5)
    z, y = torch.randn(3, 16), torch.tensor([1, 4, 9])
    one_hot = F.one_hot(y, 10).float()
    assert torch.allclose(g(z, y), g(z, one_hot), atol=1e-6)
    x = g(z, y)
    assert torch.allclose(d(x, y), d(x, one_hot), atol=1e-5)


def test_projection_adds_the_inner_product_of_embedding_and_pooled_features() -> None:
    _, d = nets()
    d.eval()
    x, y = torch.randn(2, 1, 32, 32), torch.tensor([2, 6])
    features = d.net[:-1](x)
    expected = d.net[-1](features).view(-1) + (d.projection.table.weight[y] * features.sum((2, 3))).sum(1)
    assert torch.allclose(d(x, y), expected, atol=1e-5)


def test_unconditional_networks_are_unchanged_and_refuse_labels() -> None:
    g, d = nets(k=None)
    assert not any("gain" in k or "projection" in k for k in [*g.state_dict(), *d.state_dict()])
    assert "net.1.weight" in g.state_dict()  # the plain BatchNorm's affine, as old checkpoints hold
    with pytest.raises(ValueError, match="unconditional"):
        g(torch.randn(2, 16), torch.tensor([0, 1]))
    cg, _ = nets()
    with pytest.raises(ValueError, match="needs labels"):
        cg(torch.randn(2, 16))
    with pytest.raises(ConfigError, match="at least 2 classes"):
        Generator(num_classes=1)


def test_module_refuses_inconsistent_class_settings() -> None:
    g, d = nets()
    optimizer = torch.optim.Adam
    with pytest.raises(ConfigError, match="needs class labels"):
        DCGAN(*nets(k=None), optimizer, conditional=True)
    with pytest.raises(ConfigError, match=r"differs from model\.num_classes=5"):
        DCGAN(g, d, optimizer, conditional=True, num_classes=5)
    with pytest.raises(ConfigError, match=r"model\.conditional=false"):
        DCGAN(g, d, optimizer, conditional=False)


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Path:
    run = tmp_path_factory.mktemp("conditional")
    train(make_cfg(run, [*CONDITIONAL, f"paths.data_dir={mnist_root}"]))
    return run


def test_conditional_mnist_trains_with_labels_and_a_row_per_class(conditional_run: Path) -> None:
    ckpt = torch.load(conditional_run / "checkpoints" / "last.ckpt", weights_only=True)
    model = ckpt["ganlab_config"]["model"]
    assert model["num_classes"] == 10 and model["class_names"] == [str(i) for i in range(10)]
    assert model["generator"]["num_classes"] == 10 and model["discriminator"]["num_classes"] == 10
    assert any(".gain." in k for k in ckpt["state_dict"]) and any(
        "projection" in k for k in ckpt["state_dict"]
    )
    grid = Image.open(sorted((conditional_run / "samples").glob("fixed_noise_*.png"))[-1])
    assert grid.size == (2 + 8 * 34, 2 + 10 * 34)  # 8 columns of fixed z, one row per digit


def test_labels_reach_the_module_in_order(mnist_root: Path) -> None:
    """The batches a conditional run trains on carry MNIST's labels for the same images."""
    import fabricate

    arrays = fabricate.mnist(mnist_root.parent / "labels_check", n_train=32, n_test=8, seed=5)
    from ganlab.data.mnist import MNISTDataModule

    dm = MNISTDataModule(str(mnist_root.parent / "labels_check"), batch_size=8, image_size=28, download=False)
    assert dm.use_labels() == [str(i) for i in range(10)]
    dm.setup()
    from torchvision.datasets import MNIST

    targets = MNIST(str(mnist_root.parent / "labels_check"), train=True).targets
    images, labels = next(iter(dm.train_dataloader()))
    for image, label in zip(images, labels, strict=True):
        (index,) = [i for i in range(32) if torch.equal(torch.from_numpy(arrays["train"][i]), image[0])]
        assert int(targets[index]) == int(label)


def test_conditional_needs_labels_from_the_data(tmp_path: Path) -> None:
    result = run_module(
        "ganlab.train", *CONDITIONAL, "data=synthetic", "data.image_size=32", "data.size=32",
        f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: model.conditional=true needs class labels, but this data set has no class labels"
    )


@pytest.mark.slow  # CLI runs (~15-25 s); in CI's slow step
def test_generate_by_class_all_classes_and_bad_classes(conditional_run: Path, tmp_path: Path) -> None:
    ckpt = conditional_run / "checkpoints" / "last.ckpt"

    def gen(*args: str):
        return run_module("ganlab.generate", f"ckpt={ckpt}", *args, cwd=tmp_path)

    assert gen("class=3", "n=4", f"output={tmp_path / 'three'}").returncode == 0
    assert gen("class=4", "n=4", f"output={tmp_path / 'four'}").returncode == 0
    assert gen("class=all", "n=5", f"output={tmp_path / 'all.png'}").returncode == 0
    assert Image.open(tmp_path / "all.png").size == (2 + 5 * 34, 2 + 10 * 34)  # a row per digit
    three, four = (sorted((tmp_path / d).iterdir()) for d in ("three", "four"))
    assert len(three) == 4 and three[0].read_bytes() != four[0].read_bytes()  # same z, other class
    assert gen("class=3", "n=4", f"output={tmp_path / 'again'}").returncode == 0
    assert (tmp_path / "again" / "00000.png").read_bytes() == three[0].read_bytes()
    bad = gen("class=12", f"output={tmp_path / 'x'}")
    assert bad.returncode == 1 and "class=12 is not a class of this model: it has 10 classes" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


@pytest.mark.slow
def test_class_on_an_unconditional_checkpoint(tmp_path: Path, mnist_root: Path) -> None:
    train(make_cfg(tmp_path / "plain", [*TINY, f"paths.data_dir={mnist_root}", "logger=none"]))
    ckpt = tmp_path / "plain" / "checkpoints" / "last.ckpt"
    for tool, extra in (("ganlab.generate", []), ("ganlab.explore", [])):
        result = run_module(
            tool, f"ckpt={ckpt}", "class=7", f"output={tmp_path / 'o.png'}", *extra, cwd=tmp_path
        )
        assert result.returncode == 1 and "is an unconditional model" in result.stderr, result.stderr


@pytest.mark.slow
def test_explore_at_a_fixed_class_and_between_classes(conditional_run: Path, tmp_path: Path) -> None:
    ckpt = conditional_run / "checkpoints" / "last.ckpt"
    walk = run_module("ganlab.explore", f"ckpt={ckpt}", "classes=[1,7,2]", "steps=5",
                      f"output={tmp_path / 'c.png'}", cwd=tmp_path)  # fmt: skip
    assert walk.returncode == 0, walk.stderr
    assert Image.open(tmp_path / "c.png").size == (2 + 5 * 34, 2 + 2 * 34)  # two legs of 5 steps
    fixed = run_module("ganlab.explore", f"ckpt={ckpt}", "class=5", "steps=4", f"output={tmp_path / 'z.png'}",
                       cwd=tmp_path)  # fmt: skip
    assert fixed.returncode == 0 and Image.open(tmp_path / "z.png").size == (2 + 4 * 34, 2 + 2 * 34)
    missing = run_module("ganlab.explore", f"ckpt={ckpt}", f"output={tmp_path / 'n.png'}", cwd=tmp_path)
    assert missing.returncode == 1 and "give class=<k>" in missing.stderr
    arithmetic = run_module(
        "ganlab.explore", "mode=arithmetic", f"ckpt={ckpt}", "class=2", "a=[1]", "b=[2]", "c=[3]",
        f"output={tmp_path / 'sum.png'}", cwd=tmp_path,
    )  # fmt: skip
    assert arithmetic.returncode == 0, arithmetic.stderr


@pytest.mark.slow
def test_per_class_fid_in_training_and_evaluate(tmp_path: Path, mnist_root: Path, weights: Path) -> None:
    overrides = [
        *[a for a in CONDITIONAL if a != "metrics=none"], f"paths.data_dir={mnist_root}",
        *fid_weights(weights), "metrics.fid.feature=64", "metrics.every_n_epochs=null",
        "metrics.every_n_iters=4", "metrics.num_fake=40", "metrics.batch_size=20",
        "metrics.kid.subset_size=4", "metrics.per_class=true",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    train(make_cfg(tmp_path / "run", overrides))
    (path,) = (tmp_path / "run").glob("csv/version_*/metrics.csv")
    with open(path) as f:
        row = next(r for r in csv.DictReader(f) if r.get("val/fid"))
    assert all(row[f"val/fid_class_{k}"] for k in range(10)) and float(row["val/fid"]) >= 0
    result = run_module(
        "ganlab.evaluate", f"ckpt={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}", *fid_weights(weights),
        "metrics.fid.feature=64", "num_fake=40", "metrics.kid.subset_size=4", "metrics.per_class=true",
        f"paths.cache_dir={tmp_path / 'cache'}", "device=cpu", f"data_dir={mnist_root}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(out) >= {"all", "class_0", "class_9"} and out["class_3"]["num_fake"] == 4


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import fabricate

    return fabricate.inception_weights(tmp_path_factory.mktemp("inception_c") / "weights.pth")
