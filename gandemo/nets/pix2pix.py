"""Pix2Pix (Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017): a U-Net generator and a PatchGAN discriminator, sized for 128x128 on the CPU.

The paper's architecture rules, which both classes follow:
- encoder blocks Conv(4, 2, 1)-BatchNorm-LeakyReLU(0.2), no BN on the first block; decoder blocks
  ConvTranspose(4, 2, 1)-BatchNorm-ReLU, with Dropout(0.5) in the first three (innermost) decoder
  blocks; the last decoder block has no BN and ends in Tanh;
- skip connections: decoder block i also sees the output of its mirrored encoder block (channel
  concatenation), so the input's fine structure (here: where the edges are) reaches the output
  without squeezing through the bottleneck;
- D is a PatchGAN on the (condition, image) pair concatenated on channels: strided Conv(4)-BN-
  LeakyReLU blocks (no BN on the first), then two stride-1 Conv(4) layers, one logit per patch;
- weights drawn from N(0, 0.02) (the DCGAN initialisation, `gandemo.nets.dcgan.init_weights`).
Departures: the innermost (1x1) encoder block has no BN either, as in the pix2pix code (BN on a
1x1 map normalises over the batch alone and fails in train mode at batch 1); channel widths are
capped at `ngf * max_mult` (the paper: 64 * 8 = 512) so the CPU model stays a few MB; and dropout
is active only while a gradient is being taken (see `TrainingDropout`). Optionally the decoder
doubles the size by resizing followed by a 3x3 convolution instead of a transposed convolution
(Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016): a 4x4 stride-2
transposed convolution gives the output pixels of the four 2x2 phases different kernel taps, which
prints a period-2 checkerboard even on flat areas. `upsample="resize"` resizes by nearest neighbour
(Odena et al.'s choice), `"bilinear"` bilinearly. Measured on edges2photo (held-out outputs,
`gandemo.metrics.nyquist_spike`, real photos 0.94): nearest resizing still printed a period-2
pattern once trained (2.06 at step 2,000, the transposed model 1.96), because a nearest-neighbour
staircase has Nyquist content wherever the features change and the last 3x3 convolution passes it
on; the same weights with the last resize made bilinear gave 0.96. So "bilinear" is the one to use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gandemo.nets.dcgan import init_weights

__all__ = ["UNetGenerator", "PatchDiscriminator", "TrainingDropout"]


class TrainingDropout(nn.Dropout):
    """Dropout that acts only in train mode *with gradients enabled*, i.e. during an optimisation
    step. The paper uses dropout as G's noise source and keeps it on at test time; this project
    runs G in eval mode (deterministic, batch-independent outputs) with BatchNorm statistics
    re-estimated for the EMA weights, and that re-estimation runs in train mode under no_grad. With
    plain dropout it would measure the statistics of dropped-out activations, whose variance is
    larger than at inference (the "variance shift" of dropout before BN); this one sees exactly
    the activations inference sees. No parameters, so the state_dict is that of nn.Dropout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, self.training and torch.is_grad_enabled(), self.inplace)


class UNetGenerator(nn.Module):
    """edges (N, in_channels, H, W) in [-1, 1] -> photo (N, out_channels, H, W) in [-1, 1].

    H and W must be multiples of 2**depth (depth 7: 128 -> 1 at the bottleneck, pix2pix's
    `unet_128`). Encoder widths ngf * (1, 2, 4, 8, 8, ...), capped at ngf * max_mult; the decoder
    mirrors them. The defaults (ngf=32, depth=7, max_mult=4) have 3,382,243 parameters, 6.8 MB as
    fp16 in a checkpoint (the paper's ngf=64, max_mult=8 at depth 7 has 41.8 M).

    `upsample`: "transposed" (the paper's ConvTranspose(4, 2, 1); the default, so cards written
    before the option existed load unchanged), "resize" (nearest x2, then Conv(3, 1, 1)) or
    "bilinear" (bilinear x2, then Conv(3, 1, 1)); both resizing kinds have 2,434,723 parameters at the
    defaults and about 2x the decoder's multiply-adds, and the same state_dict names."""

    UPSAMPLE = ("transposed", "resize", "bilinear")

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 32,
        depth: int = 7,
        max_mult: int = 4,
        dropout: float = 0.5,
        dropout_layers: int = 3,
        upsample: str = "transposed",
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        if upsample not in self.UPSAMPLE:
            raise ValueError(f"upsample must be one of {', '.join(self.UPSAMPLE)}, got {upsample!r}")
        self.upsample = upsample
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        widths = [ngf * min(2**i, max_mult) for i in range(depth)]  # encoder block i's output channels

        self.down = nn.ModuleList()
        for i, cout in enumerate(widths):
            cin = in_channels if i == 0 else widths[i - 1]
            bn = 0 < i < depth - 1  # none on the first (input) and the innermost (1x1) block
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not bn)]
            if bn:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            self.down.append(nn.Sequential(*layers))

        # up[j] undoes down[depth - 1 - j]; from j = 1 on it also takes that block's skip input
        self.up = nn.ModuleList()
        for j in range(depth - 1):
            i = depth - 1 - j  # the encoder block this decoder block mirrors
            cin = widths[i] if j == 0 else 2 * widths[i]
            cout = widths[i - 1]
            layers = [*self._double(cin, cout, bias=False), nn.BatchNorm2d(cout)]
            if j < dropout_layers and dropout > 0:
                layers.append(TrainingDropout(dropout))
            layers.append(nn.ReLU(inplace=True))
            self.up.append(nn.Sequential(*layers))
        self.out = nn.Sequential(*self._double(2 * widths[0], out_channels, bias=True), nn.Tanh())
        self.apply(init_weights)

    def _double(self, cin: int, cout: int, bias: bool) -> list[nn.Module]:
        """The layers that double the size: one transposed convolution, or resize then convolve."""
        if self.upsample in ("resize", "bilinear"):
            mode = "nearest" if self.upsample == "resize" else "bilinear"
            return [nn.Upsample(scale_factor=2, mode=mode), nn.Conv2d(cin, cout, 3, 1, 1, bias=bias)]
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=bias)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step = 2**self.depth
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"input must have shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if x.shape[2] % step or x.shape[3] % step:
            raise ValueError(
                f"height and width must be multiples of 2**depth = {step} (depth {self.depth}), "
                f"got {x.shape[2]}x{x.shape[3]}"
            )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[0](skips.pop())
        for block in self.up[1:]:
            x = block(torch.cat([x, skips.pop()], dim=1))
        return self.out(torch.cat([x, skips.pop()], dim=1))


