"""Official CycleGAN/pix2pix weight files in translate; single-image and glob inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

import fabricate
import official_arch as oa
from conftest import fid_weights, run_module
from ganlab.errors import CheckpointError, ConfigError, DataError
from ganlab.official import build_official, identify, to_ganlab, to_official
from ganlab.train import CONFIG_DIR
from ganlab.translate import translate_folder


def translate_cfg(**overrides: object) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="translate", overrides=[f"{k}={v}" for k, v in overrides.items()])


def photos(folder: Path, n: int = 2, jpeg: bool = True) -> list[Path]:
    """Small photos of odd sizes (the official test resizes them to 256 × 256)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        w, h = 180 + 37 * i, 140 + 21 * i
        smooth = rng.integers(0, 255, (h // 10 + 1, w // 10 + 1, 3), dtype=np.uint8)
        image = Image.fromarray(smooth).resize((w, h), Image.BILINEAR)
        path = folder / (f"p{i}.jpg" if i % 2 == 0 and jpeg else f"p{i}.png")
        image.save(path, quality=95)
        paths.append(path)
    return paths


def with_legacy_stats(state: dict[str, torch.Tensor], net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Add the running_mean/var keys that instance norms of pre-0.4 PyTorch saved (official issue)."""
    out = dict(state)
    for name, m in net.named_modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            out[f"{name}.running_mean"] = torch.zeros(m.num_features)
            out[f"{name}.running_var"] = torch.ones(m.num_features)
    return out


OFFICIAL = {
    "resnet_9blocks": lambda: oa.ResnetGenerator(3, 3, ngf=8, n_blocks=9),
    "resnet_6blocks": lambda: oa.ResnetGenerator(3, 3, ngf=8, n_blocks=6),
    "unet_256": lambda: oa.UnetGenerator(3, 3, 8, ngf=8, norm="batch", use_dropout=True),
    "unet_128": lambda: oa.UnetGenerator(3, 3, 7, ngf=8, norm="instance"),
}


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_official_generator_matches_the_official_test_output(tmp_path: Path, name: str) -> None:
    """An official file is recognised, its architecture inferred, and translate's output is the official
    test.py --model test --no_dropout result to within one grey level (truncation vs rounding)."""
    net = oa.randomise(OFFICIAL[name](), seed=1)
    weights = tmp_path / "latest_net_G_A.pth"
    torch.save(with_legacy_stats(net.state_dict(), net), weights)
    found = identify(torch.load(weights, weights_only=True))
    assert found is not None and found.name == name and found.kwargs["ngf"] == 8
    images = photos(tmp_path / "in", jpeg=False)  # PNG out: the comparison is not blurred by JPEG
    translate_folder(
        translate_cfg(ckpt=weights, input=tmp_path / "in", output=tmp_path / "out", device="cpu")
    )
    for path in images:
        ours = np.asarray(Image.open(tmp_path / "out" / path.name).convert("RGB")).astype(int)
        official = oa.official_test_output(net, str(path)).astype(int)
        assert ours.shape == official.shape == (256, 256, 3)
        assert np.abs(ours - official).max() <= 1
        assert official.std() > 1  # the network did something image-dependent
    # the mapped weights give ganlab's own network exactly the official forward pass
    ganlab_net, _ = build_official(net.state_dict(), "test")
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(ganlab_net.eval()(x), net.eval()(x))


def test_key_maps_round_trip() -> None:
    net = oa.randomise(oa.ResnetGenerator(3, 3, ngf=8, n_blocks=6, use_dropout=True), seed=2)
    state = net.state_dict()
    found = identify(state)
    assert found is not None and found.kwargs["dropout"] == 0.5 and found.kwargs["n_blocks"] == 6
    back = to_official(to_ganlab(state, found), found.cls)
    assert back.keys() == state.keys() and all(torch.equal(back[k], state[k]) for k in state)
    d = identify(oa.NLayerDiscriminator(6, ndf=8, norm="batch").state_dict())
    assert d is not None and not d.is_generator and d.kwargs == {
        "in_channels": 6, "ndf": 8, "n_layers": 3, "norm": "batch"
    }  # fmt: skip


def test_single_image_glob_and_output_forms(tmp_path: Path) -> None:
    weights = tmp_path / "horse2zebra.pth"
    torch.save(oa.randomise(oa.ResnetGenerator(3, 3, ngf=8, n_blocks=6), seed=3).state_dict(), weights)
    images = photos(tmp_path / "in" / "sub", n=3)
    common = {"ckpt": weights, "device": "cpu", "crop_size": 64}
    translate_folder(translate_cfg(**common, input=images[0], output=tmp_path / "zebra.png"))
    assert Image.open(tmp_path / "zebra.png").size == (64, 64)
    (tmp_path / "existing").mkdir()
    translate_folder(translate_cfg(**common, input=images[1], output=tmp_path / "existing"))
    assert (tmp_path / "existing" / images[1].name).is_file()
    count = translate_folder(
        translate_cfg(**common, input=f"'{tmp_path}/in/**/*.jpg'", output=tmp_path / "g")
    )
    assert count == 2 and sorted(p.name for p in (tmp_path / "g" / "sub").iterdir()) == ["p0.jpg", "p2.jpg"]
    translate_folder(translate_cfg(**common, input=f"'{tmp_path}/in/sub/p*.png'", output=tmp_path / "h"))
    assert [p.name for p in (tmp_path / "h").iterdir()] == ["p1.png"]
    with pytest.raises(ConfigError, match="already exist"):  # never replaced unasked
        translate_folder(translate_cfg(**common, input=images[0], output=tmp_path / "zebra.png"))
    with pytest.raises(ConfigError, match="is a file"):
        translate_folder(translate_cfg(**common, input=tmp_path / "in", output=tmp_path / "zebra.png"))
    with pytest.raises(DataError, match="matches no image"):
        translate_folder(translate_cfg(**common, input=f"'{tmp_path}/in/*.gif'", output=tmp_path / "x"))
    with pytest.raises(DataError, match="does not exist"):
        translate_folder(translate_cfg(**common, input=tmp_path / "nope.jpg", output=tmp_path / "x"))


class _System:
    """A pickle that would run a shell command when loaded without weights_only."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def test_files_that_are_not_a_generator(tmp_path: Path) -> None:
    images = photos(tmp_path / "in", n=1)
    cases = {
        "latest_net_D_A.pth": (oa.NLayerDiscriminator(3, ndf=8).state_dict(), "discriminator"),
        "other.pth": ({"fc.weight": torch.zeros(2, 2)}, "not an official CycleGAN/pix2pix network"),
        "lightning.ckpt": ({"state_dict": {}, "pytorch-lightning_version": "2.6"}, "not written by ganlab"),
        "list.pth": ([1, 2, 3], "a list, not a checkpoint"),
    }
    for name, (content, message) in cases.items():
        torch.save(content, tmp_path / name)
        with pytest.raises((CheckpointError, ConfigError), match=message):
            translate_folder(translate_cfg(ckpt=tmp_path / name, input=images[0], output=tmp_path / "o"))
    torch.save({"model.1.weight": torch.zeros(1), "x": _System("touch ran")}, tmp_path / "system.pth")
    with pytest.raises(CheckpointError, match=r"holds a Python object \(posix\.system\)") as refused:
        translate_folder(translate_cfg(ckpt=tmp_path / "system.pth", input=images[0], output=tmp_path / "o"))
    assert "weights_only" not in str(refused.value) and not (Path.cwd() / "ran").exists()
    (tmp_path / "bytes.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="is not a torch file of plain data, or is damaged"):
        translate_folder(translate_cfg(ckpt=tmp_path / "bytes.pth", input=images[0], output=tmp_path / "o"))
    wrong = oa.ResnetGenerator(3, 3, ngf=8, n_blocks=6).state_dict()
    wrong["model.4.weight"] = torch.zeros(16, 8, 3, 5)  # damaged: the shapes no longer fit
    torch.save(wrong, tmp_path / "damaged.pth")
    with pytest.raises(CheckpointError, match="do not fit"):
        translate_folder(translate_cfg(ckpt=tmp_path / "damaged.pth", input=images[0], output=tmp_path / "o"))
    assert not (tmp_path / "o").exists()  # nothing written


def test_cli_official_model_on_one_photo(tmp_path: Path) -> None:
    """The README's two commands: an official file and one photo → one translated file."""
    torch.save(
        oa.randomise(oa.ResnetGenerator(3, 3, ngf=8, n_blocks=9), seed=4).state_dict(), tmp_path / "m.pth"
    )
    photo = photos(tmp_path, n=1)[0]
    result = run_module(
        "ganlab.translate", "ckpt=m.pth", f"input={photo.name}", "output=zebra.jpg", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "zebra.jpg").size == (256, 256)


def test_evaluate_scores_an_official_generator_on_folders(tmp_path: Path) -> None:
    """evaluate ckpt=<official .pth> input= real= equals evaluate real= fake=<translate's output>."""
    from ganlab.evaluate import evaluate, evaluate_folders, evaluate_translation

    weights = fabricate.inception_weights(tmp_path / "inception.pth")
    generator = oa.randomise(oa.ResnetGenerator(3, 3, ngf=4, n_blocks=2), seed=6)
    torch.save(generator.state_dict(), tmp_path / "g.pth")
    photos(tmp_path / "source", n=12, jpeg=False)
    photos(tmp_path / "target", n=10, jpeg=False)
    common = [*fid_weights(weights), "metrics.fid.feature=64", "metrics.kid.subset_size=8", "device=cpu"]
    common += [f"metrics.cache_dir={tmp_path / 'cache'}", "crop_size=64"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        pair = [f"input={tmp_path / 'source'}", f"real={tmp_path / 'target'}"]
        cfg = compose("evaluate", [*common, f"ckpt={tmp_path / 'g.pth'}", *pair])
        direct = evaluate_translation(cfg)
    source, fake = tmp_path / "source", tmp_path / "fake"
    translate_folder(
        translate_cfg(ckpt=tmp_path / "g.pth", input=source, output=fake, crop_size=64, device="cpu")
    )
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        via_files = evaluate_folders(
            compose("evaluate", [*common, f"real={tmp_path / 'target'}", f"fake={fake}"])
        )
    assert direct["num_fake"] == 12 and direct["fid"] == pytest.approx(via_files["fid"], rel=1e-4)
    assert "resnet_2blocks" in direct["protocol"]["generator"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        no_data = compose("evaluate", [*common, f"ckpt={tmp_path / 'g.pth'}"])
    with pytest.raises(ConfigError, match="input=<source images> real=<target images>"):
        evaluate(no_data)


def test_official_model_zoo_names_are_fetched_once(tmp_path: Path, http_root, monkeypatch) -> None:
    """ckpt=official:<name> fetches the model-zoo generator into the hub cache once; a download that is
    not an official generator is refused and not kept; an unknown name lists the zoo."""
    from ganlab import official

    base, served = http_root
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(official, "ZOO_URL", base + "{name}.pth")
    generator = oa.randomise(oa.ResnetGenerator(3, 3, ngf=4, n_blocks=9), seed=7)
    torch.save(generator.state_dict(), served / "horse2zebra.pth")
    torch.save(oa.NLayerDiscriminator(3, ndf=4).state_dict(), served / "zebra2horse.pth")  # wrong content
    image = photos(tmp_path / "in", n=1, jpeg=False)[0]
    common = {"input": image, "device": "cpu", "crop_size": 64}
    translate_folder(translate_cfg(ckpt="official:horse2zebra", output=tmp_path / "a.png", **common))
    (served / "horse2zebra.pth").unlink()  # the second use reads the cache
    translate_folder(translate_cfg(ckpt="official:horse2zebra", output=tmp_path / "b.png", **common))
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    with pytest.raises(CheckpointError, match="not an official generator"):
        translate_folder(translate_cfg(ckpt="official:zebra2horse", output=tmp_path / "c.png", **common))
    assert sorted(p.name for p in (tmp_path / "hub" / "checkpoints").iterdir()) == [
        "cyclegan_horse2zebra.pth"
    ]
    with pytest.raises(CheckpointError, match="not in the official CycleGAN model zoo"):
        translate_folder(translate_cfg(ckpt="official:horse2unicorn", output=tmp_path / "d.png", **common))
