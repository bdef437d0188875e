from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

import fabricate
from ganlab.train import CONFIG_DIR

os.environ.setdefault("WANDB_MODE", "offline")  # tests never reach the network
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mnist")
    fabricate.mnist(root)
    return root


@pytest.fixture(scope="session")
def dcgan_ckpt(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Path:
    """last.ckpt of a tiny DCGAN run on the fabricated MNIST (4 iterations); read, never modified."""
    from ganlab.train import train

    run = tmp_path_factory.mktemp("dcgan")
    train(make_cfg(run, [*TINY, f"paths.data_dir={mnist_root}", "logger=none"]))
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Inception weights with the real shapes and random values (tests/fabricate.py)."""
    return fabricate.inception_weights(tmp_path_factory.mktemp("inception") / "weights.pth")


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    fabricate.cifar10(root)
    return root


# small and fast: quarter-width nets, a few iterations, every cadence short
TINY = [
    "model.generator.ngf=8",
    "model.discriminator.ndf=8",
    "data.batch_size=16",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=1",
    "callbacks.checkpoint.every_n_iters=2",
    "callbacks.samples.every_n_iters=2",
    "~callbacks.progress_bar",
    "metrics=none",
]


# a CycleGAN run of seconds: tiny networks, 32 px crops, two iterations
TINY_CYCLE = [
    "model=cyclegan", "data=unpaired_folder", "data.load_size=36", "data.crop_size=32",
    "data.num_workers=0", "data.num_panels=2", "model.generator.ngf=4", "model.generator.n_blocks=1",
    "model.discriminator.ndf=4", "model.discriminator.n_layers=2", "model.pool_size=3",
    "model.n_epochs=1", "model.n_epochs_decay=0", "trainer=cpu", "trainer.max_epochs=1",
    "trainer.limit_train_batches=2", "~callbacks.progress_bar", "logger=none", "metrics=none",
]  # fmt: skip


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A file server on 127.0.0.1 over a temporary folder: (base URL, folder). A file named
    ``cut.zip`` is sent with a Content-Length twice its size, as a dropped connection would."""
    served = tmp_path / "served"
    served.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def do_GET(self):
            if self.path.endswith("cut.zip"):
                blob = (served / "cut.zip").read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(blob) * 2))
                self.end_headers()
                self.wfile.write(blob)
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", served
    server.shutdown()


def fid_weights(path: Path) -> list[str]:
    """Overrides for the fabricated Inception weights (real shapes, random values: not the sha256
    torch-fidelity publishes, so they are accepted only deliberately)."""
    return [f"metrics.fid.weights_path={path}", "metrics.fid.allow_other_weights=true"]


def make_cfg(output_dir: Path, overrides: list[str]) -> DictConfig:
    """The real composed config (conf/train.yaml), with the run directory pinned to output_dir."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def run_module(module: str, *args: str, cwd: Path, env: dict | None = None, timeout: int = 300):
    """``python -m <module> args`` as a user would run it."""
    full_env = {**os.environ, "WANDB_MODE": "offline", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    full_env.pop("WANDB_SILENT", None)  # wandb speaks as it would to a user (its output is captured)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
