"""``make bench-startup``: how long each command takes to answer, against ``python -c "import torch"``
measured in the same run (a ratio, not a fixed number of seconds: machines differ).

python -m ganlab.startup [--repeats 5]

Cases: ``--help`` of train and the tools, ``--cfg job``, a misspelt key, a bad value, a value of
the wrong type, a bad Trainer value, a DCGAN size, a network too large for the machine (built on
the meta device) and missing data (each one line, exit 1), and a one-image translate with a tiny
official-format generator (the command's start-up plus a network that takes milliseconds). Each
line is printed the moment its case ends: ``STARTUP <case> seconds=<median> ratio=<seconds / import torch>``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
NO_DATA = ["data.download=false", "metrics=none"]


def _seconds(command: list[str], repeats: int, cwd: Path) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, capture_output=True, timeout=300)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _translate_inputs(folder: Path) -> tuple[Path, Path]:
    """A tiny official ResNet generator file and one 64 × 64 photo (made here, in a subprocess-free
    way: this process imports torch only now, after the import-torch baseline was timed)."""
    import torch
    from PIL import Image

    from ganlab.nets.resnet import ResnetGenerator
    from ganlab.official import to_official

    net = ResnetGenerator(3, 3, ngf=4, n_blocks=1)
    torch.save(to_official(net.state_dict(), ResnetGenerator), folder / "g.pth")
    Image.new("RGB", (64, 64), (90, 120, 200)).save(folder / "photo.png")
    return folder / "g.pth", folder / "photo.png"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs of each case; the median is reported")
    args = parser.parse_args()
    if args.repeats < 1:
        raise SystemExit(f"error: --repeats {args.repeats}: must be ≥ 1")
    with tempfile.TemporaryDirectory(prefix="ganlab-startup-") as tmp:
        cwd = Path(tmp)
        baseline = _seconds([PY, "-c", "import torch"], args.repeats, cwd)
        print(f"STARTUP import_torch seconds={baseline:.2f} ratio=1.00", flush=True)
        cases = {
            "train_help": ["-m", "ganlab.train", "--help"],
            "train_cfg_job": ["-m", "ganlab.train", "--cfg", "job"],
            "train_misspelt_key": ["-m", "ganlab.train", "model.lrr=1"],
            "train_bad_value": ["-m", "ganlab.train", "model.lr=abc"],
            # a value its class's type hint refuses (read from ganlab's source, nothing imported)
            "train_bad_type": ["-m", "ganlab.train", "data.download=maybe"],
            # a value of Lightning's Trainer (its signature read from Lightning's source)
            "train_trainer_value": ["-m", "ganlab.train", "trainer.precision=abc"],
            # a DCGAN size: a rule of the class's argument, judged with its signature
            "train_class_rule": ["-m", "ganlab.train", "model.generator.image_size=7"],
            # what only a constructor says: the networks are built on the meta device (torch)
            "train_network_too_large": [
                "-m",
                "ganlab.train",
                "data=synthetic",
                "model.generator.ngf=100000",
                "metrics=none",
            ],
            # preflight: the data is missing and may not be downloaded
            "train_missing_data": ["-m", "ganlab.train", f"paths.data_dir={cwd / 'none'}", *NO_DATA],
            **{
                f"{tool}_help": ["-m", f"ganlab.{tool}", "--help"]
                for tool in ("generate", "translate", "evaluate")
            },
        }
        for name, command in cases.items():
            seconds = _seconds([PY, *command], args.repeats, cwd)
            print(f"STARTUP {name} seconds={seconds:.2f} ratio={seconds / baseline:.2f}", flush=True)
        weights, photo = _translate_inputs(cwd)
        command = [
            PY,
            "-m",
            "ganlab.translate",
            f"ckpt={weights}",
            f"input={photo}",
            "device=cpu",
            "overwrite=true",
        ]
        seconds = _seconds([*command, f"output={cwd / 'out.png'}"], args.repeats, cwd)
        print(f"STARTUP translate_one_image seconds={seconds:.2f} ratio={seconds / baseline:.2f}", flush=True)


if __name__ == "__main__":
    main()
