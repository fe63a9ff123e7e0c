"""SRResNet and the SRGAN discriminator (Ledig et al., "Photo-Realistic Single Image Super-Resolution
Using a Generative Adversarial Network", CVPR 2017), for 4x upscaling, sized for the CPU.

The paper's generator (its Fig. 4), which `SRResNet` follows:
- a 9x9 head convolution to 64 channels and a PReLU;
- B residual blocks Conv3x3-BN-PReLU-Conv3x3-BN plus the block's input (B = 16 in the paper);
- Conv3x3-BN, plus the head's output (a long skip over all the blocks);
- two upsampling stages Conv3x3 (64 -> 256 channels)-PixelShuffle(2)-PReLU: each trades four
  channels for a 2x2 block of pixels (sub-pixel convolution, Shi et al. 2016), so every
  convolution before the last one runs at the low resolution;
- a 9x9 tail convolution to 3 channels.
Departures, each a constructor option recorded in the card:
- `bicubic_skip` adds the bicubic 4x enlargement of the input to the output, so the network only
  learns the detail bicubic misses (VDSR's global residual, Kim et al. 2016). A CPU run has
  ~0.3% of the paper's 10^6 updates, and starting from bicubic instead of from noise is what
  makes that budget useful. With it the tail starts near zero (scaled by 0.1);
- the upsampling convolutions start with ICNR weights (Aitken et al. 2017: the four sub-pixel
  kernels equal, i.e. a nearest-neighbour upsampling), which avoids checkerboard artefacts at
  initialisation;
- width and depth are options (the cpu preset's are smaller than 64 x 16).
The output is not squashed (no tanh): it is clamped to [-1, 1] when turned into pixels.

The discriminator (`SRDiscriminator`) is the paper's VGG-style network: a 3x3 convolution with
LeakyReLU(0.2), seven Conv3x3-BN-LeakyReLU blocks with widths ndf x (1, 2, 2, 4, 4, 8, 8) and
strides alternating 2, 1 (four halvings), then Dense(1024)-LeakyReLU-Dense(1), one logit per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SRResNet", "SRDiscriminator", "ResidualBlock", "UpsampleBlock", "icnr_"]


class ResidualBlock(nn.Module):
    """Conv3x3-BN-PReLU-Conv3x3-BN, plus the input."""

    def __init__(self, channels: int, batchnorm: bool = True) -> None:
        super().__init__()

        def norm() -> nn.Module:
            return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()

        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=not batchnorm),
            norm(),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=not batchnorm),
            norm(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def icnr_(weight: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """ICNR initialisation of a sub-pixel convolution's weight (out = c * factor^2, in, k, k) in place:
    the factor^2 kernels that become one output channel's pixel block are equal, so at the start the
    PixelShuffle upsampling is a nearest-neighbour one and no checkerboard pattern is built in."""
    out_channels = weight.shape[0] // factor**2
    base = torch.empty(out_channels, *weight.shape[1:])
    nn.init.kaiming_normal_(base, a=0.25, nonlinearity="leaky_relu")  # PReLU's initial slope
    with torch.no_grad():
        weight.copy_(base.repeat_interleave(factor**2, dim=0))
    return weight


class UpsampleBlock(nn.Module):
    """Conv3x3 (c -> 4c)-PixelShuffle(2)-PReLU: twice the resolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, 1, 1)
        icnr_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """low resolution (N, 3, h, w) in [-1, 1] -> 4x (N, 3, 4h, 4w), about [-1, 1], for any h, w >= 1.

    Fully convolutional with stride 1 at every scale, so an output pixel depends only on the
    input pixels within `receptive_radius` (low-resolution pixels) of it: tiles cut with that much
    context give exactly the untiled result (gandemo.tasks.superres.upscale_array). The paper's
    sizes (channels=64, blocks=16) have 1.55 M parameters."""

    scale = 4

    def __init__(
        self,
        channels: int = 64,
        blocks: int = 16,
        batchnorm: bool = True,
        bicubic_skip: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if blocks < 1 or channels < 1:
            raise ValueError(f"channels and blocks must be at least 1, got {channels} and {blocks}")
        self.in_channels, self.channels, self.blocks, self.bicubic_skip = in_channels, channels, blocks, bicubic_skip
        self.head = nn.Sequential(nn.Conv2d(in_channels, channels, 9, 1, 4), nn.PReLU())
        self.body = nn.Sequential(*(ResidualBlock(channels, batchnorm) for _ in range(blocks)))
        self.body_end = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=not batchnorm),
            nn.BatchNorm2d(channels) if batchnorm else nn.Identity(),
        )
        self.upsample = nn.Sequential(UpsampleBlock(channels), UpsampleBlock(channels))
        self.tail = nn.Conv2d(channels, in_channels, 9, 1, 4)
        if bicubic_skip:  # start close to plain bicubic: the network adds detail to it
            with torch.no_grad():
                self.tail.weight.mul_(0.1)
                self.tail.bias.zero_()

    @property
    def receptive_radius(self) -> int:
        """Low-resolution pixels of context on each side that an output pixel depends on: the
        head's 4, 2 per residual block, 1 for the closing conv, 1 for the first upsampling conv,
        1/2 for the second (at 2x) and 1 for the 9x9 tail (4 pixels at 4x), rounded up. The
        bicubic skip reaches 2 pixels, which is less."""
        return 4 + 2 * self.blocks + 1 + 1 + 1 + 1  # the last two: 1/2 and 4/4, rounded up together

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"input must have shape (N, {self.in_channels}, h, w), got {tuple(x.shape)}")
        head = self.head(x)
        y = self.tail(self.upsample(head + self.body_end(self.body(head))))
        if self.bicubic_skip:
            y = y + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return y


class SRDiscriminator(nn.Module):
    """(N, 3, S, S) high-resolution images -> (N, 1) real/fake logits; S = `image_size`, a multiple of 16.

    The paper's VGG-style discriminator: for 96x96 crops 23.6 M parameters at ndf=64 (the paper's),
    10.6 M at ndf=32, most of them in the first dense layer, whose size fixes the input size, as in
    the paper. It is used in training only; checkpoints hold the generator."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, image_size: int = 96, dense: int = 1024) -> None:
        super().__init__()
        if image_size % 16 or image_size < 16:
            raise ValueError(f"image_size must be a positive multiple of 16, got {image_size}")
        self.image_size = image_size
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)]
        widths = [ndf, ndf * 2, ndf * 2, ndf * 4, ndf * 4, ndf * 8, ndf * 8]
        strides = [2, 1, 2, 1, 2, 1, 2]
        cin = ndf
        for cout, stride in zip(widths, strides, strict=True):
            layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        side = image_size // 16
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(cin * side * side, dense), nn.LeakyReLU(0.2, inplace=True), nn.Linear(dense, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"input must have shape (N, C, {self.image_size}, {self.image_size}), got {tuple(x.shape)}"
            )
        return self.classifier(self.features(x))
