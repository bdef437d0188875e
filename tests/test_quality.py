"""Sample-quality tools: EMA, DiffAugment, spectral norm, R1, WGAN-GP, MNIST padding, and the
quality benchmark's judge and command, on tiny sizes and fabricated data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

import fabricate
from conftest import TINY, make_cfg, run_module
from ganlab.checkpoint import build_module, has_ema
from ganlab.data.sets.base import fit_images
from ganlab.errors import ConfigError
from ganlab.losses import LOSSES, gradient_penalty, r1_penalty
from ganlab.modules.augment import diff_augment, parse_policy
from ganlab.modules.ema import ramped_decay, update_ema
from ganlab.nets.dcgan import Discriminator
from ganlab.quality import DigitNet, Judge, frechet_distance, train_classifier
from ganlab.train import train
from test_train import read_csv_losses

# --- penalties against hand-derived gradients ---


def test_r1_and_gradient_penalty_match_the_analytic_gradients() -> None:
    torch.manual_seed(0)
    w = torch.randn(3 * 4 * 4)
    linear = lambda x: x.flatten(1) @ w  # noqa: E731  ∇ₓD = w for every sample
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    assert r1_penalty(linear(x), x).item() == pytest.approx(w.square().sum().item(), rel=1e-5)
    square = lambda x: x.square().flatten(1).sum(1)  # noqa: E731  ∇ₓD = 2x
    expected = (2 * x).square().flatten(1).sum(1).mean()
    assert r1_penalty(square(x), x).item() == pytest.approx(expected.item(), rel=1e-5)
    real, fake, eps = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4), torch.rand(5, 1, 1, 1)
    assert gradient_penalty(linear, real, fake, eps).item() == pytest.approx(
        (w.norm() - 1).square().item(), rel=1e-5
    )
    mixed = eps * real + (1 - eps) * fake
    expected = ((2 * mixed).flatten(1).norm(dim=1) - 1).square().mean()
    assert gradient_penalty(square, real, fake, eps).item() == pytest.approx(expected.item(), rel=1e-5)


def test_r1_penalty_is_differentiable_for_the_discriminator() -> None:
    d = Discriminator(channels=1, image_size=28, ndf=4, norm="none")
    x = torch.randn(4, 1, 28, 28, requires_grad=True)
    r1_penalty(d(x), x).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())


def test_wasserstein_values() -> None:
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5])
    assert LOSSES["wasserstein"].d(real, fake).item() == pytest.approx(0.0 - 2.0)
    assert LOSSES["wasserstein"].g(fake).item() == pytest.approx(0.0)


def test_spectral_norm_bounds_every_convolution_to_one() -> None:
    torch.manual_seed(0)
    d = Discriminator(channels=1, image_size=28, ndf=8, spectral_norm=True)
    for _ in range(30):  # power iterations run in training-mode forwards
        d(torch.randn(4, 1, 28, 28))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("norm", ["layer", "instance", "none"])
def test_discriminator_norms_have_no_batch_statistics(norm: str) -> None:
    d = Discriminator(channels=1, image_size=28, ndf=4, norm=norm)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    x = torch.randn(3, 1, 28, 28)
    assert torch.allclose(d(x)[:1], d(x[:1]), atol=1e-5)  # per-sample: no mixing across the batch


# --- EMA ---


def test_ema_ramp_up_and_update() -> None:
    assert ramped_decay(0.999, 0) == pytest.approx(0.1)
    assert ramped_decay(0.999, 90) == pytest.approx(91 / 100)
    assert ramped_decay(0.999, 10**6) == 0.999
    live, average = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        live.weight.copy_(torch.tensor([1.0, 2.0]))
        average.weight.copy_(torch.tensor([0.0, 0.0]))
        live.running_mean.copy_(torch.tensor([5.0, 6.0]))
    update_ema(average, live, 0.75)
    assert average.weight.tolist() == pytest.approx([0.25, 0.5])  # 0.75·0 + 0.25·θ
    assert average.running_mean.tolist() == [5.0, 6.0]  # buffers follow the live network


# --- DiffAugment ---


def test_diff_augment_is_differentiable_shape_keeping_and_seeded() -> None:
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    policy = parse_policy("color,translation,cutout")
    out = diff_augment(x, policy, torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = diff_augment(x, policy, torch.Generator().manual_seed(1))
    other = diff_augment(x, policy, torch.Generator().manual_seed(2))
    assert torch.equal(out, again) and not torch.equal(out, other)
    holes = diff_augment(torch.ones(8, 1, 16, 16), ["cutout"], torch.Generator().manual_seed(0))
    assert ((holes == 0).flatten(1).sum(1) <= 64).all() and (holes == 0).any()  # ≤ an 8×8 square


def test_translation_moves_content_and_fills_with_zeros() -> None:
    x = torch.zeros(16, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0
    out = diff_augment(x, ["translation"], torch.Generator().manual_seed(0))
    assert torch.equal(out.sum((1, 2, 3)), x.sum((1, 2, 3)))  # a 1-px shift keeps the centred square
    assert not torch.equal(out, x)


# --- config errors: one line, before training ---


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.augment=[color,blur]", "model.augment has blur; allowed: color, translation, cutout"),
        ("model.ema.decay=1.0", r"model.ema.decay=1.0 must be in \[0, 1\)"),
        ("model.ema.decay=-0.5", r"model.ema.decay=-0.5 must be in \[0, 1\)"),
        ("model.r1_gamma=-1", "model.r1_gamma and model.gp_weight must be ≥ 0"),
        ("model.loss=wasserstein", "model.discriminator.norm=layer|instance|none"),
        ("model.discriminator.norm=group", "model.discriminator.norm=group must be one of batch"),
        ("model.generator.init=xavier", "model.generator.init=xavier must be one of dcgan, pytorch"),
        ("model.discriminator.init=he", "model.discriminator.init=he must be one of dcgan, pytorch"),
    ],
)
def test_bad_quality_settings_are_one_line_config_errors(tmp_path: Path, override: str, message: str) -> None:
    cfg = make_cfg(tmp_path, [*TINY, override])
    with pytest.raises(Exception) as err:
        instantiate(cfg.model)
    cause = err.value
    while not isinstance(cause, ConfigError) and cause.__cause__ is not None:
        cause = cause.__cause__
    assert isinstance(cause, ConfigError)
    assert re.search(message, str(cause)) and "\n" not in str(cause)


def test_bad_augment_from_the_command_line(tmp_path: Path) -> None:
    result = run_module("ganlab.train", "model.augment=[zoom]", "metrics=none", "logger=none", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: model.augment has zoom; allowed: color, translation, cutout "
        "(e.g. model.augment=[color,translation,cutout]; a plugin adds its own with @register.augment)"
    ]


# --- training with every switch: resume exact, EMA in the checkpoint and in the tools ---

SWITCHES = [
    "model.ema.decay=0.9", "model.augment=[color,translation,cutout]", "model.r1_gamma=1.0",
    "model.r1_every=2", "model.discriminator.spectral_norm=true",
]  # fmt: skip


def test_resume_is_exact_with_ema_augmentation_and_r1(tmp_path: Path, mnist_root: Path) -> None:
    common = [*TINY, f"paths.data_dir={mnist_root}", "logger=csv", "trainer.max_epochs=3", *SWITCHES]
    train(make_cfg(tmp_path / "full", [*common, "max_iters=7"]))
    train(make_cfg(tmp_path / "first", [*common, "max_iters=3"]))
    first = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(make_cfg(tmp_path / "resumed", [*common, "max_iters=7", f"ckpt_path={first}"]))
    full, resumed = read_csv_losses(tmp_path / "full"), read_csv_losses(tmp_path / "resumed")
    for step, losses in resumed.items():
        assert losses == pytest.approx(full[step], rel=1e-5, abs=1e-6), step
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    ema_keys = [k for k in a if k.startswith("generator_ema.")]
    assert ema_keys and all(torch.allclose(a[k], b[k], atol=1e-6) for k in ema_keys)
    live = next(k for k in ema_keys if k.endswith("weight")).replace("generator_ema.", "generator.")
    assert not torch.equal(a[live], a[live.replace("generator.", "generator_ema.")])  # an average, not a copy


@pytest.mark.slow
def test_tools_sample_the_ema_generator_unless_told_not_to(tmp_path: Path, mnist_root: Path) -> None:
    train(
        make_cfg(
            tmp_path / "run", [*TINY, f"paths.data_dir={mnist_root}", "logger=none", "model.ema.decay=0.9"]
        )
    )
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    loaded = torch.load(ckpt, weights_only=True)
    assert has_ema(loaded, "generator.")
    module = build_module(loaded).eval()
    z = torch.randn(3, 100)
    assert torch.equal(module.fid_generate("", z), module.generator_ema(z))
    for ema in ("true", "false"):
        out = run_module(
            "ganlab.generate", f"ckpt={ckpt}", "n=2", f"ema={ema}", f"output={tmp_path / ema}", cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
    assert (tmp_path / "true" / "00000.png").read_bytes() != (tmp_path / "false" / "00000.png").read_bytes()


def test_wgan_gp_preset_trains(tmp_path: Path, mnist_root: Path) -> None:
    cfg = make_cfg(
        tmp_path, [*TINY, f"paths.data_dir={mnist_root}", "logger=csv", "experiment=wgan_gp_mnist"]
    )
    train(cfg)
    assert cfg.model.n_critic == 5 and list(cfg.model.optimizer.betas) == [0.0, 0.9]
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["iteration"] == 4


def test_init_schemes() -> None:
    from ganlab.nets.dcgan import Discriminator, Generator

    torch.manual_seed(0)
    dcgan, pytorch = Generator(image_size=32, ngf=16), Generator(image_size=32, ngf=16, init="pytorch")
    last = [m.weight for m in (dcgan.net[-2], pytorch.net[-2])]  # the output layer, (16, 3, 4, 4)
    assert last[0].std().item() == pytest.approx(0.02, rel=0.1)
    assert last[1].std().item() > 0.06  # torch's default: Kaiming-uniform, fan computed as 3·4·4 (≈ 0.08)
    d = Discriminator(channels=1, image_size=32, ndf=16, init="pytorch")
    assert d.net[0].weight.std().item() > 0.1  # fan-in 1·4·4: the default is far from N(0, 0.02)


def test_padding_keeps_the_digit_and_adds_a_black_border() -> None:
    images = torch.randint(1, 256, (3, 1, 28, 28), dtype=torch.uint8)
    padded = fit_images(images, 32, 1, "pad")
    assert padded.shape == (3, 1, 32, 32) and torch.equal(padded[..., 2:30, 2:30], images)
    assert padded[..., :2, :].max() == 0 and padded[..., :, 30:].max() == 0
    with pytest.raises(ConfigError, match="even border"):
        fit_images(images, 31, 1, "pad")


# --- the benchmark's judge and command ---


def _shapes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten classes of 28×28 images: a bright 5×5 block in one of ten places 5 px or more apart
    (the judge trains with shifts of up to 2 px), on noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = torch.randint(0, 60, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    for i, k in enumerate(labels.tolist()):
        top, left = 3 + 13 * (k // 5), 2 + 5 * (k % 5)
        images[i, 0, top : top + 5, left : left + 4] = 255
    return images, labels


def test_the_judge_is_near_zero_on_the_test_set_and_large_on_noise() -> None:
    train_x, train_y = _shapes(1500, 0)
    test_x, test_y = _shapes(400, 1)
    net = train_classifier(train_x, train_y, epochs=3)
    judge = Judge(net, test_x)
    same = judge.score(test_x)
    assert same["fd"] == pytest.approx(0.0, abs=1e-5) and same["classes"] == 10
    assert same["entropy"] == pytest.approx(torch.log(torch.tensor(10.0)).item(), abs=1e-3)
    noise = judge.score(torch.randint(0, 256, (400, 1, 28, 28), dtype=torch.uint8))
    assert noise["fd"] > 100 * max(same["fd"], 1e-3) and noise["fd"] > 1.0
    one_class = judge.score(test_x[test_y == 3])
    assert one_class["classes"] == 1 and one_class["entropy"] < 0.1


def test_frechet_distance_of_shifted_gaussians() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    b = torch.randn(20000, 3, generator=g, dtype=torch.float64) + torch.tensor(
        [3.0, 0, 0], dtype=torch.float64
    )
    assert frechet_distance(a, b) == pytest.approx(9.0, rel=0.02)  # ‖Δμ‖² with equal covariances
    assert isinstance(DigitNet().features(torch.zeros(2, 1, 28, 28)), torch.Tensor)


@pytest.mark.slow
def test_quality_command_end_to_end_on_fabricated_mnist(tmp_path: Path) -> None:
    fabricate.mnist(tmp_path / "data", n_train=256, n_test=64)
    result = run_module(
        "ganlab.quality", "--iters", "2,4", "--seeds", "0", "--n", "64", "--classifier-epochs", "1",
        "--min-accuracy", "0", "--data-dir", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "cache"),
        "--output", str(tmp_path / "q"), "--cases", "default,init_pytorch,conditional", "--sample-bn-train",
        "model.generator.ngf=8", "model.discriminator.ndf=8", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("QUALITY ")]
    assert any(line.startswith("QUALITY judge: digit classifier sha256=") for line in lines)
    cases = [line for line in lines if " iters=" in line and "summary" not in line]
    assert len(cases) == 12 and all("plain_fd=" in line and "ratio=" in line for line in cases)
    assert all(("agreement=" in line) == line.startswith("QUALITY conditional") for line in cases)
    (out,) = (tmp_path / "q").iterdir()
    results = json.loads((out / "results.json").read_text())
    assert {r["case"] for r in results} == {
        "default", "default@bn_train", "init_pytorch", "init_pytorch@bn_train", "plain",
        "conditional", "conditional@bn_train",
    }  # fmt: skip
    assert all(0.0 <= r["agreement"] <= 1.0 for r in results if r["case"] == "conditional")
    fd = {(r["case"], r["iters"]): r["fd"] for r in results if r["seed"] == 0}
    assert fd["default", 4] != fd["default@bn_train", 4]  # the BN mode really changed the samples
    assert fd["default", 4] != fd["init_pytorch", 4]
    assert (out / "samples.png").is_file()


def test_quality_without_mnist_is_one_line(tmp_path: Path) -> None:
    result = run_module("ganlab.quality", "--data-dir", str(tmp_path / "none"), cwd=tmp_path)
    assert result.returncode == 1 and "needs real MNIST in" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cyclegan_ema_and_diffaugment_translate_and_resume(tmp_path: Path) -> None:
    from test_files_are_data import TINY_CYCLE

    photos = fabricate.unpaired_folder(tmp_path / "photos")
    (photos / "trainA" / "zz_corrupt.jpg").unlink()
    common = [
        *TINY_CYCLE, f"data.root={photos}", "model.ema.decay=0.9", "trainer.limit_train_batches=3",
        "model.augment=[color,translation,cutout]",
    ]  # fmt: skip
    train(make_cfg(tmp_path / "full", [*common, "max_iters=3"]))
    train(make_cfg(tmp_path / "first", [*common, "max_iters=1"]))
    first = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(make_cfg(tmp_path / "resumed", [*common, "max_iters=3", f"ckpt_path={first}"]))
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    ema_keys = [k for k in a if k.startswith(("g_a_ema.", "g_b_ema."))]
    assert ema_keys and all(torch.allclose(a[k], b[k], atol=1e-5) for k in ema_keys)
    ckpt = tmp_path / "full" / "checkpoints" / "last.ckpt"
    for ema in ("true", "false"):
        out = run_module(
            "ganlab.translate", f"ckpt={ckpt}", f"input={photos / 'testA'}", f"output={tmp_path / ema}",
            f"ema={ema}", cwd=tmp_path,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    name = sorted(p.name for p in (tmp_path / "true").iterdir())[0]
    assert (tmp_path / "true" / name).read_bytes() != (tmp_path / "false" / name).read_bytes()


def test_measured_settings_apply_to_dcgan_on_mnist_only(tmp_path: Path) -> None:
    """conf/model_data/dcgan_mnist.yaml is chosen for model=dcgan data=mnist alone; an experiment and
    the command line still override it."""
    lr = {
        "mnist": make_cfg(tmp_path, []).model.lr,
        "cifar10": make_cfg(tmp_path, ["data=cifar10"]).model.lr,
        "command line": make_cfg(tmp_path, ["model.lr=3e-4"]).model.lr,
        "experiment": make_cfg(tmp_path, ["experiment=wgan_gp_mnist"]).model.lr,
        "conditional": make_cfg(tmp_path, ["model.conditional=true"]).model.lr,
        "conditional, command line": make_cfg(tmp_path, ["model.conditional=true", "model.lr=3e-4"]).model.lr,
        "conditional cifar10": make_cfg(tmp_path, ["model.conditional=true", "data=cifar10"]).model.lr,
    }
    assert lr == {
        "mnist": 1e-3, "cifar10": 2e-4, "command line": 3e-4, "experiment": 1e-4,
        "conditional": 2e-3, "conditional, command line": 3e-4, "conditional cifar10": 2e-4,
    }  # fmt: skip
    assert make_cfg(tmp_path, []).model.discriminator.spectral_norm is True
    assert make_cfg(tmp_path, ["data=cifar10"]).model.discriminator.spectral_norm is False
    assert make_cfg(tmp_path, ["experiment=wgan_gp_mnist"]).model.discriminator.spectral_norm is False
    assert make_cfg(tmp_path, ["model=cyclegan", "data=horse2zebra"]).model.lr == 2e-4
