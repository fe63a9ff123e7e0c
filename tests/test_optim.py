import subprocess
import sys

import pytest
import torch

from gandemo.optim import Adam


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.999), (0.0, 0.9)])
def test_adam_is_torch_adam_bit_for_bit(betas):
    torch.manual_seed(0)
    shapes = [(7, 5), (5,), (3, 2, 2)]
    ours_p = [torch.randn(s) for s in shapes]
    theirs_p = [p.clone().requires_grad_(True) for p in ours_p]
    ours = Adam(ours_p, lr=0.01, betas=betas)
    theirs = torch.optim.Adam(theirs_p, lr=0.01, betas=betas, foreach=True)
    for _ in range(50):
        grads = [torch.randn(s) ** 3 for s in shapes]
        ours.step(grads)
        for p, g in zip(theirs_p, grads, strict=True):
            p.grad = g.clone()
        theirs.step()
    assert all(torch.equal(a, b.detach()) for a, b in zip(ours_p, theirs_p, strict=True))


def test_adam_reads_the_parameters_grads_when_none_are_given():
    p = torch.zeros(3, requires_grad=True)
    opt = Adam([p], lr=0.1)
    p.grad = torch.ones(3)
    opt.step()
    assert torch.allclose(p.detach(), torch.full((3,), -0.1))  # Adam's first step: lr * sign(grad)


def test_the_app_never_imports_torch_dynamo_for_its_optimisers():
    code = (
        "import sys, torch\n"
        "from gandemo.optim import Adam\n"
        "p = torch.zeros(2, requires_grad=True)\n"
        "Adam([p], lr=0.1).step([torch.ones(2)])\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
