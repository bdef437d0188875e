"""Hostile input, round two: files that claim more memory than they hold, a model zoo that sends too
much or was poisoned, secrets in configs, environment values, crafted resume states and the
values that used to end in a traceback. Each case reproduces the tester's report with real files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import official_arch as oa
from ganlab.checkpoint import build_network, load_checkpoint, read_torch_file
from ganlab.errors import CheckpointError
from ganlab.files import check_real_bytes
from test_official import photos, translate_cfg

# --- weights that claim more than their bytes (issue 23, point 4) ---


def as_views(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same keys and shapes, each a stride-0 view of one element: a few KB on disk."""
    return {k: torch.zeros(1, dtype=v.dtype).expand(v.shape) if v.dim() else v for k, v in state.items()}


def test_an_official_file_of_stride0_views_is_refused_before_building(tmp_path: Path) -> None:
    real = oa.ResnetGenerator(3, 3, ngf=16, n_blocks=9).state_dict()
    torch.save(as_views(real), tmp_path / "views.pth")
    assert (tmp_path / "views.pth").stat().st_size < 64_000  # the ~1 MB of weights it claims are not there
    image = photos(tmp_path / "in", n=1)[0]
    cfg = translate_cfg(ckpt=tmp_path / "views.pth", input=image, output=tmp_path / "o.png", device="cpu")
    from ganlab.translate import translate_folder

    with pytest.raises(CheckpointError, match=r"stride-0 or overlapping view.*refusing"):
        translate_folder(cfg)
    assert not (tmp_path / "o.png").exists()


def test_a_ganlab_checkpoint_with_view_weights_is_refused(dcgan_ckpt: Path, tmp_path: Path) -> None:
    ckpt = torch.load(dcgan_ckpt, map_location="cpu", weights_only=True)
    ckpt["state_dict"] = {
        k: (torch.zeros(1).expand(v.shape) if k.startswith("generator.") and v.dim() > 1 else v)
        for k, v in ckpt["state_dict"].items()
    }
    torch.save(ckpt, tmp_path / "views.ckpt")
    with pytest.raises(CheckpointError, match=r"ckpt=.*views\.ckpt holds a tensor of shape .* stride-0"):
        load_checkpoint(tmp_path / "views.ckpt")
    genuine = load_checkpoint(dcgan_ckpt)  # the real file passes and rebuilds
    assert build_network(genuine, "generator", "generator.") is not None


def test_one_storage_under_many_names_is_refused(tmp_path: Path) -> None:
    block = torch.randn(256, 256)  # 256 KB of real bytes, named 64 times: 16 MB claimed
    torch.save({f"layer{i}.weight": block for i in range(64)}, tmp_path / "shared.pth")
    with pytest.raises(CheckpointError, match="one storage under many names"):
        read_torch_file(tmp_path / "shared.pth")
    tied = {"embed.weight": block, "head.weight": block}  # tied weights (two names) are legitimate
    check_real_bytes(tied, "tied")


# --- the model zoo: a size cap, a cache that cannot be poisoned (point 5) ---


def test_the_zoo_cuts_off_an_oversized_download_and_keeps_nothing(
    tmp_path: Path, http_root, monkeypatch
) -> None:
    from ganlab import official
    from ganlab.translate import translate_folder

    base, served = http_root
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(official, "ZOO_URL", base + "{name}.pth")
    monkeypatch.setattr(official, "ZOO_MAX_BYTES", 50_000)
    torch.save(oa.ResnetGenerator(3, 3, ngf=16, n_blocks=9).state_dict(), served / "horse2zebra.pth")
    assert (served / "horse2zebra.pth").stat().st_size > 50_000
    image = photos(tmp_path / "in", n=1)[0]
    cfg = translate_cfg(ckpt="official:horse2zebra", input=image, output=tmp_path / "o.png", device="cpu")
    with pytest.raises(CheckpointError, match=r"larger than .* GB; refusing"):
        translate_folder(cfg)
    hub = tmp_path / "hub" / "checkpoints"
    assert not hub.exists() or not any(hub.iterdir())


def test_a_poisoned_zoo_cache_is_never_used_and_fetched_again(tmp_path: Path, http_root, monkeypatch) -> None:
    from ganlab import official
    from ganlab.translate import translate_folder

    base, served = http_root
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(official, "ZOO_URL", base + "{name}.pth")
    cached = tmp_path / "hub" / "checkpoints" / "cyclegan_horse2zebra.pth"
    cached.parent.mkdir(parents=True)
    torch.save(as_views(oa.ResnetGenerator(3, 3, ngf=16, n_blocks=9).state_dict()), cached)  # poisoned
    image = photos(tmp_path / "in", n=1)[0]
    cfg = translate_cfg(ckpt="official:horse2zebra", input=image, output=tmp_path / "o.png", device="cpu")
    with pytest.raises(CheckpointError, match=r"download .* failed"):  # the server does not have it yet
        translate_folder(cfg)
    assert not cached.exists()  # the bad file is gone, not used
    generator = oa.randomise(oa.ResnetGenerator(3, 3, ngf=4, n_blocks=9), seed=7)
    torch.save(generator.state_dict(), served / "horse2zebra.pth")
    translate_folder(cfg)
    assert (tmp_path / "o.png").is_file() and cached.is_file()


def test_a_pickled_fid_cache_file_is_reported_in_ganlabs_words(tmp_path: Path) -> None:
    from ganlab.metrics.cache import RealStatsCache

    cache = RealStatsCache(tmp_path)
    meta = {"dataset": "x"}
    path = cache.path(meta)
    path.parent.mkdir(parents=True)
    torch.save({"meta": meta, "state": oa.ResnetGenerator(3, 3, ngf=2, n_blocks=1)}, path)  # an object
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.load(meta) is None
    text = " ".join(str(w.message) for w in caught)
    assert "holds a Python object" in text and "weights_only" not in text
    assert not path.exists()
