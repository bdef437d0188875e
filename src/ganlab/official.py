"""Weight files of the official CycleGAN / pix2pix code (junyanz/pytorch-CycleGAN-and-pix2pix).

``latest_net_G_A.pth`` (or a model-zoo ``<name>.pth``) is a plain state dict of one network. Its
architecture is not stored, so it is read from the keys and shapes:

- ``ResnetGenerator`` (``resnet_9blocks``, ``resnet_6blocks``): ``model.1.weight`` is the 7×7 input
  conv, ``model.<i>.conv_block.*`` the residual blocks (a ``conv_block.6`` conv means dropout);
- ``UnetGenerator`` (``unet_256``, ``unet_128``): nested ``model.model.1.model.3…`` skip blocks, one
  down conv per level; batch norm when its norm layers carry weights, else instance norm;
- ``NLayerDiscriminator`` (``basic``, the 70×70 PatchGAN): ``model.0.weight`` a 4×4 conv.

ganlab's networks have the same layers in the same order, so the map is a rename (``model.`` ↔
``net.``, ``conv_block`` ↔ ``block``; the U-Net is identical). Files written before PyTorch 0.4
carry ``running_mean``/``running_var`` for instance norms that keep no statistics; they are
dropped, as the official loader's ``__patch_instance_norm_state_dict`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.errors import CheckpointError
from ganlab.fetch import fetch_once
from ganlab.files import check_real_bytes, load_failure
from ganlab.nets.patchgan import PatchDiscriminator
from ganlab.nets.resnet import ResnetGenerator
from ganlab.nets.unet import UnetGenerator

STATS = ("running_mean", "running_var", "num_batches_tracked")
# the official model zoo (scripts/download_cyclegan_model.sh): one generator per name
ZOO_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{name}.pth"
ZOO = (
    "apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra",
    "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh", "sat2map",
    "map2sat", "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label",
    "facades_label2photo", "iphone2dslr_flower",
)  # fmt: skip
ZOO_PREFIX = "official:"
ZOO_MAX_BYTES = 128 << 20  # the published generators are 11–55 MB: a server sending more is cut off
UNET_DOWN = re.compile(r"model\.model\.1(?:\.model\.3)*\.model\.1\.weight")


@dataclass
class OfficialNet:
    """What a file holds: the official ``--netG``/``--netD`` name and ganlab's equivalent."""

    name: str  # resnet_9blocks, unet_256, basic, …
    cls: type[nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_generator(self) -> bool:
        return self.cls is not PatchDiscriminator

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"the official {self.name} {'generator' if self.is_generator else 'discriminator'} ({args})"


def is_state_dict(obj: Any) -> bool:
    """A plain ``{name: tensor}`` dict, as the official code saves one network."""
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    )


