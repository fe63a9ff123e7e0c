"""AnoGAN (Schlegl et al., "Unsupervised Anomaly Detection with Generative Adversarial Networks to
Guide Marker Discovery", IPMI 2017) and f-AnoGAN (Schlegl et al., "f-AnoGAN: Fast unsupervised
anomaly detection with generative adversarial networks", Medical Image Analysis 2019): a DCGAN
generator and discriminator trained on normal images only, and an encoder that maps an image to
the generator's latent space in one pass (f-AnoGAN's izi_f training).

The DCGAN rules (see `gandemo.nets.dcgan`) at any power-of-two resolution from 16 up: z is a 1x1
"image" that transposed convolutions double until `image_size`; the discriminator and the encoder
halve the image with strided convolutions down to 4x4, then one 4x4 convolution gives D's logit or
E's latent vector. Widths double per halving from `ngf`/`ndf`/`nef`, capped at x `max_mult`.
Weights drawn from N(0, 0.02).

Departure, and why: D has no BatchNorm but spectral normalisation on every convolution (Miyato et
al., ICLR 2018). AnoGAN uses D's last hidden layer as a fixed feature extractor at test time
(`Discriminator.features`). With BatchNorm, D in eval mode would normalise with running statistics
that mix real and generated batches, so its test-time features would differ from the ones it
learnt; spectral normalisation has no batch dependence and also steadies training on the few
hundred images a category has. G and E keep DCGAN's BatchNorm (used in eval mode).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gandemo.nets.dcgan import init_weights

__all__ = ["Generator", "Discriminator", "Encoder", "ResidualStats", "levels"]


def levels(image_size: int) -> int:
    """Doublings between 4x4 and `image_size` (a power of two, at least 16): 64 -> 4, 128 -> 5."""
    n = int(math.log2(image_size)) if image_size > 0 else 0
    if image_size < 16 or 2**n != image_size:
        raise ValueError(f"image_size must be a power of two of at least 16, got {image_size}")
    return n - 2


def _width(base: int, level: int, max_mult: int) -> int:
    return base * min(2**level, max_mult)


def _sn_conv(cin: int, cout: int, kernel: int, stride: int, pad: int) -> nn.Module:
    """A spectrally normalised convolution, initialised N(0, 0.02) before the parametrisation
    takes over its weight (afterwards `.weight` is computed, and initialising it would be lost)."""
    conv = nn.Conv2d(cin, cout, kernel, stride, pad)
    init_weights(conv)
    return spectral_norm(conv)


class Generator(nn.Module):
    """z (N, z_dim) ~ N(0, 1) -> image (N, channels, image_size, image_size) in [-1, 1].

    image_size 64, ngf 64, max_mult 8 is the paper's DCGAN generator (`gandemo.nets.dcgan`)."""

    def __init__(
        self, z_dim: int = 100, ngf: int = 64, channels: int = 3, image_size: int = 64, max_mult: int = 8
    ) -> None:
        super().__init__()
        self.z_dim, self.channels, self.image_size = z_dim, channels, image_size
        n = levels(image_size)
        widths = [_width(ngf, i, max_mult) for i in reversed(range(n))]  # at 4x4, 8x8, ... image_size/2
        layers: list[nn.Module] = []
        cin = z_dim
        for i, cout in enumerate(widths):
            stride, pad = (1, 0) if i == 0 else (2, 1)  # 1x1 -> 4x4, then doubling
            layers += [nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
            cin = cout
        layers += [nn.ConvTranspose2d(cin, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])


def _check_image(x: torch.Tensor, channels: int, image_size: int) -> None:
    if x.dim() != 4 or x.shape[1:] != (channels, image_size, image_size):
        raise ValueError(f"images must have shape (N, {channels}, {image_size}, {image_size}), got {tuple(x.shape)}")


class Discriminator(nn.Module):
    """image (N, channels, S, S) -> one real/fake logit per image, shape (N,); `features(x)` is the
    last hidden layer (N, C, 4, 4), AnoGAN's feature-matching representation f(x)."""

    def __init__(self, ndf: int = 64, channels: int = 3, image_size: int = 64, max_mult: int = 8) -> None:
        super().__init__()
        self.channels, self.image_size = channels, image_size
        n = levels(image_size)
        layers: list[nn.Module] = []
        cin = channels
        for i in range(n):  # image_size -> 4
            cout = _width(ndf, i, max_mult)
            layers += [_sn_conv(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.feature_channels = cin
        self.head = _sn_conv(cin, 1, 4, 1, 0)  # 4 -> 1: the logit

    def features(self, x: torch.Tensor) -> torch.Tensor:
        _check_image(x, self.channels, self.image_size)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten()

    def logit_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both at the price of one pass (training's G step and the anomaly score use both)."""
        f = self.features(x)
        return self.head(f).flatten(), f


class Encoder(nn.Module):
    """image (N, channels, S, S) -> z (N, z_dim): f-AnoGAN's encoder E, trained so that G(E(x)) = x
    (izi_f). D's layout with BatchNorm (as DCGAN's D, none on the input layer), ending in a 4x4
    convolution to z_dim linear outputs (z is Gaussian here, so no tanh)."""

    def __init__(
        self, z_dim: int = 100, nef: int = 64, channels: int = 3, image_size: int = 64, max_mult: int = 8
    ) -> None:
        super().__init__()
        self.z_dim, self.channels, self.image_size = z_dim, channels, image_size
        n = levels(image_size)
        layers: list[nn.Module] = []
        cin = channels
        for i in range(n):
            cout = _width(nef, i, max_mult)
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0))
            if i:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, True))
            cin = cout
        layers.append(nn.Conv2d(cin, z_dim, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image(x, self.channels, self.image_size)
        return self.net(x).flatten(1)


class ResidualStats(nn.Module):
    """Per-pixel mean and spread over normal training images, (1, channels, S, S) each: of a detector's
    heatmap (channels 1: z = (heat - mean) / std takes out the residual that normal images have anyway,
    a transistor's lead edges, a plate's rim, so what is left is what differs from normal), or of the
    images themselves (channels 3: the trivial baseline's statistics). A module, not card data, so the
    checkpoint stores its numbers with the weights (buffers; nothing to train)."""

    def __init__(self, size: int = 128, channels: int = 1) -> None:
        super().__init__()
        self.size, self.channels = size, channels
        self.register_buffer("mean", torch.zeros(1, channels, size, size))
        self.register_buffer("std", torch.ones(1, channels, size, size))

    def fit(self, x: torch.Tensor, floor: float = 0.01) -> ResidualStats:
        """Set mean and std from normal samples, (N, S, S) heatmaps or (N, C, S, S) images; std gets `floor`
        added (0-1 units) so that a pixel that never varied does not turn the smallest residual into a huge
        z-score."""
        x = x[:, None] if x.dim() == 3 else x
        if x.shape[1:] != (self.channels, self.size, self.size) or len(x) < 2:
            raise ValueError(
                f"need at least two samples of shape ({self.channels}, {self.size}, {self.size}), got {tuple(x.shape)}"
            )
        x = x.float()
        self.mean.copy_(x.mean(0, keepdim=True))
        self.std.copy_(x.std(0, keepdim=True) + floor)
        return self

    def forward(self, heat: torch.Tensor) -> torch.Tensor:
        """(N, S, S) heatmaps -> their per-pixel z-scores (channels 1)."""
        return (heat - self.mean[:, 0]) / self.std[:, 0]
