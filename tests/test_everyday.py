"""Everyday use, second round: a quick and truthful stop, advice that works for the tool at hand, a
quiet console."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import lightning as L
import pytest

from conftest import TINY, make_cfg
from ganlab.cli import quiet_third_party
from ganlab.errors import Interrupted
from ganlab.train import train


class SignalAt(L.Callback):
    """Sends this process ``signum`` after iteration ``at`` (as ``kill`` or Ctrl-C would)."""

    def __init__(self, at: int, signum: int = signal.SIGTERM) -> None:
        self.at, self.signum = at, signum

    def on_train_batch_end(self, trainer, module, *args) -> None:
        if module.iteration == self.at:
            os.kill(os.getpid(), self.signum)


class CountValidation(L.Callback):
    runs = 0

    def on_validation_start(self, trainer, module) -> None:
        CountValidation.runs += 1


def test_a_signal_stops_after_the_batch_without_a_validation_pass(tmp_path: Path, mnist_root: Path) -> None:
    """SIGTERM mid-epoch: the iteration is saved and the run ends; Lightning's early-stop path used to
    run a whole validation pass first (~21 s on MNIST)."""
    CountValidation.runs = 0
    cfg = make_cfg(
        tmp_path,
        [
            *TINY,
            f"paths.data_dir={mnist_root}",
            "logger=none",
            "trainer.max_epochs=100",
            "trainer.limit_train_batches=null",
            "+callbacks.signal._target_=test_everyday.SignalAt",
            "+callbacks.signal.at=2",
            "+callbacks.count._target_=test_everyday.CountValidation",
        ],
    )
    with pytest.raises(Interrupted, match="stopped by SIGTERM after iteration 2"):
        train(cfg)
    assert CountValidation.runs == 0


def test_the_stop_reason_is_the_true_one_and_said_once(tmp_path: Path, mnist_root: Path, caplog) -> None:
    quiet_third_party()  # as every command does: Lightning's own reason is dropped
    caplog.set_level(logging.INFO)
    overrides = [*TINY, f"paths.data_dir={mnist_root}", "logger=none", "trainer.max_epochs=5", "max_iters=3"]
    train(make_cfg(tmp_path / "a", overrides))
    said = [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()]
    assert said == ["training stopped: max_iters=3 reached (iteration 3)"], said
    caplog.clear()
    train(make_cfg(tmp_path / "b", [*TINY, f"paths.data_dir={mnist_root}", "logger=none"]))
    said = [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()]
    assert said == ["training stopped: trainer.max_epochs=1 reached (iteration 4)"], said
