"""``make quality``: sample quality of ganlab's DCGAN on real MNIST against a plain PyTorch loop.

python -m ganlab.quality [--cases default,ema] [--seeds 0,1] [--iters 300,600,1200] [--batch 64]
                         [--limit-train N] [--n 2000] [--device cpu|cuda] [--sample-bn-train]
                         [overrides for every ganlab case ...]

Offline, on a CPU by default (``--device cuda`` trains both sides on a GPU). A small digit
classifier is trained once on MNIST's training set and cached (test accuracy ≥ 99 %, sha256
printed); samples from fixed latents are scored against the 10k test
set by the Fréchet distance of its penultimate features (float64), the number of classes that get
≥ 2 % of the predicted labels, and the entropy of those labels (ln 10 = 2.303 is uniform). Each
ganlab case trains through the real path (Hydra config → Trainer → last.ckpt → the generator the
tools use); the plain loop, written below without Lightning or Hydra, is the pytorch/examples
recipe at 32 px (MNIST padded with −1, BCE with logits, Adam 2e-4 β=(0.5, 0.999)), trained on the
same images with the same batch size and budgets in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from PIL import Image, ImageDraw
from torch import Tensor, nn
from torchvision.utils import make_grid

from ganlab.checkpoint import build_network, load_checkpoint, weights_prefix
from ganlab.cli import quiet_third_party
from ganlab.data.mnist import MNISTDataModule
from ganlab.errors import DataError, GanlabError
from ganlab.train import CONFIG_DIR, train

EMA = ["model.ema.decay=0.999"]
CASES: dict[str, list[str]] = {  # name → overrides of ganlab's defaults for DCGAN on MNIST
    "default": [],  # 32 px padded (as the plain loop), Adam 1e-3, SN in D (conf/model_data/dcgan_mnist.yaml)
    "paper": ["model.lr=2e-4", "model.discriminator.spectral_norm=false"],  # the default before measuring
    "no_sn": ["model.discriminator.spectral_norm=false"],  # Adam 1e-3 alone
    # the layout: 28 px native (two stages, the old default) and 32 px by resizing instead of padding
    "native28": ["data.image_size=28", "data.resize=resize"],
    "resize32": ["data.image_size=32", "data.resize=resize"],
    # one difference from the plain recipe at a time (architecture, data and loss already match it)
    "init_pytorch": ["model.generator.init=pytorch", "model.discriminator.init=pytorch"],
    "beta1_0.9": ["model.optimizer.betas=[0.9,0.999]"],
    "beta2_0.99": ["model.optimizer.betas=[0.5,0.99]"],
    "width32": ["model.generator.ngf=32", "model.discriminator.ndf=32"],
    # learning rates and the two time-scale rule
    "lr5e-4": ["model.lr=5e-4"],
    "lr2e-3": ["model.lr=2e-3"],
    "ttur": ["model.lr=1e-4", "model.lr_d=4e-4"],
    "g5e-4_d2e-4": ["model.lr=5e-4", "model.lr_d=2e-4"],
    "g1e-3_d2e-4": ["model.lr=1e-3", "model.lr_d=2e-4"],
    # objectives and stabilisers
    "hinge": ["model.loss=hinge"],
    "lsgan": ["model.loss=least_squares"],
    "smooth0.1": ["model.label_smoothing=0.1"],
    "ema": EMA,
    "ema0.99": ["model.ema.decay=0.99"],
    "diffaug": ["model.augment=[color,translation,cutout]"],
    "diffaug_tc": ["model.augment=[translation,cutout]"],
    "r1": ["model.r1_gamma=0.1"],
    "wgan_gp": ["experiment=wgan_gp_mnist"],
    # class-conditional (cBN in G, projection D): also scored by how often the judge agrees with
    # the requested digit (samples ask for 0..9 in turn)
    "conditional": ["model.conditional=true"],  # Adam 2e-3 (conf/model_data/dcgan_mnist.yaml)
    "conditional_lr1e-3": ["model.conditional=true", "model.lr=1e-3"],  # the unconditional default's
    "conditional_lr5e-4": ["model.conditional=true", "model.lr=5e-4"],
    "conditional_ttur": ["model.conditional=true", "model.lr=5e-4", "model.lr_d=1e-3"],
    "conditional_ema": ["model.conditional=true", "model.lr=1e-3", *EMA],
    "conditional_hinge": ["model.conditional=true", "model.lr=1e-3", "model.loss=hinge"],
}
SAMPLE_SEED = 20_240_601  # the fixed latents every case is scored on
CLASSIFIER_VERSION = "v2"


# --- the judge: a small digit classifier and its metrics ---


class DigitNet(nn.Module):
    """28×28 digits in [−1, 1] → 10 logits; ``features`` is the 128-d penultimate layer."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),  # (B, 128)
        )  # fmt: skip
        self.head = nn.Linear(128, 10)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def to_unit(images: Tensor) -> Tensor:
    """uint8 (N, 1, 28, 28) → float in [−1, 1]."""
    return images.float().div(127.5).sub(1.0)


