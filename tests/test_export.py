"""ganlab.export: official weight files (round trip, loadable by the official layout) and ONNX."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import fabricate
import official_arch as oa
from conftest import TINY_CYCLE, make_cfg, run_module
from ganlab.checkpoint import load_checkpoint
from ganlab.errors import CheckpointError, ConfigError
from ganlab.export import export_official, export_onnx
from ganlab.official import build_official
from ganlab.train import CONFIG_DIR, train


def export_cfg(**overrides: object) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="export", overrides=[f"{k}={v}" for k, v in overrides.items()])


@pytest.fixture(scope="module")
def cyclegan_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = fabricate.unpaired_folder(tmp_path_factory.mktemp("unpaired"))
    (root / "trainA" / "zz_corrupt.jpg").unlink()
    run = tmp_path_factory.mktemp("cyclegan")
    train(make_cfg(run, [*TINY_CYCLE, "model.ema.decay=0.5", f"data.root={root}"]))
    return run / "checkpoints" / "last.ckpt"


def test_official_export_round_trips_bit_exactly(tmp_path: Path, cyclegan_ckpt: Path) -> None:
    files = export_official(export_cfg(ckpt=cyclegan_ckpt, output=tmp_path / "official"))
    assert sorted(p.name for p in files) == [f"latest_net_{n}.pth" for n in ("D_A", "D_B", "G_A", "G_B")]
    state = load_checkpoint(cyclegan_ckpt)["state_dict"]
    for name, prefix in {"G_A": "g_a_ema.", "G_B": "g_b_ema.", "D_A": "d_a.", "D_B": "d_b."}.items():
        saved = torch.load(tmp_path / "official" / f"latest_net_{name}.pth", weights_only=True)
        # the official layout loads it strictly (what the official test.py's load_networks does)
        official = (
            oa.ResnetGenerator(3, 3, ngf=4, n_blocks=1)
            if name[0] == "G"
            else oa.NLayerDiscriminator(3, ndf=4, n_layers=2)
        )
        official.load_state_dict(saved, strict=True)
        # re-import: the same tensors, bit for bit, as the checkpoint's (EMA generators by default)
        net, _ = build_official(saved, name)
        ours = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
        assert net.state_dict().keys() == ours.keys()
        assert all(torch.equal(net.state_dict()[k], ours[k]) for k in ours)
    raw = export_official(export_cfg(ckpt=cyclegan_ckpt, output=tmp_path / "raw", ema="false"))
    g_a = torch.load(raw[0], weights_only=True)
    assert torch.equal(g_a["model.1.weight"], state["g_a.net.1.weight"])
    assert not torch.equal(g_a["model.1.weight"], state["g_a_ema.net.1.weight"])  # ema=false differs
    with pytest.raises(ConfigError, match="already exist"):
        export_official(export_cfg(ckpt=cyclegan_ckpt, output=tmp_path / "raw"))


def test_official_export_refuses_dcgan(tmp_path: Path, dcgan_ckpt: Path) -> None:
    with pytest.raises(ConfigError, match="format=official is for CycleGAN and pix2pix"):
        export_official(export_cfg(ckpt=dcgan_ckpt, output=tmp_path / "o"))


def test_onnx_export_of_a_dcgan_generator_and_of_a_nan_one(tmp_path: Path, dcgan_ckpt: Path) -> None:
    """G: z (B, latent_dim) → image, dynamic batch, as PyTorch computes it; a generator whose
    outputs are NaN is refused and nothing is written (``max(0.0, nan)`` once let it pass)."""
    pytest.importorskip("onnxruntime", reason="format=onnx needs pip install 'ganlab[export]'")
    import onnxruntime

    from ganlab.latent import load_generator

    path, diff = export_onnx(export_cfg(ckpt=dcgan_ckpt, format="onnx", output=tmp_path))
    assert path == tmp_path / "generator.onnx" and diff <= 1e-4
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (z_input,) = session.get_inputs()
    assert z_input.name == "z" and isinstance(z_input.shape[0], str)
    z = torch.randn(5, 100)
    with torch.no_grad():
        expected = load_generator(str(dcgan_ckpt), torch.device("cpu"))(z).numpy()
    assert abs(session.run(None, {"z": z.numpy()})[0] - expected).max() < 1e-4
    ckpt = torch.load(dcgan_ckpt, weights_only=True)
    first = next(k for k in ckpt["state_dict"] if k.startswith("generator.") and k.endswith("weight"))
    ckpt["state_dict"][first] = torch.full_like(ckpt["state_dict"][first], float("nan"))
    torch.save(ckpt, tmp_path / "nan.ckpt")
    with pytest.raises(CheckpointError, match="non-finite values; not written"):
        export_onnx(export_cfg(ckpt=tmp_path / "nan.ckpt", format="onnx", output=tmp_path / "nan"))
    assert not (tmp_path / "nan" / "generator.onnx").exists()


def test_onnx_export_matches_pytorch(tmp_path: Path, cyclegan_ckpt: Path) -> None:
    pytest.importorskip("onnxruntime", reason="format=onnx needs pip install 'ganlab[export]'")
    path, diff = export_onnx(export_cfg(ckpt=cyclegan_ckpt, format="onnx", output=tmp_path, direction="BtoA"))
    assert path == tmp_path / "generator_BtoA.onnx" and path.stat().st_size > 1000
    assert diff <= 1e-4
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert image.name == "image" and isinstance(image.shape[2], str) and isinstance(image.shape[3], str)


@pytest.mark.slow
def test_cli_export_official(tmp_path: Path, cyclegan_ckpt: Path) -> None:
    result = run_module("ganlab.export", f"ckpt={cyclegan_ckpt}", "output=official", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list((tmp_path / "official").glob("latest_net_*.pth"))) == 4
    result = run_module("ganlab.export", f"ckpt={cyclegan_ckpt}", "output=x", "format=tflite", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("error: format=tflite must be")


def test_onnx_export_of_an_official_unet_with_batch_norm(tmp_path: Path) -> None:
    """Batch norm on the image's own statistics (the official test) becomes an affine instance norm,
    so the graph is the same computation for any batch size."""
    pytest.importorskip("onnxruntime", reason="format=onnx needs pip install 'ganlab[export]'")
    net = oa.randomise(oa.UnetGenerator(3, 3, 7, ngf=4, norm="batch"), seed=5)
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    out = tmp_path / "g.onnx"
    path, diff = export_onnx(export_cfg(ckpt=tmp_path / "latest_net_G.pth", format="onnx", output=out))
    assert path == out and diff <= 1e-4
    import onnxruntime

    x = torch.rand(2, 3, 128, 128) * 2 - 1
    got = onnxruntime.InferenceSession(str(out)).run(None, {"image": x.numpy()})[0]
    net.train()  # the official test: no --eval, batch statistics, one image at a time
    with torch.no_grad():
        expected = torch.cat([net(x[i : i + 1]) for i in range(2)])
    assert abs(got - expected.numpy()).max() < 1e-4
