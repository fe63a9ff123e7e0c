import pytest
import torch
from torch import nn

from gandemo.nets.dcgan import Discriminator, Generator


def test_generator_makes_64px_rgb_in_tanh_range():
    G = Generator(ngf=8).eval()
    x = G(torch.randn(5, 100))
    assert x.shape == (5, 3, 64, 64)
    assert x.min() >= -1 and x.max() <= 1
    assert x.std() > 0  # not a constant picture


def test_discriminator_gives_one_logit_per_image():
    D = Discriminator(ndf=8)
    out = D(torch.randn(7, 3, 64, 64))
    assert out.shape == (7,)
    assert torch.isfinite(out).all()


def test_generator_rejects_wrong_latent_shape():
    with pytest.raises(ValueError, match=r"\(N, 100\)"):
        Generator(ngf=8)(torch.randn(2, 64))


def test_architecture_follows_the_dcgan_rules():
    G, D = Generator(ngf=8), Discriminator(ndf=8)
    for net in (G, D):
        kinds = {type(m) for m in net.modules()}
        assert nn.Linear not in kinds, "no fully connected hidden layers"
        assert not any(issubclass(k, (nn.MaxPool2d, nn.AvgPool2d)) for k in kinds), "no pooling"
    assert isinstance(G.net[-1], nn.Tanh) and any(isinstance(m, nn.ReLU) for m in G.modules())
    assert any(isinstance(m, nn.LeakyReLU) for m in D.modules())
    # D: no batch norm right after the input conv
    assert isinstance(D.net[1], nn.LeakyReLU)
    # weights ~ N(0, 0.02)
    std = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]).std()
    assert 0.015 < std < 0.025


def test_gradients_reach_the_generator_through_the_discriminator():
    G, D = Generator(ngf=8), Discriminator(ndf=8)
    D(G(torch.randn(4, 100))).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