def _shift(x: Tensor, g: torch.Generator) -> Tensor:
    """The batch moved by up to 2 px (one shift per batch): the classifier learns position invariance."""
    dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
    return torch.roll(F.pad(x, (2, 2, 2, 2)), shifts=(dy, dx), dims=(2, 3))[..., 2:30, 2:30]


def train_classifier(train_x: Tensor, train_y: Tensor, epochs: int = 3, seed: int = 0) -> DigitNet:
    """Adam 1e-3, the last epoch at 1e-4, random shifts; about 99.3 % on MNIST's test set."""
    torch.manual_seed(seed)
    net = DigitNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = 1e-4 if epoch == epochs - 1 and epochs > 1 else 1e-3
        for idx in torch.randperm(len(train_x), generator=g).split(128):
            loss = F.cross_entropy(net(_shift(to_unit(train_x[idx]), g)), train_y[idx].long())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: DigitNet, x: Tensor, y: Tensor) -> float:
    predicted = torch.cat([net(to_unit(chunk)).argmax(1) for chunk in x.split(1000)])
    return float((predicted == y.long()).float().mean())


def load_or_train_classifier(
    cache_dir: Path, data: dict[str, Tensor], epochs: int = 3, min_accuracy: float = 0.99
) -> tuple[DigitNet, str, float]:
    """The cached classifier (weights_only), or one trained now and cached; (net, sha256, accuracy)."""
    path = cache_dir / f"mnist-digit-classifier-{CLASSIFIER_VERSION}-e{epochs}.pt"
    cached = path.is_file()
    net = DigitNet()
    if cached:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net.eval()
    else:
        net = train_classifier(data["train_x"], data["train_y"], epochs)
    acc = accuracy(net, data["test_x"], data["test_y"])
    if acc < min_accuracy:
        fix = f"delete {path}" if cached else "train it longer with --classifier-epochs"
        raise GanlabError(f"the digit classifier has test accuracy {acc:.4f} < {min_accuracy}; {fix}")
    if not cached:  # cached only once it passed
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(net.state_dict(), tmp)
        tmp.replace(path)
    return net, hashlib.sha256(path.read_bytes()).hexdigest(), acc


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2(Σa^½ Σb Σa^½)^½) of two feature sets (N, d), in float64."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


class Judge:
    """Scores uint8 (N, 1, 28, 28) samples against the test set's classifier features."""

    def __init__(self, net: DigitNet, test_x: Tensor) -> None:
        self.net = net
        self.test_features = self.features(test_x)

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        return torch.cat([self.net.features(to_unit(chunk)) for chunk in images.split(1000)])

    @torch.no_grad()
    def score(self, images: Tensor, requested: Tensor | None = None) -> dict[str, float]:
        """FD, class coverage and entropy; with ``requested`` digits also ``agreement``: the share
        of samples the judge reads as the digit they were generated for."""
        feats = self.features(images)
        labels = self.net.head(feats).argmax(1)
        share = torch.bincount(labels, minlength=10).double() / len(labels)
        entropy = float(-(share[share > 0] * share[share > 0].log()).sum())
        scores = {
            "fd": frechet_distance(feats, self.test_features),
            "classes": int((share >= 0.02).sum()),
            "entropy": entropy,
            "rarest": float(share.min()),
        }
        if requested is not None:
            scores["agreement"] = float((labels == requested).double().mean())
        return scores


def to_28(images: Tensor) -> Tensor:
    """Generated images in [−1, 1] at 28 px, or 32 px (padded: the centre is cropped) → uint8 28 px."""
    if images.shape[-1] == 32:
        images = images[..., 2:30, 2:30]
    elif images.shape[-1] != 28:
        images = F.interpolate(images, size=(28, 28), mode="bilinear", antialias=True)
    return images.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