class PatchDiscriminator(nn.Module):
    """(condition, image) pair -> one real/fake logit per patch, shape (N, 1, P, P).

    `layers` stride-2 Conv(4) blocks (widths ndf * (1, 2, 4, 8), capped at 8), one stride-1
    Conv(4)-BN-LeakyReLU and a stride-1 Conv(4) to the logit: pix2pix's `n_layers` design. With
    layers=3 each logit sees a 70x70 window of the input (`receptive_field`); at 128x128 the output
    is 14x14 logits whose windows overlap (stride 8), each covering 70/128 = 55% of the side, so
    the windows near the border hang over it and see zero padding there. layers=2 gives 34x34.

    `blur=True` low-passes the input of every stride-2 convolution with a fixed 3x3 binomial filter
    ([1, 2, 1] x [1, 2, 1] / 16; anti-aliased downsampling, as StyleGAN2's D and Zhang's BlurPool).
    Why: the gradient a strided convolution sends back to its input is a transposed convolution of
    stride 2, i.e. it carries a period-2 pattern, and G learns to print it (measured on edges2photo:
    the same G trained on L1 alone has no Nyquist spike, 0.99; with this D it had 1.46). The binomial
    filter's response is 0 at the Nyquist frequency, so that pattern no longer reaches G. The filter
    is a constant, not a parameter or buffer in the state_dict: a D saved without it loads with it.
    Default False: today's D (the anomaly inpainter's critic) is unchanged."""

    def __init__(self, in_channels: int = 6, ndf: int = 64, layers: int = 3, blur: bool = False) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be at least 1, got {layers}")
        self.in_channels, self.layers, self.blur = in_channels, layers, blur
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        cout = ndf
        for n in range(1, layers + 1):  # the last of these keeps the resolution (stride 1)
            cin, cout = cout, ndf * min(2**n, 8)
            stride = 2 if n < layers else 1
            blocks += [
                nn.Conv2d(cin, cout, 4, stride, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        blocks.append(nn.Conv2d(cout, 1, 4, 1, 1))
        self.net = nn.Sequential(*blocks)
        self.apply(init_weights)

    @property
    def receptive_field(self) -> int:
        """Side of the input window one logit depends on: r <- (r - 1) * stride + kernel, from the top
        (a blur before a strided convolution widens its kernel by 2)."""
        r = 1
        for m in reversed([m for m in self.net if isinstance(m, nn.Conv2d)]):
            r = (r - 1) * m.stride[0] + m.kernel_size[0] + (2 if self.blur and m.stride[0] > 1 else 0)
        return r

    def output_size(self, size: int) -> int:
        """Logits per side for an input `size` pixels wide."""
        for m in self.net:
            if isinstance(m, nn.Conv2d):
                size = (size + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
        return size

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if condition.dim() != 4 or image.dim() != 4:
            raise ValueError(
                f"condition and image must be (N, C, H, W), got {tuple(condition.shape)} and {tuple(image.shape)}"
            )
        if condition.shape[0] != image.shape[0] or condition.shape[2:] != image.shape[2:]:
            raise ValueError(
                f"condition and image must have the same batch and size, got {tuple(condition.shape)} "
                f"and {tuple(image.shape)}"
            )
        if condition.shape[1] + image.shape[1] != self.in_channels:
            raise ValueError(
                f"condition and image channels must add up to {self.in_channels}, "
                f"got {condition.shape[1]} + {image.shape[1]}"
            )
        if min(self.output_size(condition.shape[2]), self.output_size(condition.shape[3])) < 1:
            raise ValueError(
                f"the input {condition.shape[2]}x{condition.shape[3]} is too small for {self.layers} layers"
            )
        x = torch.cat([condition, image], dim=1)
        if not self.blur:
            return self.net(x)
        for m in self.net:
            if isinstance(m, nn.Conv2d) and m.stride[0] > 1:
                x = binomial_blur(x)
            x = m(x)
        return x


def binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """Each channel convolved with [1, 2, 1] x [1, 2, 1] / 16 (same size, zero padding like the
    convolutions after it): a low-pass whose response is 0 at the Nyquist frequency."""
    k = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    k = (k[:, None] * k[None, :] / 16).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(x, k.contiguous(), padding=1, groups=x.shape[1])
