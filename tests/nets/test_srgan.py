"""SRResNet and the SRGAN discriminator: shapes, the receptive field tiling relies on, the bicubic
skip, ICNR, the paper's sizes."""

import pytest
import torch
import torch.nn.functional as F

from gandemo.nets.srgan import SRDiscriminator, SRResNet, UpsampleBlock


@pytest.mark.parametrize("h, w", [(1, 1), (7, 5), (24, 24), (13, 30)])
def test_the_generator_makes_exactly_four_times_the_size_for_any_size(h, w):
    G = SRResNet(channels=8, blocks=2).eval()
    with torch.no_grad():
        assert G(torch.zeros(2, 3, h, w)).shape == (2, 3, 4 * h, 4 * w)
    with pytest.raises(ValueError, match="shape"):
        G(torch.zeros(1, 1, 8, 8))


def test_the_papers_generator_has_its_size():
    assert sum(p.numel() for p in SRResNet().parameters()) == 1_547_350  # 64 channels, 16 blocks: ~1.5 M


@pytest.mark.parametrize("blocks, skip", [(1, False), (3, True)])
def test_an_output_pixel_depends_only_on_inputs_within_the_receptive_radius(blocks, skip):
    torch.manual_seed(0)
    G = SRResNet(channels=6, blocks=blocks, bicubic_skip=skip).eval()
    x = torch.rand(1, 3, 48, 48) * 2 - 1
    poked = x.clone()
    poked[0, :, 24, 24] += 1.0
    with torch.no_grad():
        changed = (G(poked) - G(x)).abs().sum(1)[0] > 0
    rows, cols = changed.nonzero().unbind(1)
    r = G.receptive_radius
    # input pixel 24 covers output pixels 96..99; its influence reaches r input pixels further
    assert 96 - 4 * r <= int(rows.min()) and int(rows.max()) <= 99 + 4 * r
    assert 96 - 4 * r <= int(cols.min()) and int(cols.max()) <= 99 + 4 * r
    assert int(rows.max()) - int(rows.min()) > 4 * (2 * r - 2)  # and the radius is not loose


def test_the_bicubic_skip_adds_the_bicubic_enlargement():
    G = SRResNet(channels=4, blocks=1, bicubic_skip=True).eval()
    x = torch.rand(1, 3, 9, 11) * 2 - 1
    with torch.no_grad():
        G.tail.weight.zero_()  # the network's own part now adds nothing
        bicubic = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
        assert torch.allclose(G(x), bicubic, atol=1e-6)
    fresh = SRResNet(channels=4, blocks=1, bicubic_skip=True)
    plain = SRResNet(channels=4, blocks=1)
    assert fresh.tail.weight.abs().mean() < 0.2 * plain.tail.weight.abs().mean()  # starts near bicubic


def test_icnr_makes_the_subpixel_upsampling_start_as_nearest_neighbour():
    torch.manual_seed(0)
    up = UpsampleBlock(5)
    x = torch.randn(1, 5, 6, 7)
    with torch.no_grad():
        y = up.shuffle(up.conv(x))  # before the activation
    blocks = y.unfold(2, 2, 2).unfold(3, 2, 2)  # (1, 5, 6, 7, 2, 2): each 2x2 output block
    assert torch.allclose(blocks, blocks[..., :1, :1].expand_as(blocks), atol=1e-6)


def test_the_discriminator_gives_one_logit_per_image_of_its_size():
    D = SRDiscriminator(ndf=8, image_size=32)
    assert D(torch.zeros(3, 3, 32, 32)).shape == (3, 1)
    with pytest.raises(ValueError, match="32, 32"):
        D(torch.zeros(1, 3, 48, 48))
    with pytest.raises(ValueError, match="multiple of 16"):
        SRDiscriminator(image_size=40)
    assert sum(p.numel() for p in SRDiscriminator().parameters()) == 23_563_649  # the paper's, for 96x96
