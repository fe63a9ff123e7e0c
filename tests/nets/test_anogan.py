"""AnoGAN / f-AnoGAN nets: shapes at several resolutions, D's features, spectral normalisation, and a
checkpoint round trip (the parametrised weights must load strictly)."""

import pytest
import torch
from torch import nn

from gandemo.checkpoint import arch_entry, load_checkpoint, save_checkpoint
from gandemo.nets.anogan import Discriminator, Encoder, Generator, levels


@pytest.mark.parametrize("size, channels", [(16, 1), (32, 3), (64, 3)])
def test_generator_discriminator_and_encoder_shapes(size: int, channels: int):
    torch.manual_seed(0)
    G = Generator(z_dim=8, ngf=4, channels=channels, image_size=size)
    D = Discriminator(ndf=4, channels=channels, image_size=size)
    E = Encoder(z_dim=8, nef=4, channels=channels, image_size=size)
    x = G(torch.randn(3, 8))
    assert x.shape == (3, channels, size, size) and x.min() >= -1 and x.max() <= 1
    assert D(x).shape == (3,)
    f = D.features(x)
    assert f.shape == (3, D.feature_channels, 4, 4)
    D.eval()  # in train mode every pass takes a power iteration, which moves the weights a little
    logit, f2 = D.logit_and_features(x)
    assert torch.allclose(logit, D(x)) and torch.allclose(f2, D.features(x))
    assert E(x).shape == (3, 8)


def test_widths_double_per_halving_up_to_the_cap():
    G = Generator(z_dim=8, ngf=4, image_size=128, max_mult=8)
    first = G.net[0]
    assert first.out_channels == 4 * 8  # 4x4 block at the capped width (2**4 = 16 > 8)
    D = Discriminator(ndf=4, image_size=128, max_mult=8)
    assert D.feature_channels == 4 * 8


@pytest.mark.parametrize("size", [8, 48, 0, -64])
def test_resolution_must_be_a_power_of_two_from_16(size: int):
    with pytest.raises(ValueError, match="power of two"):
        levels(size)
    with pytest.raises(ValueError):
        Generator(image_size=size)


def test_wrong_inputs_are_refused_in_words():
    G, D, E = Generator(z_dim=8, ngf=4, image_size=16), Discriminator(ndf=4, image_size=16), Encoder(8, 4, 3, 16)
    with pytest.raises(ValueError, match=r"z must have shape \(N, 8\)"):
        G(torch.randn(2, 9))
    with pytest.raises(ValueError, match=r"images must have shape \(N, 3, 16, 16\)"):
        D(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 16\)"):
        E(torch.randn(2, 1, 16, 16))


def test_the_discriminator_is_spectrally_normalised_and_has_no_batchnorm():
    torch.manual_seed(0)
    D = Discriminator(ndf=8, image_size=32)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    for _ in range(30):  # power iterations run in train mode
        D(torch.randn(2, 3, 32, 32))
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4  # three strided blocks (32 -> 4) and the head
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)


def test_features_of_an_image_do_not_depend_on_its_batch_in_eval_mode():
    torch.manual_seed(0)
    D, E = Discriminator(ndf=4, image_size=16).eval(), Encoder(8, 4, 3, 16).eval()
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(D.features(x)[1:2], D.features(x[1:2]), atol=1e-6)
        assert torch.allclose(E(x)[1:2], E(x[1:2]), atol=1e-6)


def test_a_checkpoint_round_trip_keeps_all_three_nets(tmp_path):
    torch.manual_seed(0)
    kw = {"channels": 1, "image_size": 16}
    models = {
        "G": Generator(z_dim=8, ngf=4, **kw).eval(),
        "D": Discriminator(ndf=4, **kw).eval(),
        "E": Encoder(z_dim=8, nef=4, **kw).eval(),
    }
    card = {
        "task": "anomaly",
        "variant": "magnetic_tile",
        "arch": {
            "G": arch_entry(models["G"], {"z_dim": 8, "ngf": 4, **kw}),
            "D": arch_entry(models["D"], {"ndf": 4, **kw}),
            "E": arch_entry(models["E"], {"z_dim": 8, "nef": 4, **kw}),
        },
    }
    save_checkpoint(tmp_path / "ck", models, card, storage_dtype=None)
    loaded = load_checkpoint(tmp_path / "ck")
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(loaded["G"](z), models["G"](z))
        assert torch.equal(loaded["D"].features(x), models["D"].features(x))
        assert torch.equal(loaded["E"](x), models["E"](x))
