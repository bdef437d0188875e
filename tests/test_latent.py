"""generate and explore on a checkpoint from a tiny DCGAN run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

from conftest import run_module
from ganlab.errors import ConfigError
from ganlab.generate import generate
from ganlab.latent import arithmetic, interpolation_path, latents, load_generator, render, slerp
from ganlab.train import CONFIG_DIR


@pytest.fixture
def ckpt(dcgan_ckpt: Path) -> Path:
    return dcgan_ckpt


def generate_cfg(**options: object) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("generate", [f"{k}={v}" for k, v in options.items()])


def test_generate_folder_is_deterministic_and_sized(ckpt: Path, tmp_path: Path) -> None:
    """The command's files equal those of the same call in another process (in-process here), and
    another seed gives other samples."""
    result = run_module(
        "ganlab.generate", f"ckpt={ckpt}", "n=5", "seed=3", f"output={tmp_path / 'a'}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    generate(generate_cfg(ckpt=ckpt, n=5, seed=3, output=tmp_path / "b"))
    files = sorted((tmp_path / "a").iterdir())
    assert [p.name for p in files] == [f"{i:05d}.png" for i in range(5)]
    assert all(Image.open(p).size == (32, 32) for p in files)  # MNIST padded to 32 by default
    assert all(p.read_bytes() == (tmp_path / "b" / p.name).read_bytes() for p in files)
    generate(generate_cfg(ckpt=ckpt, n=5, seed=4, output=tmp_path / "c"))
    assert (tmp_path / "c" / "00000.png").read_bytes() != (tmp_path / "a" / "00000.png").read_bytes()


def test_generate_grid(ckpt: Path, tmp_path: Path) -> None:
    result = run_module(
        "ganlab.generate", f"ckpt={ckpt}", "n=10", "nrow=5", f"output={tmp_path / 'g.png'}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "g.png").size == (2 + 5 * 34, 2 + 2 * 34)  # 32 px + 2 px padding
    assert list(tmp_path.iterdir()) == [tmp_path / "g.png"]  # nothing else written


def test_batching_does_not_change_samples(ckpt: Path) -> None:
    g = load_generator(str(ckpt), torch.device("cpu"))
    z = latents(0, 9, g.latent_dim)
    assert torch.allclose(render(g, z, batch_size=2), render(g, z, batch_size=9), atol=1e-6)


def test_interpolation_endpoints_are_the_seeds_own_samples(ckpt: Path) -> None:
    g = load_generator(str(ckpt), torch.device("cpu"))
    for method in ("slerp", "lerp"):
        path = interpolation_path([5, 9, 2], steps=6, method=method, dim=g.latent_dim)
        assert path.shape == (12, g.latent_dim)
        assert torch.allclose(path[0], latents(5, 1, g.latent_dim)[0], atol=1e-5)
        assert torch.allclose(path[5], latents(9, 1, g.latent_dim)[0], atol=1e-5)
        assert torch.allclose(path[11], latents(2, 1, g.latent_dim)[0], atol=1e-5)
        images = render(g, path)
        seed_sample = render(g, latents(9, 1, g.latent_dim))[0]
        assert torch.allclose(images[5], seed_sample, atol=1e-5)


def test_slerp_keeps_the_norm_between_equal_norm_endpoints() -> None:
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    mid = slerp(a, b, torch.tensor([0.5]))[0]
    assert mid.norm().item() == pytest.approx(3.0) and torch.allclose(
        mid, torch.tensor([2.1213, 2.1213]), atol=1e-4
    )


def test_arithmetic_is_mean_a_minus_mean_b_plus_mean_c() -> None:
    z = torch.randn(10, 4)
    by_hand = (z[1] + z[4]) / 2 - z[7] + (z[0] + z[2] + z[9]) / 3
    assert torch.allclose(arithmetic(z, [1, 4], [7], [0, 2, 9]), by_hand, atol=1e-6)
    with pytest.raises(ConfigError, match=r"outside the reference grid 0\.\.9"):
        arithmetic(z, [1, 10], [7], [0])
    with pytest.raises(ConfigError, match="empty"):
        arithmetic(z, [1], [], [0])


@pytest.mark.slow  # CLI runs (~15-25 s); in CI's slow step
def test_explore_commands(ckpt: Path, tmp_path: Path) -> None:
    walk = run_module(
        "ganlab.explore", "mode=interpolate", f"ckpt={ckpt}", "seeds=[0,1,2]", "steps=4",
        f"output={tmp_path / 'w.png'}", cwd=tmp_path,
    )  # fmt: skip
    assert walk.returncode == 0, walk.stderr
    assert Image.open(tmp_path / "w.png").size == (2 + 4 * 34, 2 + 2 * 34)
    arith = run_module(
        "ganlab.explore", "mode=arithmetic", f"ckpt={ckpt}", "seed=0", "n=16", "a=[1,2]", "b=[3]",
        "c=[4,5,6]", f"output={tmp_path / 'sum.png'}", cwd=tmp_path,
    )  # fmt: skip
    assert arith.returncode == 0, arith.stderr
    assert (tmp_path / "sum.png").is_file() and (tmp_path / "sum_reference.png").is_file()
    bad = run_module(
        "ganlab.explore", "mode=arithmetic", f"ckpt={ckpt}", "n=16", "a=[1,99]", "b=[3]", "c=[4]",
        f"output={tmp_path / 'bad.png'}", cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 1
    (error,) = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert "[99]" in error and "0..15" in error
