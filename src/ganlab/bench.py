"""``make bench``: ganlab's training path against a plain PyTorch loop, same networks and data.

python -m ganlab.bench [--cases dcgan28,dcgan64,cyclegan64,loader] [--device cpu|cuda] [--repeats 5]
                       [--folder DIR] [--workers N]

Both sides train the networks of the same composed config on the same in-memory random uint8
images, with the same losses, optimizers and batch size. ganlab's side is the real path: the
LightningModule and DataModule through the Lightning Trainer (no logger, no progress bar). Warm-up
iterations are excluded; each side's rate is the median over ``repeats`` timed windows.

``loader``: images/s of ``data=image_folder`` streaming a folder of JPEGs (``--folder``, else 512
fabricated 178×218 JPEGs, CelebA's size) at 64 px with ``--workers`` processes, against
torchvision's ``ImageFolder`` + PIL transforms (pytorch/examples' loader) with the same workers and
batch size; a GPU run whose training rate is near this number is bound by its loader.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from ganlab.cli import quiet_third_party
from ganlab.losses import cycle_l1, get_loss, identity_l1
from ganlab.modules.pool import ImagePool
from ganlab.train import CONFIG_DIR

CASES: dict[str, dict[str, Any]] = {
    "dcgan28": {"model": "dcgan", "size": 28, "channels": 1, "batch": 64, "device": "any"},
    "dcgan64": {"model": "dcgan", "size": 64, "channels": 3, "batch": 128, "device": "any"},
    "cyclegan64": {"model": "cyclegan", "size": 64, "channels": 3, "batch": 1, "device": "cpu"},
    "cyclegan256": {"model": "cyclegan", "size": 256, "channels": 3, "batch": 1, "device": "cuda"},
    "loader": {"model": None, "size": 64, "channels": 3, "batch": 64, "device": "any"},  # see run_loader
}

# the GPU speed switches, one at a time and combined (issue: "measure and win"); the plain loop
# stays the eager fp32 reference in every row
FAST = ["model.channels_last=true", "trainer.precision=bf16-mixed", "model.optimizer.fused=true",
        "data.on_device=true"]  # fmt: skip
SWITCHES: dict[str, list[str]] = {
    "eager": [],
    "channels_last": ["model.channels_last=true"],
    "bf16": ["trainer.precision=bf16-mixed"],
    "fused_adam": ["model.optimizer.fused=true"],
    "on_device": ["data.on_device=true"],
    "fast_eager": FAST,
    "compile": ["model.compile=true"],
    "compile_ro": ["model.compile=true", "model.compile_mode=reduce-overhead"],
    "fast_compile": [*FAST, "model.compile=true"],
    "fast_compile_ro": [*FAST, "model.compile=true", "model.compile_mode=reduce-overhead"],
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class WindowTimer(L.Callback):
    """Timestamps every ``window`` iterations after ``warmup`` (a device sync at those points only)."""

    def __init__(self, warmup: int, window: int, device: torch.device) -> None:
        self.warmup, self.window, self.device, self.stamps = warmup, window, device, []

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        done = module.iteration - self.warmup
        if done >= 0 and done % self.window == 0:
            sync(self.device)
            self.stamps.append(time.perf_counter())


def case_config(case: dict[str, Any], device: torch.device, extra: list[str]) -> DictConfig:
    data = "synthetic_unpaired" if case["model"] == "cyclegan" else "synthetic"
    overrides = [
        f"model={case['model']}", f"data={data}", "logger=none", "metrics=none", "~callbacks.progress_bar",
        f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}", "trainer.log_every_n_steps=50",
        *extra,
    ]  # fmt: skip
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):
        cfg.data.image_size, cfg.data.channels, cfg.data.batch_size = (
            case["size"],
            case["channels"],
            case["batch"],
        )
        cfg.paths.output_dir = str(Path("outputs") / "bench" / "run")
    return cfg


def time_ganlab(cfg: DictConfig, warmup: int, window: int, repeats: int, device: torch.device) -> list[float]:
    total = warmup + window * repeats
    L.seed_everything(0, verbose=False)
    datamodule, model = instantiate(cfg.data), instantiate(cfg.model)
    timer = WindowTimer(warmup, window, device)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] + [timer]
    trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=False, max_epochs=10_000, limit_train_batches=total,
        max_steps=-1, enable_model_summary=False, enable_progress_bar=False, limit_val_batches=0,
    )  # fmt: skip
    _run_until(trainer, model, datamodule, total)
    return [
        window * cfg.data.batch_size / (b - a) for a, b in zip(timer.stamps, timer.stamps[1:], strict=False)
    ]


def _run_until(trainer: L.Trainer, model: Any, datamodule: Any, total: int) -> None:
    class Stop(L.Callback):
        def on_train_batch_end(self, trainer: L.Trainer, module: Any, *args: Any) -> None:
            if module.iteration >= total:
                trainer.should_stop = True

    trainer.callbacks.append(Stop())
    trainer.fit(model, datamodule=datamodule)


def time_plain(cfg: DictConfig, case: dict[str, Any], warmup: int, window: int, repeats: int,
               device: torch.device) -> list[float]:  # fmt: skip
    """The same training written as a plain loop (pytorch/examples style)."""
    torch.manual_seed(0)
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    images = datamodule.train_set.images.to(device)
    other = getattr(datamodule.train_set, "b", images).to(device)
    step = _dcgan_step(cfg, device) if case["model"] == "dcgan" else _cyclegan_step(cfg, device)
    batch, stamps = case["batch"], []
    n = len(images)
    for it in range(warmup + window * repeats + 1):
        if it >= warmup and (it - warmup) % window == 0:
            sync(device)
            stamps.append(time.perf_counter())
        if it == warmup + window * repeats:
            break
        idx = torch.randint(0, n, (batch,), device=device)
        step(images[idx].float().div_(127.5).sub_(1.0), other[idx].float().div_(127.5).sub_(1.0))
    return [window * batch / (b - a) for a, b in itertools.pairwise(stamps)]


def _dcgan_step(cfg: DictConfig, device: torch.device):
    m = cfg.model
    g, d = instantiate(m.generator).to(device), instantiate(m.discriminator).to(device)
    opt = instantiate(m.optimizer)
    opt_g, opt_d = opt(g.parameters(), lr=m.lr), opt(d.parameters(), lr=m.lr_d or m.lr)
    loss = get_loss(m.loss)

    def step(real: torch.Tensor, _: torch.Tensor) -> None:
        z = torch.randn(real.shape[0], g.latent_dim, device=device)
        fake = g(z)
        opt_d.zero_grad(set_to_none=True)
        loss.d(d(real), d(fake.detach())).backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        loss.g(d(fake)).backward()
        opt_g.step()

    return step


def _cyclegan_step(cfg: DictConfig, device: torch.device):
    m = cfg.model
    make_g, make_d = instantiate(m.generator), instantiate(m.discriminator)
    g_a, g_b, d_a, d_b = (net.to(device) for net in (make_g(), make_g(), make_d(), make_d()))
    opt = instantiate(m.optimizer)
    opt_g = opt([*g_a.parameters(), *g_b.parameters()], lr=m.lr)
    opt_d = opt([*d_a.parameters(), *d_b.parameters()], lr=m.lr)
    loss, pool_a, pool_b = get_loss(m.loss), ImagePool(m.pool_size), ImagePool(m.pool_size)
    discs = [*d_a.parameters(), *d_b.parameters()]

    def step(a: torch.Tensor, b: torch.Tensor) -> None:
        fake_b, fake_a = g_a(a), g_b(b)
        rec_a, rec_b = g_b(fake_b), g_a(fake_a)
        for p in discs:
            p.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        total = (
            loss.g(d_a(fake_b)) + loss.g(d_b(fake_a))
            + m.lambda_a * cycle_l1(rec_a, a) + m.lambda_b * cycle_l1(rec_b, b)
            + m.lambda_b * m.lambda_identity * identity_l1(g_a(b), b)
            + m.lambda_a * m.lambda_identity * identity_l1(g_b(a), a)
        )  # fmt: skip
        total.backward()
        opt_g.step()
        for p in discs:
            p.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        (loss.d(d_a(b), d_a(pool_a.query(fake_b))) + loss.d(d_b(a), d_b(pool_b.query(fake_a)))).backward()
        opt_d.step()

    return step


def _jpeg_folder(root: Path, n: int = 512) -> Path:
    """n random 178×218 JPEGs (CelebA's size) under root/images/."""
    import numpy as np
    from PIL import Image

    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=90)
    return root


