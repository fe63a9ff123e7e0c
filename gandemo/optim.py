"""Adam for the app's own optimisation loops (GAN Basics' live toy GANs, the anomaly latent search).

Why not `torch.optim.Adam`: the first optimiser a process builds imports `torch._dynamo` (its
methods are wrapped by `torch._disable_dynamo`, which imports it on first use): measured 1.9 s and
150 MB of resident memory on this machine, paid by the app's first toy GAN or latent search. This
class computes exactly what `torch.optim.Adam(params, lr, betas, eps, foreach=True)` computes on the
CPU (the same `torch._foreach_*` kernels in the same order; tests/test_optim.py checks bit for bit),
without the import. Training keeps torch.optim: it runs once per process and needs its state dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch


class Adam:
    """Adam (Kingma & Ba, 2015) over a list of tensors, with bias correction, no weight decay."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = 0

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor] | None = None) -> None:
        """One update with `grads` (one per parameter), or with the parameters' `.grad`."""
        grads = list(grads) if grads is not None else [p.grad for p in self.params]
        beta1, beta2 = self.betas
        self.steps += 1
        torch._foreach_lerp_(self.exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(self.exp_avg_sqs, beta2)
        torch._foreach_addcmul_(self.exp_avg_sqs, grads, grads, 1 - beta2)
        step = float(self.steps)  # torch keeps the count as a float tensor and reads it back as a float
        bias_correction1, bias_correction2 = 1 - beta1**step, 1 - beta2**step
        n = len(self.params)
        denom = torch._foreach_sqrt(self.exp_avg_sqs)
        torch._foreach_div_(denom, [bias_correction2**0.5] * n)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.exp_avgs, denom, [(self.lr / bias_correction1) * -1] * n)
