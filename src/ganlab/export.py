# ruff: noqa: E402  (--help is answered before the heavy imports below)
"""Export a checkpoint's networks: the official repository's weight files, or an ONNX generator.

python -m ganlab.export ckpt=<last.ckpt> format=official output=<dir> [ema=false]
python -m ganlab.export ckpt=<last.ckpt | official .pth> format=onnx output=<file.onnx | dir> [direction=BtoA]

``format=official`` writes ``latest_net_G_A.pth latest_net_G_B.pth latest_net_D_A.pth
latest_net_D_B.pth`` (CycleGAN) or ``latest_net_G.pth latest_net_D.pth`` (pix2pix): plain state
dicts with the official key names, which the official ``test.py`` loads (``--model test
--netG resnet_9blocks --no_dropout`` for a CycleGAN generator). The EMA generator is written when
the run kept one, unless ``ema=false``.

``format=onnx`` writes the generator that ``translate`` runs (needs ``pip install 'ganlab[export]'``):
input ``image`` (B, C, H, W) float in [−1, 1], output ``translated`` likewise; batch, height and
width are dynamic (sides a multiple of 4 for ResNet, 2^num_downs for U-Net). Of a DCGAN-family
checkpoint (ganlab's DCGAN or a plugin's subclass, unconditional) it writes G: input ``z``
(B, latent_dim), output ``image`` in [−1, 1], dynamic batch. The file is checked with onnxruntime
on the CPU against PyTorch before the command succeeds (max abs diff ≤ 1e-4, every value finite).
"""

from __future__ import annotations

from ganlab.cli import answer_help

answer_help("export", __doc__, __name__)  # before torch is imported

import contextlib
import io
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from ganlab import registry
from ganlab.checkpoint import (
    build_network,
    is_ganlab,
    load_checkpoint,
    model_kind,
    read_torch_file,
    weights_prefix,
)
from ganlab.cli import one_line_errors, run_cli
from ganlab.errors import CheckpointError, ConfigError
from ganlab.files import replacing, save_torch
from ganlab.latent import load_generator
from ganlab.official import resolve_model, to_official
from ganlab.outputs import check_new_files
from ganlab.train import CONFIG_DIR
from ganlab.translate import load_translator

# official file name → (ganlab network config key, state-dict prefix); D_A judges domain B, as ours
OFFICIAL_FILES = {
    "CycleGAN": {"G_A": ("generator", "g_a."), "G_B": ("generator", "g_b."),
                 "D_A": ("discriminator", "d_a."), "D_B": ("discriminator", "d_b.")},
    "Pix2Pix": {"G": ("generator", "generator."), "D": ("discriminator", "discriminator.")},
}  # fmt: skip
ONNX_TOLERANCE = 1e-4


def _save(state: dict[str, torch.Tensor], path: Path) -> None:
    save_torch(state, path)  # a failed write never leaves half a file under the official name


def export_official(cfg: DictConfig) -> list[Path]:
    """The checkpoint's networks as the official repository's ``latest_net_*.pth`` files."""
    where = f"ckpt={cfg.ckpt}"
    ckpt = load_checkpoint(cfg.ckpt)
    kind = model_kind(ckpt, where)
    if kind not in OFFICIAL_FILES:
        raise ConfigError(f"{where} is a {kind} checkpoint; format=official is for CycleGAN and pix2pix")
    out = Path(cfg.output)
    files = {name: out / f"latest_net_{name}.pth" for name in OFFICIAL_FILES[kind]}
    check_new_files(files.values(), bool(cfg.overwrite))
    nets = {}
    for name, (key, prefix) in OFFICIAL_FILES[kind].items():
        if key == "generator":
            prefix = weights_prefix(ckpt, prefix, bool(cfg.ema))
        nets[name] = net = build_network(ckpt, key, prefix, where)
        if not registry.is_builtin("network", registry.name_of(type(net))):
            raise ConfigError(
                f"{where}: model.{key} is {registry.name_of(type(net))}, a plugin's network; the official "
                "layout exists only for ganlab's ResnetGenerator, UnetGenerator and PatchDiscriminator "
                "(format=onnx exports any generator)"
            )
    out.mkdir(parents=True, exist_ok=True)
    for name, net in nets.items():
        state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
        _save(to_official(state, type(net)), files[name])
    return list(files.values())


