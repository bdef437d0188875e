"""The W&B mode is decided once, before any wandb.init, and never waits on the network."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ganlab import loggers
from ganlab.errors import ConfigError


@pytest.fixture
def no_env_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.tmp = tmp_path  # type: ignore[attr-defined]
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setenv("NETRC", "/nonexistent")
    monkeypatch.setenv("HOME", "/nonexistent")
    return monkeypatch


def test_no_key_means_offline(no_env_mode: pytest.MonkeyPatch) -> None:
    no_env_mode.delenv("WANDB_API_KEY", raising=False)
    assert loggers.resolve_mode("auto") == "offline"


def test_key_without_a_reachable_server_is_offline_quickly(no_env_mode: pytest.MonkeyPatch) -> None:
    no_env_mode.setenv("WANDB_API_KEY", "x" * 40)
    for url in ("http://127.0.0.1.invalid", "http://127.0.0.1:9"):  # no such host; a closed port
        no_env_mode.setenv("WANDB_BASE_URL", url)
        start = time.monotonic()
        assert loggers.resolve_mode("auto") == "offline"
        assert time.monotonic() - start < 10


def test_a_self_hosted_server_is_probed_at_wandb_base_url(no_env_mode: pytest.MonkeyPatch, http_root) -> None:
    """``WANDB_BASE_URL`` names the server (any HTTP answer counts), and ``wandb login``'s netrc
    entry for that host is the API key."""
    url, _ = http_root  # a real HTTP server on 127.0.0.1: it answers 404 to W&B's paths, as a server would
    no_env_mode.setenv("WANDB_BASE_URL", url)
    assert loggers.resolve_mode("auto") == "offline"  # reachable, but no key
    netrc_file = no_env_mode.tmp / "netrc"
    netrc_file.write_text("machine 127.0.0.1 login user password " + "k" * 40 + "\n")
    netrc_file.chmod(0o600)
    no_env_mode.setenv("NETRC", str(netrc_file))
    assert loggers.resolve_mode("auto") == "online"


def test_the_probe_goes_through_the_environments_proxy(no_env_mode: pytest.MonkeyPatch, http_root) -> None:
    """A network that reaches W&B only through a proxy is online; NO_PROXY sends the probe direct."""
    url, _ = http_root  # the proxy: it answers the proxied request (404: its folder has no such file)
    no_env_mode.setenv("WANDB_API_KEY", "x" * 40)
    no_env_mode.setenv("WANDB_BASE_URL", "http://wandb.example.invalid")  # not resolvable here
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        no_env_mode.delenv(name, raising=False)
    no_env_mode.setenv("HTTP_PROXY", url)
    no_env_mode.setenv("http_proxy", url)
    assert loggers.resolve_mode("auto") == "online"
    no_env_mode.setenv("NO_PROXY", "wandb.example.invalid")
    no_env_mode.setenv("no_proxy", "wandb.example.invalid")
    assert loggers.resolve_mode("auto") == "offline"


def test_explicit_modes_and_env_win(no_env_mode: pytest.MonkeyPatch) -> None:
    assert loggers.resolve_mode("disabled") == "disabled"
    no_env_mode.setenv("WANDB_MODE", "offline")
    assert loggers.resolve_mode("online") == "offline"
    no_env_mode.setenv("WANDB_MODE", "sometimes")
    with pytest.raises(ConfigError, match="WANDB_MODE=sometimes"):
        loggers.resolve_mode("auto")