def _drop_stale_stats(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Without the running statistics of norm layers that have no affine weight (instance norms)."""
    out = {}
    for key, value in state.items():
        owner, _, leaf = key.rpartition(".")
        if leaf in STATS and f"{owner}.weight" not in state:
            continue
        out[key] = value
    return out


def _resnet(state: dict[str, Tensor]) -> OfficialNet | None:
    first = state.get("model.1.weight")
    if first is None or first.dim() != 4 or first.shape[-1] != 7:
        return None
    blocks = {
        int(m.group(1)) for k in state if (m := re.fullmatch(r"model\.(\d+)\.conv_block\.1\.weight", k))
    }
    if not blocks:
        return None
    last = max(int(m.group(1)) for k in state if (m := re.fullmatch(r"model\.(\d+)\.weight", k)))
    kwargs = {
        "in_channels": int(first.shape[1]),
        "out_channels": int(state[f"model.{last}.weight"].shape[0]),
        "ngf": int(first.shape[0]),
        "n_blocks": len(blocks),
        "dropout": 0.5 if any(".conv_block.6." in k for k in state) else 0.0,
    }
    if "model.2.weight" in state:
        raise CheckpointError(
            "a ResnetGenerator with batch norm (--norm batch) is not supported; ganlab's ResNet "
            "generator is the official default, instance norm"
        )
    return OfficialNet(f"resnet_{len(blocks)}blocks", ResnetGenerator, kwargs)


def _unet(state: dict[str, Tensor]) -> OfficialNet | None:
    first, last = state.get("model.model.0.weight"), state.get("model.model.3.weight")
    if first is None or last is None or first.dim() != 4:
        return None
    num_downs = 1 + sum(1 for k in state if UNET_DOWN.fullmatch(k))
    kwargs = {
        "in_channels": int(first.shape[1]),
        "out_channels": int(last.shape[1]),  # ConvTranspose2d weights are (in, out, k, k)
        "ngf": int(first.shape[0]),
        "num_downs": num_downs,
        "norm": "batch" if "model.model.1.model.2.weight" in state else "instance",
    }
    return OfficialNet(f"unet_{2**num_downs}", UnetGenerator, kwargs)


def _patchgan(state: dict[str, Tensor]) -> OfficialNet | None:
    first = state.get("model.0.weight")
    if first is None or first.dim() != 4 or first.shape[-1] != 4:
        return None
    convs = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"model\.(\d+)\.weight", k)))
    convs = [i for i in convs if state[f"model.{i}.weight"].dim() == 4]
    kwargs = {
        "in_channels": int(first.shape[1]),
        "ndf": int(first.shape[0]),
        "n_layers": len(convs) - 2,
        "norm": "batch" if "model.3.weight" in state else "instance",
    }
    return OfficialNet(
        "basic" if kwargs["n_layers"] == 3 else f"n_layers_{kwargs['n_layers']}", PatchDiscriminator, kwargs
    )


def first_difference(shapes: dict[str, torch.Size], state: dict[str, Tensor]) -> str | None:
    """The first key whose presence or shape differs between a network's ``shapes`` and ``state``."""
    stored = {k: v.shape for k, v in state.items()}
    if shapes == stored:
        return None
    return (sorted(set(shapes) ^ set(stored)) or [k for k in shapes if shapes[k] != stored[k]])[0]


def identify(state: dict[str, Tensor]) -> OfficialNet | None:
    """The official network a state dict is, or None when it is none of them."""
    state = _drop_stale_stats(state)
    try:
        return _unet(state) or _resnet(state) or _patchgan(state)
    except (IndexError, KeyError, ValueError):  # a layer of the wrong rank (a scalar where a conv is)
        return None


def to_ganlab(state: dict[str, Tensor], net: OfficialNet) -> dict[str, Tensor]:
    """Official key names → ganlab's (``model.`` → ``net.``, ``conv_block`` → ``block``)."""
    state = _drop_stale_stats(state)
    if net.cls is UnetGenerator:
        return dict(state)
    return {re.sub(r"^model\.", "net.", k).replace(".conv_block.", ".block."): v for k, v in state.items()}


def to_official(state: dict[str, Tensor], cls: type[nn.Module]) -> dict[str, Tensor]:
    """ganlab key names → the official ones; the inverse of ``to_ganlab``."""
    if cls is UnetGenerator:
        return dict(state)
    return {re.sub(r"^net\.", "model.", k).replace(".block.", ".conv_block."): v for k, v in state.items()}


def build_official(state: dict[str, Tensor], where: str) -> tuple[nn.Module, OfficialNet]:
    """ganlab's network with an official file's weights; refuses a layout it does not recognise."""
    found = identify(state)
    if found is None:
        raise CheckpointError(
            f"{where} is a state dict but not an official CycleGAN/pix2pix network (first key "
            f"{next(iter(state))!r}); expected latest_net_G_A.pth-style ResnetGenerator or "
            "UnetGenerator weights"
        )
    mapped = to_ganlab(state, found)
    try:
        with torch.device("meta"):
            shapes = {k: v.shape for k, v in found.cls(**found.kwargs).state_dict().items()}
    except ValueError as e:
        raise CheckpointError(f"{where}: {found.describe()} cannot be built ({e})") from None
    differ = first_difference(shapes, mapped)
    if differ is not None:
        raise CheckpointError(
            f"{where} looks like {found.describe()} but its weights do not fit it (first difference: "
            f"{differ!r}); the file is damaged or from another architecture"
        )
    net = found.cls(**found.kwargs)
    net.load_state_dict(mapped)
    return net.eval(), found


def resolve_model(spec: str) -> str:
    """``official:<name>``: that model-zoo generator, fetched once into the torch hub cache (at most
    ``ZOO_MAX_BYTES``, and refused unless it is an official generator's state dict of real tensors,
    checked again on every use); any other ``ckpt`` unchanged."""
    if not str(spec).startswith(ZOO_PREFIX):
        return spec
    name = str(spec)[len(ZOO_PREFIX) :]
    if name not in ZOO:
        raise CheckpointError(
            f"ckpt={spec}: {name!r} is not in the official CycleGAN model zoo ({', '.join(ZOO)})"
        )
    path = Path(torch.hub.get_dir()) / "checkpoints" / f"cyclegan_{name}.pth"
    if path.is_file():
        try:
            _check_zoo_file(path)  # every use: a bad file under the cache's name is never used
            return str(path)
        except CheckpointError:
            path.unlink()  # ganlab's own cache name: fetched again below
    url = ZOO_URL.format(name=name)
    reason = fetch_once(url, path, verify=_check_zoo_file, max_bytes=ZOO_MAX_BYTES)
    if reason is not None:
        raise CheckpointError(f"ckpt={spec}: {reason}; download {url} yourself and pass ckpt=<that file>")
    return str(path)


def _check_zoo_file(path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path.name} {load_failure(e)}") from None
    check_real_bytes(state, path.name)
    found = identify(state) if is_state_dict(state) else None
    if found is None or not found.is_generator:
        raise CheckpointError(f"{path.name} is not an official generator's weights; not kept")


def official_inference(net: nn.Module, batch_stats: bool, dropout: bool) -> nn.Module:
    """Set ``net`` up for inference as the official ``test.py`` runs it.

    Without ``--eval`` the official test keeps the model in training mode: batch norms normalise
    with the test batch's own statistics (batch size 1: the paper's "instance normalization" at
    test time) and dropout stays on unless ``--no_dropout``. A batch norm on one image's statistics
    *is* an affine instance norm, so each becomes one (same weights): images are then independent
    in a batch of any size, and the network exports to ONNX as it runs here.
    """
    net.eval()
    if batch_stats:
        for parent in list(net.modules()):
            for name, child in parent.named_children():
                if isinstance(child, nn.BatchNorm2d):
                    setattr(parent, name, _as_instance_norm(child))
    if dropout:
        for m in net.modules():
            if isinstance(m, nn.Dropout):
                m.train()
    return net


def _as_instance_norm(bn: nn.BatchNorm2d) -> nn.InstanceNorm2d:
    norm = nn.InstanceNorm2d(bn.num_features, eps=bn.eps, affine=True, track_running_stats=False)
    with torch.no_grad():
        norm.weight.copy_(bn.weight)
        norm.bias.copy_(bn.bias)
    return norm.to(bn.weight.device)
