import pytest
import torch
from torch import nn

from ganlab.nets.dcgan import Discriminator, Generator, pyramid


@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3), (64, 3), (64, 1), (16, 3)])
def test_shapes(size: int, channels: int) -> None:
    g = Generator(latent_dim=16, channels=channels, image_size=size, ngf=8)
    d = Discriminator(channels=channels, image_size=size, ndf=8)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, channels, size, size)
    assert d(x).shape == (3,)


def test_pyramid_depth() -> None:
    assert pyramid(28) == (7, 2)
    assert pyramid(32) == (4, 3)
    assert pyramid(64) == (4, 4)
    with pytest.raises(ValueError, match="image_size=30"):
        pyramid(30)


def test_64px_matches_the_reference_dcgan_size() -> None:
    # pytorch/examples dcgan at ngf=ndf=64, nz=100, nc=3: 3,576,704 and 2,765,568 parameters
    g, d = Generator(100, 3, 64, 64), Discriminator(3, 64, 64)
    assert sum(p.numel() for p in g.parameters()) == 3_576_704
    assert sum(p.numel() for p in d.parameters()) == 2_765_568


def test_dcgan_guidelines() -> None:
    g, d = Generator(channels=3, image_size=64), Discriminator(channels=3, image_size=64)
    forbidden = (nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
    for net in (g, d):
        assert not any(isinstance(m, forbidden) for m in net.modules())
    g_layers, d_layers = list(g.net), list(d.net)
    assert isinstance(g_layers[-1], nn.Tanh)
    assert all(
        isinstance(m, nn.ConvTranspose2d) for m in g_layers if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
    )
    assert any(isinstance(m, nn.ReLU) for m in g_layers)
    # D: strided convs; no BN right after the first conv; LeakyReLU(0.2) everywhere
    assert isinstance(d_layers[0], nn.Conv2d) and d_layers[0].stride == (2, 2)
    assert isinstance(d_layers[1], nn.LeakyReLU)
    assert all(m.negative_slope == 0.2 for m in d_layers if isinstance(m, nn.LeakyReLU))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d_layers) == 3
    assert not isinstance(g_layers[-2], nn.BatchNorm2d)  # no BN on G's output layer


def test_weights_drawn_from_n_0_002() -> None:
    torch.manual_seed(0)
    g = Generator(channels=3, image_size=64)
    weights = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert weights.mean().abs() < 1e-3
    assert weights.std().item() == pytest.approx(0.02, rel=0.02)
    bn = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert bn.mean().item() == pytest.approx(1.0, abs=0.01)