# --- the plain loop (pytorch/examples' DCGAN recipe at 32 px), no Lightning, no Hydra ---


def plain_networks(nz: int = 100, ngf: int = 64, ndf: int = 64) -> tuple[nn.Module, nn.Module]:
    g = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),  # 4
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),  # 16
        nn.ConvTranspose2d(ngf, 1, 4, 2, 1, bias=False), nn.Tanh(),  # (B, 1, 32, 32)
    )  # fmt: skip
    d = nn.Sequential(
        nn.Conv2d(1, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),  # 16
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),  # 8
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Flatten(0),  # logits (B,)
    )  # fmt: skip
    for m in [*g.modules(), *d.modules()]:
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return g, d


def plain_loop(
    images: Tensor, seed: int, budgets: list[int], batch: int, z: Tensor, device: str = "cpu"
) -> dict[int, Tensor]:
    """Train the recipe for max(budgets) iterations; samples of ``z`` (G in train mode, as the
    recipe draws its grids) at every budget. ``images``: uint8 (N, 1, 28, 28)."""
    torch.manual_seed(seed)
    g, d = (net.to(device) for net in plain_networks())
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = F.pad(images, (2, 2, 2, 2)).to(device)  # 28 → 32 with black (−1) borders
    order, samples, it = torch.Generator().manual_seed(seed), {}, 0
    while it < max(budgets):
        for idx in torch.randperm(len(data), generator=order).split(batch):
            if len(idx) < batch or it >= max(budgets):
                break
            real = to_unit(data[idx.to(device)])
            fake = g(torch.randn(batch, 100, 1, 1, device=device))
            ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)
            opt_d.zero_grad()
            F.binary_cross_entropy_with_logits(d(real), ones).backward()
            F.binary_cross_entropy_with_logits(d(fake.detach()), zeros).backward()
            opt_d.step()
            opt_g.zero_grad()
            F.binary_cross_entropy_with_logits(d(fake), ones).backward()
            opt_g.step()
            it += 1
            if it in budgets:
                with torch.no_grad():
                    samples[it] = torch.cat([g(c[:, :, None, None].to(device)).cpu() for c in z.split(batch)])
    return samples


# --- ganlab's side: the real training path ---


def ganlab_samples(
    case: list[str],
    seed: int,
    budgets: list[int],
    z: Tensor,
    run_dir: Path,
    args: argparse.Namespace,
    common: list[str],
    digits: Tensor | None = None,
) -> tuple[dict[int, Tensor], dict[int, Tensor]]:
    """Train the case to each budget in turn (each a resume of the last), sample with the generator
    ``generate`` would load (eval-mode BatchNorm) and, for the ablation, with batch statistics as
    the plain loop samples (train mode, its batch size). Validation is off: it only logs D's
    held-out logit, changes no result (FD identical to the digit with it on), and on a 500-image
    set it took half the time. A conditional G draws sample i as digit ``digits[i]``."""
    samples, train_mode = {}, {}
    trainer = "trainer=gpu" if args.device.startswith("cuda") else "trainer=cpu"
    for budget in sorted(budgets):
        overrides = [
            f"seed={seed}", f"max_iters={budget}", f"data.batch_size={args.batch}", "metrics=none",
            "logger=none", trainer, "~callbacks.progress_bar", "trainer.limit_val_batches=0",
            "callbacks.samples.every_n_iters=1000000", "callbacks.checkpoint.every_n_iters=1000000",
            "trainer.max_epochs=1000", *common, *case,
        ]  # fmt: skip
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides)
        with open_dict(cfg):
            cfg.paths.output_dir = str(run_dir)
        train(cfg)  # resumes run_dir/checkpoints/last.ckpt after the first budget
        ckpt = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
        generator = build_network(ckpt, "generator", weights_prefix(ckpt, "generator."))  # as `generate`
        y = digits if generator.num_classes else None
        with torch.no_grad():
            samples[budget] = _draw(generator, z, y, 256)
            if args.sample_bn_train:
                generator.train()
                train_mode[budget] = _draw(generator, z, y, args.batch)
    return samples, train_mode


