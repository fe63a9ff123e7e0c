"""Small fully connected G and D for the 1-D and 2-D toy GANs of the GAN Basics tab.

The nets are tiny on purpose: a training step takes a few milliseconds of one CPU core, so a
browser session can watch thousands of steps play out live. The anti-collapse remedy of the 2-D
view, PacGAN's packing (Lin et al., 2018), needs no layer of its own: D simply takes `pack`
samples side by side as one input (`x_dim = pack * 2`), which the task arranges.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ToyGenerator", "ToyDiscriminator", "mlp", "reset_parameters"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


def mlp(in_dim: int, out_dim: int, hidden: int, depth: int, activation: str = "relu") -> nn.Sequential:
    """`depth` hidden layers of width `hidden`, then a linear layer to `out_dim` (no output activation)."""
    if depth < 1 or hidden < 1:
        raise ValueError(f"an MLP needs depth >= 1 and hidden >= 1, got depth={depth}, hidden={hidden}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers, nn.Linear(hidden, out_dim))


class ToyGenerator(nn.Module):
    """z (N, z_dim) -> x (N, x_dim). The output layer is linear, so G can reach any point."""

    def __init__(
        self, z_dim: int = 1, x_dim: int = 1, hidden: int = 32, depth: int = 2, activation: str = "tanh"
    ) -> None:
        super().__init__()
        self.z_dim, self.x_dim = z_dim, x_dim
        self.net = mlp(z_dim, x_dim, hidden, depth, activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"G expects noise of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """x (N, x_dim) -> one logit per sample, shape (N,): D(x) = sigmoid(logit), or the raw value
    is the critic's score for WGAN-GP."""

    def __init__(self, x_dim: int = 1, hidden: int = 32, depth: int = 2, activation: str = "tanh") -> None:
        super().__init__()
        self.x_dim = x_dim
        self.net = mlp(x_dim, 1, hidden, depth, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.x_dim:
            raise ValueError(f"D expects samples of shape (N, {self.x_dim}), got {tuple(x.shape)}")
        return self.net(x).squeeze(1)


@torch.no_grad()
def reset_parameters(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every Linear weight and bias from `generator` alone, with PyTorch's default scheme
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Why not torch.manual_seed: that seeds the process-wide
    RNG, which concurrent sessions share; a private generator makes a session's initial nets
    depend on its seed only."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.in_features)
            m.weight.uniform_(-bound, bound, generator=generator)
            if m.bias is not None:
                m.bias.uniform_(-bound, bound, generator=generator)
    return module
