import numpy as np
import pytest
import torch
from torch import nn

from gandemo.nets.pix2pix import PatchDiscriminator, TrainingDropout, UNetGenerator

TINY = {"ngf": 4, "max_mult": 2}


def test_unet_maps_128px_and_64px_edges_to_photos_of_the_same_size():
    G7 = UNetGenerator(depth=7, **TINY).eval()
    y = G7(torch.randn(2, 3, 128, 128))
    assert y.shape == (2, 3, 128, 128)
    assert y.min() >= -1 and y.max() <= 1 and y.std() > 0
    G6 = UNetGenerator(depth=6, **TINY).eval()  # 64 -> 1x1 bottleneck; 128 -> 2x2
    assert G6(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    assert G6(torch.randn(1, 3, 128, 128)).shape == (1, 3, 128, 128)
    assert UNetGenerator(in_channels=1, out_channels=3, depth=6, **TINY).eval()(torch.randn(1, 1, 64, 64)).shape == (
        1,
        3,
        64,
        64,
    )


def test_unet_rejects_sizes_and_channels_it_cannot_take():
    G = UNetGenerator(depth=7, **TINY)
    with pytest.raises(ValueError, match="multiples of 2\\*\\*depth = 128"):
        G(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        G(torch.randn(1, 1, 128, 128))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        G(torch.randn(3, 128, 128))


def test_skip_connections_carry_the_input_past_a_silenced_bottleneck():
    """With the innermost block's output forced to zero, the output still follows the input,
    and a change in one corner changes the output there more than in the opposite corner."""
    torch.manual_seed(0)
    G = UNetGenerator(depth=6, **TINY).eval()
    G.down[-1].register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    x = torch.randn(1, 3, 64, 64)
    x2 = x.clone()
    x2[:, :, :8, :8] += 2.0
    with torch.no_grad():
        d = (G(x2) - G(x)).abs()
    assert d.sum() > 0
    assert d[:, :, :16, :16].mean() > 10 * d[:, :, -16:, -16:].mean()


def test_unet_follows_pix2pix_block_rules():
    G = UNetGenerator(depth=7, ngf=8, max_mult=4)
    first, inner = G.down[0], G.down[-1]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in first) and isinstance(first[-1], nn.LeakyReLU)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in inner)  # BN on a 1x1 map: batch statistics only
    assert all(isinstance(b[1], nn.BatchNorm2d) for b in G.down[1:-1])
    assert [b[-1].negative_slope for b in G.down] == [0.2] * 7
    # the decoder: ConvTranspose-BN-(Dropout)-ReLU; dropout 0.5 in the first three (innermost) blocks
    assert all(isinstance(b[0], nn.ConvTranspose2d) and isinstance(b[1], nn.BatchNorm2d) for b in G.up)
    drops = [any(isinstance(m, nn.Dropout) for m in b) for b in G.up]
    assert drops == [True, True, True, False, False, False]
    assert all(m.p == 0.5 for m in G.modules() if isinstance(m, nn.Dropout))
    assert isinstance(G.out[-1], nn.Tanh)
    # widths double to the cap: 8, 16, 32, 32, ...; decoder blocks after the first take skip + upsampled
    assert [b[0].out_channels for b in G.down] == [8, 16, 32, 32, 32, 32, 32]
    assert [b[0].in_channels for b in G.up] == [32, 64, 64, 64, 64, 32]
    std = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.Conv2d)]).std()
    assert 0.015 < std < 0.025  # N(0, 0.02)


def test_default_unet_is_cpu_sized():
    G = UNetGenerator()
    n = sum(p.numel() for p in G.parameters())
    assert 2_000_000 < n < 4_000_000
    fp16_mb = sum(t.numel() for t in G.state_dict().values() if t.is_floating_point()) * 2 / 1e6
    assert fp16_mb < 8
    assert sum(p.numel() for p in UNetGenerator(ngf=64, max_mult=8).parameters()) > 40_000_000  # the paper's


def test_dropout_acts_only_in_a_training_step():
    torch.manual_seed(0)
    G = UNetGenerator(depth=6, **TINY).train()
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():  # BN recalibration runs like this: train mode, no gradients
        assert torch.equal(G(x), G(x))
    assert not torch.equal(G(x), G(x))  # with gradients: dropout draws new masks
    drop = TrainingDropout(0.5)
    assert drop.state_dict() == {} and torch.equal(drop.eval()(x), x)


def test_patch_discriminator_gives_a_grid_of_logits_for_a_pair():
    D = PatchDiscriminator(ndf=8)
    edges, photo = torch.randn(2, 3, 128, 128), torch.randn(2, 3, 128, 128)
    out = D(edges, photo)
    assert out.shape == (2, 1, 14, 14) == (2, 1, D.output_size(128), D.output_size(128))
    assert D(edges[:, :, :64, :64], photo[:, :, :64, :64]).shape == (2, 1, 6, 6)
    assert isinstance(D.net[1], nn.LeakyReLU)  # no BN after the input conv
    assert PatchDiscriminator(ndf=8, layers=2).receptive_field == 34