def _rate(loader: Any, passes: int) -> float:
    """Images/s over ``passes`` full passes after the first batch (worker start-up excluded)."""
    it = iter(loader)
    next(it)
    start, count = time.perf_counter(), 0
    for _ in range(passes):
        for batch in it:
            count += len(batch[0] if isinstance(batch, tuple | list) else batch)
        it = iter(loader)
    return count / (time.perf_counter() - start)


def run_loader(folder: Path | None, workers: int, batch: int = 64, size: int = 64, passes: int = 2) -> dict:
    """ganlab's streamed image-folder loader against torchvision's ImageFolder, same folder."""
    import tempfile

    from torchvision import transforms

    from ganlab.data.folder import ImageFolderDataModule

    with tempfile.TemporaryDirectory() as tmp:
        root = folder or _jpeg_folder(Path(tmp))
        dm = ImageFolderDataModule(
            root=str(root), image_size=size, batch_size=batch, num_workers=workers, holdout=0.0,
            memory_limit_gb=0.0, pin_memory=False,
        )  # fmt: skip
        dm.setup()
        ours = _rate(dm.train_dataloader(), passes)
        transform = transforms.Compose(
            [transforms.Resize(size), transforms.CenterCrop(size), transforms.PILToTensor()]
        )
        reference = _PilFiles(dm.train_set.paths, transform)  # what ImageFolder does per file
        plain = torch.utils.data.DataLoader(
            reference, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
            persistent_workers=workers > 0,
        )  # fmt: skip
        theirs = _rate(plain, passes)
        images = len(dm.train_set)
    switches = [f"workers={workers}", f"images={images}"]
    return {"case": "loader", "ganlab": ours, "plain": theirs, "ratio": ours / theirs, "unit": "img/s",
            "device": "cpu", "batch": batch, "size": size, "switches": switches}  # fmt: skip


