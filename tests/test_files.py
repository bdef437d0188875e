"""Failed writes lose nothing and say so in one line: a file-size limit (EFBIG), a full disk
(ENOSPC) and a read-only folder (EROFS), each real: a process limit, a small tmpfs, a read-only one."""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conftest import run_module
from ganlab.errors import DiskError
from ganlab.files import save_torch, write_json
from test_metrics import CountingEvaluator, reference

TINY_RUN = [
    "data=synthetic", "trainer=cpu", "logger=none", "metrics=none", "extras.print_config=false",
    "model.generator.ngf=8", "model.discriminator.ndf=8", "data.batch_size=16",
    "callbacks.checkpoint.every_n_iters=2", "callbacks.samples.every_n_iters=2", "~callbacks.progress_bar",
]  # fmt: skip


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """RLIMIT_FSIZE for this process (the soft limit only, so it can be lifted again). Python ignores
    SIGXFSZ, so a write past the limit fails with EFBIG instead of killing the process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    path.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.pt"
    save_torch({"w": torch.zeros(10)}, target)
    before = target.read_bytes()
    with file_size_limit(4096), pytest.raises(DiskError) as raised:
        save_torch({"w": torch.zeros(100_000)}, target)  # 400 kB > the 4 kB limit: EFBIG mid-write
    assert str(raised.value).startswith(f"cannot write {target}: File too large;")
    assert "ulimit -f" in str(raised.value)
    assert target.read_bytes() == before  # the last good file, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]  # no temporary left


def test_train_on_a_file_size_limit_keeps_last_ckpt(tmp_path: Path) -> None:
    """A run whose checkpoint write fails: one line, exit 1, the previous last.ckpt intact and
    resumable, no ``.last.ckpt.tmp``, and ``result.json`` whole."""
    run_dir = tmp_path / "run"
    first = run_module("ganlab.train", *TINY_RUN, "max_iters=2", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    last = run_dir / "checkpoints" / "last.ckpt"
    good = last.read_bytes()
    limit = len(good) // 2
    second = subprocess.run(  # the same run dir: auto-resume, then the next checkpoint cannot be written
        ["bash", "-c", f'ulimit -f {limit // 1024} && exec "$@"', "bash", *first.args, "max_iters=6"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 1
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cannot write {last}: File too large" in errors[0], second.stderr[-2000:]
    assert f"last good checkpoint: {last}" in errors[0]
    assert "Traceback" not in second.stderr
    assert last.read_bytes() == good and torch.load(last, weights_only=True)["iteration"] == 2
    assert not list(run_dir.rglob("*.tmp"))
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "failed" and "File too large" in result["error"]


@pytest.mark.slow
def test_full_disk_and_read_only_run_dir(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "4m") as small:  # room for one 2.4 MB checkpoint, not two
        run_dir = small / "run"
        result = run_module(
            "ganlab.train", *TINY_RUN, "max_iters=6", f"hydra.run.dir={run_dir}", cwd=tmp_path
        )
        assert result.returncode == 1
        (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert "No space left on device; the disk is full" in error and "last good checkpoint" in error
        last = run_dir / "checkpoints" / "last.ckpt"
        assert torch.load(last, weights_only=True)["iteration"] == 2
        assert not list(run_dir.rglob("*.tmp"))
        assert json.loads((run_dir / "result.json").read_text())["status"] == "failed"
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as read_only:
        result = run_module(
            "ganlab.train", *TINY_RUN, "max_iters=2", f"hydra.run.dir={read_only / 'run'}", cwd=tmp_path
        )
        assert result.returncode == 1
        (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert f"cannot write {read_only / 'run'}: Read-only file system" in error
        assert "Traceback" not in result.stderr


def test_a_read_only_fid_cache_warns_and_scores(tmp_path: Path, weights: Path) -> None:
    with tmpfs(tmp_path / "cache", "1m", read_only=True) as cache:
        evaluator = CountingEvaluator(weights, cache, torch.device("cpu"), dim=64, batch_size=10)
        with pytest.warns(UserWarning, match="Read-only file system.*not cached"):
            evaluator.set_reference("", reference())
        assert evaluator.images_seen == 24  # the statistics were computed and are used
        assert evaluator.score("", iter([reference(20).images]))["fid"] >= 0


def test_result_json_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    write_json(path, {"status": "completed"})
    with file_size_limit(8), pytest.raises(DiskError):
        write_json(path, {"status": "failed", "error": "x" * 100})
    assert json.loads(path.read_text()) == {"status": "completed"}