def test_each_logit_sees_a_70x70_window():
    D = PatchDiscriminator(ndf=4).eval()
    assert D.receptive_field == 70
    edges = torch.randn(1, 3, 128, 128, requires_grad=True)
    photo = torch.randn(1, 3, 128, 128, requires_grad=True)
    D(edges, photo)[0, 0, 7, 7].backward()  # a logit in the middle: its window lies inside the image
    for x in (edges, photo):
        seen = x.grad.abs().sum(dim=(0, 1)) > 0
        rows, cols = seen.any(1).nonzero(), seen.any(0).nonzero()
        assert int(rows.max() - rows.min() + 1) == 70 and int(cols.max() - cols.min() + 1) == 70


def test_patch_discriminator_rejects_mismatched_pairs():
    D = PatchDiscriminator(ndf=4)
    x = torch.randn(2, 3, 64, 64)
    with pytest.raises(ValueError, match="same batch and size"):
        D(x, torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="add up to 6"):
        D(x, torch.randn(2, 1, 64, 64))
    with pytest.raises(ValueError, match="too small"):
        D(x[:, :, :16, :16], x[:, :, :16, :16])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        D(x[0], x[0])


def test_gradients_reach_the_generator_through_the_discriminator():
    G, D = UNetGenerator(depth=6, **TINY), PatchDiscriminator(ndf=4)
    edges = torch.randn(2, 3, 64, 64)
    D(edges, G(edges)).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())


def test_resize_then_convolve_decoder_is_an_option_and_the_default_is_unchanged():
    """The default keeps the transposed convolutions and their state_dict names (shipped edges and
    anomaly cards list no `upsample`); "resize" / "bilinear" double by resizing and a 3x3 conv."""
    old = UNetGenerator(ngf=4, max_mult=2)
    assert old.upsample == "transposed"
    assert any(isinstance(m, nn.ConvTranspose2d) for m in old.modules())
    new = UNetGenerator(ngf=4, max_mult=2, upsample="bilinear")
    assert new.state_dict().keys() == UNetGenerator(ngf=4, max_mult=2, upsample="resize").state_dict().keys()
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in new.modules())
    assert sum(isinstance(m, nn.Upsample) for m in new.modules()) == 7  # one per doubling, 1 -> 128
    assert new(torch.zeros(2, 3, 128, 128)).shape == (2, 3, 128, 128)
    assert sum(p.numel() for p in UNetGenerator(upsample="resize").parameters()) == 2_434_723
    with pytest.raises(ValueError, match="upsample must be one of"):
        UNetGenerator(upsample="bicubic")


def test_a_resize_decoder_prints_no_checkerboard_on_a_constant_input():
    """Untrained, on a flat input: a transposed convolution's 4 output phases get different kernel
    taps, so its output has a period-2 pattern; resize-then-convolve gives every pixel the same taps."""
    from gandemo import metrics

    torch.manual_seed(0)
    x = torch.ones(1, 3, 128, 128)  # blank white paper (zeros would leave every zero-bias layer at 0)
    for upsample, expect_pattern in (("transposed", True), ("resize", False), ("bilinear", False)):
        G = UNetGenerator(ngf=8, max_mult=2, upsample=upsample).eval()
        with torch.no_grad():
            y = ((G(x)[0].permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.float64)
        # away from the border (zero padding differs there): the 2x2 phase means of the inner 96x96
        inner = y[16:112, 16:112]
        score = float(metrics.checkerboard(inner[None])[0])
        assert (score > 0.05) == expect_pattern, (upsample, score)  # measured: 0.29 and 1e-7 grey levels


def test_a_blurred_discriminator_loads_unblurred_weights_and_sends_no_pi_pi_gradient():
    """blur=True low-passes the input of each strided conv with a fixed binomial filter: no new
    weights (a D saved without it loads), a wider window, the same logits' grid; and the gradient
    it sends to the image has no (pi, pi) component, where a strided conv's gradient has one."""
    plain, blurred = PatchDiscriminator(ndf=4), PatchDiscriminator(ndf=4, blur=True)
    assert not PatchDiscriminator(ndf=4).blur  # default: today's D (the anomaly inpainter's critic)
    blurred.load_state_dict(plain.state_dict())
    assert blurred.state_dict().keys() == plain.state_dict().keys()
    assert (plain.receptive_field, blurred.receptive_field) == (70, 84)
    torch.manual_seed(0)
    cond = torch.rand(4, 3, 128, 128)
    powers = []
    for D in (plain, blurred):
        image = torch.rand(4, 3, 128, 128).requires_grad_(True)
        out = D(cond, image)
        assert out.shape == (4, 1, 14, 14)
        out.mean().backward()
        g = image.grad.sum(1).numpy()
        power = (np.abs(np.fft.fft2(g - g.mean(axis=(1, 2), keepdims=True))) ** 2).mean(0)
        powers.append(power[64, 64] / power.mean())
    assert powers[0] > 0.05 and powers[1] < 1e-4 * powers[0]