class _PilFiles(torch.utils.data.Dataset):
    """torchvision's ``ImageFolder`` per-file path: PIL ``default_loader`` (RGB), then the transform."""

    def __init__(self, paths: list[Path], transform: Any) -> None:
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        from torchvision.datasets.folder import default_loader

        return self.transform(default_loader(str(self.paths[i])))


def run_case(
    name: str, device: torch.device, warmup: int, window: int, repeats: int, extra: list[str]
) -> dict:
    case = CASES[name]
    cfg = case_config(case, device, extra)
    ganlab = statistics.median(time_ganlab(cfg, warmup, window, repeats, device))
    plain = statistics.median(time_plain(cfg, case, warmup, window, repeats, device))
    unit = "it/s" if case["batch"] == 1 else "img/s"
    name_dev = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"case": name, "ganlab": ganlab, "plain": plain, "ratio": ganlab / plain, "unit": unit,
            "device": name_dev, "batch": case["batch"], "size": case["size"], "switches": extra}  # fmt: skip


def check_args(args: argparse.Namespace) -> torch.device:
    """Each option's value, or one line naming it and what it may be (exit 1)."""
    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError):
        raise SystemExit(
            f"error: --device {args.device}: not a torch device; use cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {args.device}: no CUDA GPU is visible here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise SystemExit(f"error: --device {args.device}: the benchmark runs on cpu or cuda")
    unknown = [n for n in (args.cases or "").split(",") if n and n not in CASES]
    if unknown:
        raise SystemExit(f"error: --cases {','.join(unknown)}: not among {', '.join(CASES)}")
    for name, least in (("workers", 0), ("warmup", 0), ("window", 1), ("repeats", 1)):
        value = getattr(args, name)
        if value is not None and value < least:
            raise SystemExit(f"error: --{name} {value}: must be ≥ {least}")
    if args.folder is not None and not args.folder.is_dir():
        raise SystemExit(f"error: --folder {args.folder}: not a folder; give a folder of images")
    return device


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cases", default=None, help="comma-separated; default: every case for the device")
    parser.add_argument("--warmup", type=int, default=None, help="iterations not timed (GPU 20, CPU 3)")
    parser.add_argument(
        "--window", type=int, default=None, help="iterations per timed window (GPU 50, CPU 5)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed windows; the median is reported")
    parser.add_argument(
        "--switches", default=None,
        help=f"comma-separated switch sets, each run in turn with the overrides: {', '.join(SWITCHES)}",
    )  # fmt: skip
    parser.add_argument("--folder", type=Path, default=None, help="loader case: a folder of images")
    parser.add_argument("--workers", type=int, default=4, help="loader case: DataLoader workers")
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides for both sides, e.g. model.channels_last=true"
    )
    args = parser.parse_args()
    quiet_third_party()
    device = check_args(args)
    gpu = device.type == "cuda"
    args.warmup = args.warmup if args.warmup is not None else (20 if gpu else 3)
    args.window = args.window if args.window is not None else (50 if gpu else 5)
    names = args.cases.split(",") if args.cases else [
        n for n, c in CASES.items() if c["device"] in ("any", device.type)
    ]  # fmt: skip
    sets = args.switches.split(",") if args.switches else [None]
    unknown = [s for s in sets if s is not None and s not in SWITCHES]
    if unknown:
        raise SystemExit(f"error: --switches {','.join(unknown)}: not among {', '.join(SWITCHES)}")
    results = []
    for switch in sets:
        extra = [*(SWITCHES[switch] if switch else []), *args.overrides]
        for name in names:
            if name == "loader" and switch not in (None, "eager"):
                continue  # the loader does not depend on the model's switches
            r = (
                run_loader(args.folder, args.workers)
                if name == "loader"
                else run_case(name, device, args.warmup, args.window, args.repeats, extra)
            )
            r["switch"] = switch or "overrides"
            results.append(r)
            print(f"BENCH {r['case']} switch={r['switch']} ganlab={r['ganlab']:.1f} plain={r['plain']:.1f} "
                  f"ratio={r['ratio']:.3f} unit={r['unit']} device={r['device'].replace(' ', '_')}",
                  flush=True)  # fmt: skip
    out = Path("outputs") / "bench" / f"bench-{device.type}-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
