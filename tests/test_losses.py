import math

import pytest
import torch

from ganlab import losses
from ganlab.errors import ConfigError

REAL = torch.tensor([0.0, 2.0])  # D logits on real samples
FAKE = torch.tensor([-1.0, 1.0])  # D logits on generated samples


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_d_minimax_is_binary_cross_entropy() -> None:
    expected = mean([-math.log(sigmoid(r)) for r in REAL.tolist()]) + mean(
        [-math.log(1 - sigmoid(f)) for f in FAKE.tolist()]
    )
    assert losses.d_minimax(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_d_minimax_one_sided_label_smoothing_targets_real_only() -> None:
    t = 0.9
    expected = mean(
        [-(t * math.log(sigmoid(r)) + (1 - t) * math.log(1 - sigmoid(r))) for r in REAL.tolist()]
    ) + mean([-math.log(1 - sigmoid(f)) for f in FAKE.tolist()])
    assert losses.d_minimax(REAL, FAKE, real_label=t).item() == pytest.approx(expected, rel=1e-6)


def test_g_minimax_and_non_saturating_values() -> None:
    assert losses.g_minimax(FAKE).item() == pytest.approx(
        mean([math.log(1 - sigmoid(f)) for f in FAKE.tolist()]), rel=1e-6
    )
    assert losses.g_non_saturating(FAKE).item() == pytest.approx(
        mean([-math.log(sigmoid(f)) for f in FAKE.tolist()]), rel=1e-6
    )


def test_minimax_generator_gradient_saturates_where_non_saturating_does_not() -> None:
    # early in training D rejects fakes confidently: D(G(z)) ≈ σ(−8)
    for name, expect_small in (("minimax", True), ("non_saturating", False)):
        logit = torch.tensor([-8.0], requires_grad=True)
        losses.LOSSES[name].g(logit).backward()
        grad = abs(logit.grad.item())
        assert (grad < 1e-3) == expect_small, (name, grad)


def test_least_squares_values() -> None:
    d = 0.5 * mean([(r - 1) ** 2 for r in REAL.tolist()]) + 0.5 * mean([f**2 for f in FAKE.tolist()])
    assert losses.d_least_squares(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    g = mean([(f - 1) ** 2 for f in FAKE.tolist()])
    assert losses.g_least_squares(FAKE).item() == pytest.approx(g, rel=1e-6)


def test_hinge_values() -> None:
    d = mean([max(0.0, 1 - r) for r in REAL.tolist()]) + mean([max(0.0, 1 + f) for f in FAKE.tolist()])
    assert losses.d_hinge(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert losses.g_hinge(FAKE).item() == pytest.approx(-mean(FAKE.tolist()), rel=1e-6)


def test_every_config_name_resolves_and_unknown_names_list_the_choices() -> None:
    for name in ("minimax", "non_saturating", "least_squares", "hinge"):
        assert losses.get_loss(name) is losses.LOSSES[name]
    with pytest.raises(ConfigError, match=r"model\.loss=wgan.*non_saturating"):
        losses.get_loss("wgan")


def test_cycle_and_identity_are_mean_absolute_error() -> None:
    a = torch.tensor([[0.5, -1.0], [0.0, 1.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, -1.0]])
    assert losses.cycle_l1(a, b).item() == pytest.approx((0.5 + 1.0 + 0.0 + 2.0) / 4)
    assert losses.identity_l1(b, a).item() == pytest.approx((0.5 + 1.0 + 0.0 + 2.0) / 4)