def install_hint(extra: str) -> str:
    """How to install an extra here: this source checkout's own path when ganlab runs from one
    (an editable install), else the index form."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "src" / "ganlab").is_dir():
        return f"pip install '{root}[{extra}]' (this checkout)"
    return f"pip install 'ganlab[{extra}]' (or, in a clone: pip install '<clone>[{extra}]')"


def export_onnx(cfg: DictConfig) -> tuple[Path, float]:
    """The generator as ONNX; returns (file, max abs diff vs PyTorch). A translator (CycleGAN,
    pix2pix, an official file) maps ``image`` → ``translated`` with dynamic batch/height/width; a
    DCGAN-family generator (ganlab's or a plugin's) maps ``z`` (B, latent_dim) → ``image``."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            f"format=onnx needs the export extra (onnx, onnxruntime): {install_hint('export')}"
        ) from None
    out = Path(cfg.output)
    obj = read_torch_file(resolve_model(cfg.ckpt))
    if is_ganlab(obj) and model_kind(obj, f"ckpt={cfg.ckpt}") == "DCGAN":
        path = out if out.suffix == ".onnx" else out / "generator.onnx"
        check_new_files([path], bool(cfg.overwrite))
        return path, _export_sampler(cfg, onnxruntime, path)
    path = out if out.suffix == ".onnx" else out / f"generator_{cfg.direction}.onnx"
    check_new_files([path], bool(cfg.overwrite))
    net = load_translator(cfg, torch.device("cpu")).net
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.eval()  # the exported graph is deterministic (pix2pix's test-time dropout is off)
    step = int(getattr(net, "size_multiple", 4))
    channels = next(m for m in net.modules() if isinstance(m, nn.Conv2d)).in_channels
    example = torch.randn(1, channels, 2 * max(step, 32), 2 * max(step, 32))  # size 1 would be specialised
    side = {2: torch.export.Dim("height", min=1, max=8192 // step) * step,
            3: torch.export.Dim("width", min=1, max=8192 // step) * step}  # fmt: skip
    shapes = {"x": {0: torch.export.Dim("batch", min=1, max=4096), **side}}
    g, unit = torch.Generator().manual_seed(0), max(step, 32)
    inputs = [
        torch.rand(b, channels, h * unit, w * unit, generator=g) * 2 - 1 for b, h, w in ((1, 3, 2), (2, 4, 5))
    ]
    return path, _write_onnx(onnxruntime, net, example, shapes, ("image", "translated"), inputs, path)


class _FromLatent(nn.Module):
    """G(z) with z as the only input (an unconditional DCGAN-family generator)."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)


def _export_sampler(cfg: DictConfig, onnxruntime: object, path: Path) -> float:
    generator = load_generator(cfg.ckpt, torch.device("cpu"), bool(cfg.ema))
    if generator.num_classes:
        raise ConfigError(
            f"ckpt={cfg.ckpt} is a class-conditional DCGAN: format=onnx exports unconditional "
            "generators (z → image) only; use the checkpoint with ganlab.generate"
        )
    net, dim = _FromLatent(generator).eval(), generator.latent_dim
    g = torch.Generator().manual_seed(0)
    shapes = {"z": {0: torch.export.Dim("batch", min=1, max=4096)}}
    inputs = [torch.randn(b, dim, generator=g) for b in (1, 3)]
    return _write_onnx(onnxruntime, net, torch.randn(2, dim), shapes, ("z", "image"), inputs, path)


def _write_onnx(
    onnxruntime: object, net: nn.Module, example: torch.Tensor, shapes: dict, names: tuple[str, str],
    inputs: list[torch.Tensor], path: Path,
) -> float:  # fmt: skip
    """Export ``net``, check it with onnxruntime on ``inputs`` (other sizes than ``example``), and
    give it the name ``path`` only if every output is finite and within ``ONNX_TOLERANCE``."""
    with replacing(path) as tmp:  # only a checked file takes the name
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():  # the exporter's chatter
            program = torch.onnx.export(
                net, (example,), dynamo=True, input_names=[names[0]], output_names=[names[1]],
                dynamic_shapes=shapes, verbose=False,
            )  # fmt: skip
            program.save(str(tmp))
        diff = _onnx_diff(onnxruntime, tmp, net, names[0], inputs)
        if not diff <= ONNX_TOLERANCE:  # NaN fails too
            raise CheckpointError(
                f"the ONNX generator differs from PyTorch by {diff:.2e} (> {ONNX_TOLERANCE}), or "
                "gives non-finite values; not written"
            )
    return diff


def _onnx_diff(
    onnxruntime: object, path: Path, net: nn.Module, name: str, inputs: list[torch.Tensor]
) -> float:
    """Largest |ONNX − PyTorch| over ``inputs``; NaN when either side is not finite."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
    worst = 0.0
    for x in inputs:
        with torch.no_grad():
            expected = net(x).numpy()
        got = session.run(None, {name: x.numpy()})[0]
        if not (np.isfinite(expected).all() and np.isfinite(got).all()):
            return float("nan")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    if cfg.format == "official":
        for path in export_official(cfg):
            print(path)
    elif cfg.format == "onnx":
        path, diff = export_onnx(cfg)
        print(f"{path} (onnxruntime vs PyTorch: max abs diff {diff:.1e})")
    else:
        raise ConfigError(f"format={cfg.format} must be official or onnx")


def main() -> None:
    run_cli(_hydra_main, tool="export", doc=__doc__)


if __name__ == "__main__":
    main()
