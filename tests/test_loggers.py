"""The W&B mode is decided once, before any wandb.init, and never waits on the network."""

from __future__ import annotations

import time

import pytest

from ganlab import loggers
from ganlab.errors import ConfigError


@pytest.fixture
def no_env_mode(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", "/nonexistent")
    monkeypatch.setenv("HOME", "/nonexistent")
    return monkeypatch


def test_no_key_means_offline(no_env_mode: pytest.MonkeyPatch) -> None:
    no_env_mode.delenv("WANDB_API_KEY", raising=False)
    assert loggers.resolve_mode("auto") == "offline"


def test_key_without_a_reachable_server_is_offline_quickly(no_env_mode: pytest.MonkeyPatch) -> None:
    no_env_mode.setenv("WANDB_API_KEY", "x" * 40)
    no_env_mode.setattr(loggers, "WANDB_HOST", "127.0.0.1.invalid")
    start = time.monotonic()
    assert loggers.resolve_mode("auto") == "offline"
    assert time.monotonic() - start < 10


def test_key_and_server_means_online(no_env_mode: pytest.MonkeyPatch) -> None:
    no_env_mode.setenv("WANDB_API_KEY", "x" * 40)
    no_env_mode.setattr(loggers, "_reachable", lambda host, timeout=3.0: True)
    assert loggers.resolve_mode("auto") == "online"


def test_explicit_modes_and_env_win(no_env_mode: pytest.MonkeyPatch) -> None:
    assert loggers.resolve_mode("disabled") == "disabled"
    no_env_mode.setenv("WANDB_MODE", "offline")
    assert loggers.resolve_mode("online") == "offline"
    no_env_mode.setenv("WANDB_MODE", "sometimes")
    with pytest.raises(ConfigError, match="WANDB_MODE=sometimes"):
        loggers.resolve_mode("auto")
