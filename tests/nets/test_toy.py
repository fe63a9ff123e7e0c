import math

import pytest
import torch
from torch import nn

from gandemo.nets.toy import ToyDiscriminator, ToyGenerator, mlp, reset_parameters


def test_generator_maps_noise_to_points():
    G = ToyGenerator(z_dim=8, x_dim=2, hidden=16, depth=2, activation="relu")
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 2)
    assert torch.isfinite(x).all()


def test_discriminator_gives_one_logit_per_sample():
    D = ToyDiscriminator(x_dim=4, hidden=16, depth=1, activation="relu")
    out = D(torch.randn(7, 4))
    assert out.shape == (7,)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    "net, bad, words",
    [
        (ToyGenerator(z_dim=1), torch.randn(3, 2), r"noise of shape \(N, 1\)"),
        (ToyGenerator(z_dim=1), torch.randn(3), r"noise of shape \(N, 1\)"),
        (ToyDiscriminator(x_dim=2), torch.randn(3, 1), r"samples of shape \(N, 2\)"),
    ],
)
def test_wrong_input_shapes_are_refused_with_the_expected_shape(net: nn.Module, bad: torch.Tensor, words: str):
    with pytest.raises(ValueError, match=words):
        net(bad)


def test_mlp_shape_and_bad_arguments():
    net = mlp(3, 2, hidden=5, depth=3, activation="tanh")
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 5), (5, 5), (5, 5), (5, 2)]
    assert isinstance(net[-1], nn.Linear)  # no activation on the output
    with pytest.raises(ValueError, match="depth >= 1"):
        mlp(1, 1, hidden=4, depth=0)
    with pytest.raises(ValueError, match="activation must be one of"):
        mlp(1, 1, hidden=4, depth=1, activation="swish")


def _weights(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def test_reset_parameters_depends_on_the_generator_only_and_leaves_the_global_rng_alone():
    a, b, c = (ToyGenerator(z_dim=2, x_dim=2, hidden=8) for _ in range(3))
    global_state = torch.get_rng_state()
    reset_parameters(a, torch.Generator().manual_seed(5))
    reset_parameters(b, torch.Generator().manual_seed(5))
    reset_parameters(c, torch.Generator().manual_seed(6))
    assert torch.equal(torch.get_rng_state(), global_state)
    assert all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(b), strict=True))
    assert not torch.equal(_weights(a)[0], _weights(c)[0])


def test_reset_parameters_uses_pytorchs_default_bounds():
    D = reset_parameters(ToyDiscriminator(x_dim=2, hidden=64, depth=2), torch.Generator().manual_seed(0))
    for m in D.modules():
        if isinstance(m, nn.Linear):
            bound = 1 / math.sqrt(m.in_features)
            assert m.weight.abs().max() <= bound and m.bias.abs().max() <= bound
            # drawn over the whole range, not stuck near 0
            assert m.weight.abs().max() > 0.5 * bound
