"""DCGAN (Radford, Metz & Chintala, 2016) for 64x64 RGB images.

The paper's architecture rules, which both classes follow:
- no pooling: strided convolutions in D, fractionally-strided (transposed) convolutions in G;
- batch norm in G (all layers but the output) and in D (all layers but the input and output);
- ReLU in G with Tanh at the output; LeakyReLU(0.2) in D;
- no fully connected hidden layers: z is reshaped to a 1x1 "image", D ends in a 4x4 conv to one logit;
- weights drawn from N(0, 0.02).

D may instead be normalised by spectral norm (Miyato et al. 2018, `norm="spectral"`: every convolution's
weight divided by its largest singular value, no batch norm), or not at all (`norm="none"`, for R1,
whose per-image gradient a batch-normalised D would mix across the batch). The default is the paper's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["Generator", "Discriminator", "init_weights", "D_NORMS"]

D_NORMS = ("batch", "spectral", "none")


def init_weights(
    module: nn.Module,
    layers: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.ConvTranspose2d),
    norms: tuple[type[nn.Module], ...] = (nn.BatchNorm2d,),
) -> None:
    """The paper's initialisation: weights of `layers` ~ N(0, 0.02) and their biases 0, BN scale
    ~ N(1, 0.02), BN shift 0. Other families pass their own `layers` and `norms` (MuseGAN: dense)."""
    if isinstance(module, layers):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, norms):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z (N, z_dim) ~ N(0, 1) -> image (N, channels, 64, 64) in [-1, 1]."""

    def __init__(self, z_dim: int = 100, ngf: int = 64, channels: int = 3) -> None:
        super().__init__()
        self.z_dim = z_dim

        def up(cin: int, cout: int, first: bool = False) -> list[nn.Module]:
            stride, pad = (1, 0) if first else (2, 1)
            return [
                nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        self.net = nn.Sequential(
            *up(z_dim, ngf * 8, first=True),  # 1 -> 4
            *up(ngf * 8, ngf * 4),  # 4 -> 8
            *up(ngf * 4, ngf * 2),  # 8 -> 16
            *up(ngf * 2, ngf),  # 16 -> 32
            nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False),  # 32 -> 64
            nn.Tanh(),
        )
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """image (N, channels, 64, 64) -> one real/fake logit per image, shape (N,). `norm`: "batch" (the
    paper's), "spectral" (spectral norm on every convolution, no batch norm) or "none"."""

    def __init__(self, ndf: int = 64, channels: int = 3, norm: str = "batch") -> None:
        super().__init__()
        if norm not in D_NORMS:
            raise ValueError(f"norm must be one of {', '.join(D_NORMS)}, got {norm!r}")

        def down(cin: int, cout: int, bn: bool = True) -> list[nn.Module]:
            bn = bn and norm == "batch"
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not bn)]
            if bn:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.net = nn.Sequential(
            *down(channels, ndf, bn=False),  # 64 -> 32 (no BN on the input layer)
            *down(ndf, ndf * 2),  # 32 -> 16
            *down(ndf * 2, ndf * 4),  # 16 -> 8
            *down(ndf * 4, ndf * 8),  # 8 -> 4
            nn.Conv2d(ndf * 8, 1, 4, 1, 0),  # 4 -> 1: the logit
        )
        self.apply(init_weights)
        if norm == "spectral":  # after the initialisation: it then sets the weights the norm divides
            for conv in (m for m in self.net if isinstance(m, nn.Conv2d)):
                spectral_norm(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()
