"""Small fully connected G and D for the 1-D and 2-D toy GANs of the GAN Basics tab.

The nets are tiny on purpose: a training step takes well under a millisecond of CPU, so a browser
session can watch thousands of steps play out live. `MinibatchDiscrimination` (Salimans et al.,
2016) is the anti-mode-collapse layer: it lets D compare the samples of a batch with each other,
so a generator that puts every sample on one mode is easy to spot.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ToyGenerator", "ToyDiscriminator", "MinibatchDiscrimination", "reset_parameters", "mlp"]

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh, "elu": nn.ELU}


def _hidden_layers(in_dim: int, hidden: int, depth: int, activation: str) -> nn.Sequential:
    if depth < 1 or hidden < 1:
        raise ValueError(f"an MLP needs depth >= 1 and hidden >= 1, got depth={depth}, hidden={hidden}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def mlp(in_dim: int, out_dim: int, hidden: int, depth: int, activation: str = "relu") -> nn.Sequential:
    """`depth` hidden layers of width `hidden`, then a linear layer to `out_dim` (no output activation)."""
    return nn.Sequential(*_hidden_layers(in_dim, hidden, depth, activation), nn.Linear(hidden, out_dim))


class ToyGenerator(nn.Module):
    """z (N, z_dim) -> x (N, x_dim); the output is linear, so G can reach any point of the plane."""

    def __init__(
        self, z_dim: int = 1, x_dim: int = 1, hidden: int = 32, depth: int = 2, activation: str = "tanh"
    ) -> None:
        super().__init__()
        self.z_dim, self.x_dim = z_dim, x_dim
        self.net = mlp(z_dim, x_dim, hidden, depth, activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. (2016), section 3.2: for each sample i and each of `out_features` learned
    projections b, o_b(x_i) = sum_{j != i} exp(-||M_{i,b} - M_{j,b}||_1), with M = x @ T reshaped to
    (N, out_features, kernel_dims). Samples that all look alike get large o_b: D sees the collapse.
    Output: the input features with the `out_features` closeness scores appended."""

    def __init__(self, in_features: int, out_features: int = 8, kernel_dims: int = 4) -> None:
        super().__init__()
        self.out_features, self.kernel_dims = out_features, kernel_dims
        self.T = nn.Parameter(torch.empty(in_features, out_features * kernel_dims))
        nn.init.normal_(self.T, 0.0, 0.1)

    def forward(self, x: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """`reference` (features of other samples): score `x` against those instead of against its
        own batch, e.g. to ask what D says of one point in the company of G's current samples."""
        m = (x @ self.T).view(-1, self.out_features, self.kernel_dims)
        others = m if reference is None else (reference @ self.T).view(-1, self.out_features, self.kernel_dims)
        l1 = (m.unsqueeze(1) - others.unsqueeze(0)).abs().sum(dim=3)  # (N, M, B)
        closeness = torch.exp(-l1).sum(dim=1)
        if reference is None:
            closeness = closeness - 1.0  # exp(0) = 1: a sample is not compared with itself
        return torch.cat([x, closeness], dim=1)


class ToyDiscriminator(nn.Module):
    """x (N, x_dim) -> one logit per sample (N,). With `minibatch_features` > 0 a minibatch
    discrimination layer sits before the last linear layer, so D judges each sample in the
    context of its batch."""

    def __init__(
        self,
        x_dim: int = 1,
        hidden: int = 32,
        depth: int = 2,
        activation: str = "tanh",
        minibatch_features: int = 0,
        minibatch_kernel_dims: int = 4,
    ) -> None:
        super().__init__()
        self.x_dim = x_dim
        self.body = _hidden_layers(x_dim, hidden, depth, activation)
        width = hidden
        self.minibatch = (
            MinibatchDiscrimination(width, minibatch_features, minibatch_kernel_dims)
            if minibatch_features > 0
            else None
        )
        self.head = nn.Linear(width + max(0, minibatch_features), 1)

    def forward(self, x: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """`reference`: samples that x's minibatch layer compares x with (default: x's own batch)."""
        h = self.body(x)
        if self.minibatch is not None:
            h = self.minibatch(h, None if reference is None else self.body(reference))
        return self.head(h).squeeze(1)


@torch.no_grad()
def reset_parameters(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every weight from `generator` alone, with PyTorch's default scheme (Linear:
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias; minibatch tensors N(0, 0.1)).
    Why not torch.manual_seed: that seeds the process-wide RNG, which concurrent sessions share;
    a private generator makes each session's initial nets depend on its seed only."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.in_features)
            m.weight.uniform_(-bound, bound, generator=generator)
            if m.bias is not None:
                m.bias.uniform_(-bound, bound, generator=generator)
        elif isinstance(m, MinibatchDiscrimination):
            m.T.normal_(0.0, 0.1, generator=generator)
    return module