def _draw(generator: nn.Module, z: Tensor, y: Tensor | None, chunk: int) -> Tensor:
    labels = [None] * len(z) if y is None else y.split(chunk)
    return torch.cat([generator(c, t) for c, t in zip(z.split(chunk), labels, strict=False)])


def plain_samples(train_x: Tensor, seed: int, args: argparse.Namespace, z: Tensor) -> dict[int, Tensor]:
    """The plain loop's uint8 28 px samples at every budget; kept in the cache directory (the loop
    is deterministic on the CPU), so repeated benchmarks train it once per seed and setting."""
    key = hashlib.sha256(
        f"{seed}-{args.batch}-{args.limit_train}-{args.n}-{SAMPLE_SEED}-{torch.__version__}-{args.device}".encode()
    ).hexdigest()[:16]
    path = Path(args.cache_dir) / "quality" / f"plain-{key}.pt"
    cached = torch.load(path, weights_only=True) if path.is_file() else {}
    if not set(args.iters) <= set(cached):
        budgets = sorted(set(args.iters) | set(cached))
        trained = plain_loop(train_x, seed, budgets, args.batch, z, args.device)
        cached = {i: to_28(x) for i, x in trained.items()}
        tmp = path.with_suffix(".tmp")
        torch.save(cached, tmp)
        tmp.replace(path)
    return {i: cached[i] for i in args.iters}


def mnist_tensors(data_dir: str) -> dict[str, Tensor]:
    dm = MNISTDataModule(data_dir, download=False)
    try:
        dm.prepare_data()
    except DataError:
        raise DataError(
            f"the quality benchmark needs real MNIST in {Path(data_dir) / 'MNIST' / 'raw'} (the four IDX "
            "files or their .gz); put them there or set paths.data_dir=<dir> / GANLAB_DATA_DIR"
        ) from None
    from torchvision.datasets import MNIST

    train_set, test_set = MNIST(data_dir, train=True), MNIST(data_dir, train=False)
    return {
        "train_x": train_set.data.unsqueeze(1), "train_y": train_set.targets,
        "test_x": test_set.data.unsqueeze(1), "test_y": test_set.targets,
    }  # fmt: skip


