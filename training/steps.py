"""GAN update steps that several trainers share (one copy, so a fix reaches every task)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.augment import diff_augment
from training.loop import Amp


def dcgan_step(
    G: nn.Module,
    D: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    real: torch.Tensor,
    z: torch.Tensor,
    amp: Amp,
    policy: tuple[str, ...] = (),
) -> dict[str, torch.Tensor]:
    """One D step then one G step of the DCGAN game with softplus losses (D: minimax, G: non-saturating),
    DiffAugment `policy` on everything D sees. Returns the detached losses and D's mean outputs."""
    aug = lambda x: diff_augment(x, policy)  # noqa: E731
    D.requires_grad_(True)
    with amp.autocast():
        fake = G(z)
        logit_real = amp.fp32(D(aug(real)))
        logit_fake = amp.fp32(D(aug(fake.detach())))
        loss_d = F.softplus(-logit_real).mean() + F.softplus(logit_fake).mean()
    amp.step(loss_d, optimizers["D"])

    D.requires_grad_(False)  # G's step needs gradients through D, not of D's weights
    with amp.autocast():
        loss_g = F.softplus(-amp.fp32(D(aug(fake)))).mean()
    amp.step(loss_g, optimizers["G"])

    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "D(x)": torch.sigmoid(logit_real.detach()).mean(),
        "D(G(z))": torch.sigmoid(logit_fake.detach()).mean(),
    }
