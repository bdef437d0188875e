"""LPIPS (Zhang et al. 2018, AlexNet v0.1) for paired translations, with weights read as data.

torchmetrics' ``LearnedPerceptualImagePatchSimilarity`` fetches torchvision's AlexNet through
``torch.hub`` (unpickled with ``weights_only=False``) when it is built; here the same network is
built empty and filled from files read with ``weights_only=True``: the AlexNet features from
``metrics.lpips.weights_path`` (else the torch hub cache, fetched once, as the Inception weights)
and the linear calibration layers shipped inside torchmetrics.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from torch import Tensor, nn

from ganlab.files import check_real_bytes, load_failure
from ganlab.metrics.hub import ALEXNET_FILE, MissingLpipsWeightsError, resolve_alexnet  # noqa: F401


def _tensors(path: Path, what: str) -> dict[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise MissingLpipsWeightsError(f"{path} {load_failure(e)} (expected {what} weights)") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise MissingLpipsWeightsError(f"{path} is not a state dict of tensors ({what})")
    check_real_bytes(state, str(path), MissingLpipsWeightsError)
    return state


# torchvision's alexnet.features index → the LPIPS slice that holds it (torchmetrics' Alexnet)
SLICES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 2, 5: 3, 6: 3, 7: 3, 8: 4, 9: 4, 10: 5, 11: 5}


class Lpips(nn.Module):
    """images in [−1, 1] (B, 3, H, W) × 2 → LPIPS distance per image (B,); lower is closer."""

    def __init__(self, alexnet: Path) -> None:
        super().__init__()
        from torchmetrics.functional.image import lpips as tm_lpips

        self.net = tm_lpips._LPIPS(pretrained=False, net="alex", pnet_rand=True)  # nothing fetched or read
        features = {}
        for key, value in _tensors(alexnet, "AlexNet").items():
            parts = key.split(".")
            if parts[0] == "features" and int(parts[1]) in SLICES:
                features[f"net.slice{SLICES[int(parts[1])]}.{parts[1]}.{parts[2]}"] = value
        bundled = Path(inspect.getfile(tm_lpips)).parent / "lpips_models" / "alex.pth"
        linear = {k: v for k, v in _tensors(bundled, "LPIPS linear").items() if k.startswith("lin")}
        wanted = {
            k for k in self.net.state_dict() if k.startswith(("net.", "lin0", "lin1", "lin2", "lin3", "lin4"))
        }
        if set(features) | set(linear) != wanted:
            raise MissingLpipsWeightsError(
                f"{alexnet} is not torchvision's AlexNet ({ALEXNET_FILE}): its features do not fit LPIPS"
            )
        self.net.load_state_dict({**features, **linear}, strict=False)
        self.net.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        return self.net(fake.float(), real.float()).flatten()