def side_by_side(grids: dict[str, Tensor], path: Path) -> None:
    """One labelled 8×8 grid per case, left to right."""
    tiles = [make_grid(images[:64].float().div(255), nrow=8, padding=2) for images in grids.values()]
    width, height = sum(t.shape[2] + 8 for t in tiles), tiles[0].shape[1] + 16
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw, x = ImageDraw.Draw(canvas), 0
    for name, tile in zip(grids, tiles, strict=True):
        array = tile.mul(255).round().byte().permute(1, 2, 0).numpy()
        canvas.paste(Image.fromarray(array).convert("RGB"), (x, 16))
        draw.text((x + 2, 2), name, fill=(0, 0, 0))
        x += tile.shape[2] + 8
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    data = mnist_tensors(args.data_dir)
    net, digest, acc = load_or_train_classifier(
        Path(args.cache_dir) / "quality", data, args.classifier_epochs, args.min_accuracy
    )  # the judge always learns from the full training set
    train_x = data["train_x"][: args.limit_train]  # what both GANs train on
    print(f"QUALITY judge: digit classifier sha256={digest} test_accuracy={acc:.4f}", flush=True)
    judge = Judge(net, data["test_x"])
    z = torch.randn(args.n, 100, generator=torch.Generator().manual_seed(SAMPLE_SEED))
    digits = torch.arange(args.n) % 10  # what a conditional case asks for
    limit = [f"data.limit_train={args.limit_train}"] if args.limit_train else []
    common = [f"paths.data_dir={args.data_dir}", *limit, *args.overrides]
    out = Path(args.output) / datetime.now().strftime("%Y%m%d-%H%M%S")
    plain = {s: plain_samples(train_x, s, args, z) for s in args.seeds}
    plain_scores = {s: {i: judge.score(x) for i, x in plain[s].items()} for s in args.seeds}
    results, grids = [], {"plain": plain[args.seeds[0]][max(args.iters)]}
    for name in args.cases:
        if name not in CASES:
            raise GanlabError(f"--cases {name} is not one of {', '.join(CASES)}")
        for seed in args.seeds:
            run_dir = out / "runs" / f"{name}-s{seed}"  # fresh: a new benchmark never resumes an old one
            conditional = "model.conditional=true" in CASES[name]  # scored on the digit it asked for
            ours, bn_train = ganlab_samples(CASES[name], seed, args.iters, z, run_dir, args, common, digits)
            for label, sampled in ((name, ours), (f"{name}@bn_train", bn_train)):
                for it, images in sampled.items():
                    r = {
                        "case": label,
                        "seed": seed,
                        "iters": it,
                        "images": it * args.batch,
                        **judge.score(to_28(images), digits if conditional else None),
                    }
                    r["plain_fd"] = plain_scores[seed][it]["fd"]
                    r["ratio"] = r["fd"] / r["plain_fd"]
                    results.append(r)
                    print(f"QUALITY {label} seed={seed} iters={it} images={r['images']} fd={r['fd']:.2f} "
                          f"classes={r['classes']} entropy={r['entropy']:.3f} plain_fd={r['plain_fd']:.2f} "
                          f"ratio={r['ratio']:.3f}" + _agreement(r), flush=True)  # fmt: skip
            grids[name] = to_28(ours[max(args.iters)])
            if conditional:  # digits 0..9 in turn: grouped by digit, a row of 8 per digit from 80 on
                first = grids[name][:80]
                grids[name] = first[torch.argsort(digits[: len(first)], stable=True)]
    for seed, scores in plain_scores.items():
        for it, s in scores.items():
            results.append({"case": "plain", "seed": seed, "iters": it, "images": it * args.batch, **s})
    summarise(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    side_by_side(grids, out / "samples.png")
    print(f"wrote {out / 'results.json'} and {out / 'samples.png'}")
    return results


def _agreement(r: dict[str, Any]) -> str:
    return f" agreement={r['agreement']:.3f}" if "agreement" in r else ""


def summarise(results: list[dict[str, Any]]) -> None:
    """Mean and spread over seeds per (case, iters), and the goal: the default's iterations to the
    plain loop's 600-iteration distance."""
    keys = sorted({(r["case"], r["iters"]) for r in results}, key=lambda k: (k[0] != "plain", k))
    for case, it in keys:
        fds = [r["fd"] for r in results if r["case"] == case and r["iters"] == it]
        spread = statistics.stdev(fds) if len(fds) > 1 else math.nan
        classes = min(r["classes"] for r in results if r["case"] == case and r["iters"] == it)
        agree = [
            r["agreement"] for r in results if r["case"] == case and r["iters"] == it and "agreement" in r
        ]
        print(f"QUALITY summary {case} iters={it} fd_mean={statistics.mean(fds):.2f} fd_sd={spread:.2f} "
              f"seeds={len(fds)} min_classes={classes}"
              + (f" agreement_min={min(agree):.3f}" if agree else ""))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="default", help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--iters", default="300,600,1200", help="budgets in iterations (batches)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu or cuda: both sides train there")
    parser.add_argument(
        "--sample-bn-train", action="store_true",
        help="also score ganlab's G with batch statistics (train-mode BN, as the plain loop samples)",
    )  # fmt: skip
    parser.add_argument("--n", type=int, default=2000, help="samples scored per point")
    parser.add_argument("--limit-train", type=int, default=None, help="the first N training images only")
    parser.add_argument("--data-dir", default=None, help="default: $GANLAB_DATA_DIR or ./data")
    parser.add_argument("--cache-dir", default=None, help="default: $GANLAB_CACHE_DIR or ~/.cache/ganlab")
    parser.add_argument("--output", default="outputs/quality")
    parser.add_argument("--classifier-epochs", type=int, default=4)
    parser.add_argument("--min-accuracy", type=float, default=0.99)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every ganlab case")
    args = parser.parse_args()
    quiet_third_party()
    args.data_dir = args.data_dir or os.environ.get("GANLAB_DATA_DIR", "data")
    args.cache_dir = args.cache_dir or os.environ.get(
        "GANLAB_CACHE_DIR", str(Path.home() / ".cache" / "ganlab")
    )
    args.cases, args.seeds = args.cases.split(","), [int(s) for s in args.seeds.split(",")]
    args.iters = sorted(int(i) for i in args.iters.split(","))
    try:
        run(args)
    except GanlabError as e:
        raise SystemExit(f"error: {' '.join(str(e).split())}") from None


if __name__ == "__main__":
    main()
