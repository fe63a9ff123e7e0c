"""GAN update steps that several trainers share (one copy, so a fix reaches every task)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.augment import diff_augment, diff_augment_pair
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


def pix2pix_step(
    G: nn.Module,
    D: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    condition: torch.Tensor,
    target: torch.Tensor,
    amp: Amp,
    lambda_l1: float,
    policy: tuple[str, ...] = (),
    gan: bool = True,
    mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One step of Pix2Pix's conditional GAN (Isola et al. 2017): D (a PatchGAN on the (condition, image)
    pair, softplus losses halved as in the paper) then G on lambda_l1 * L1 + the non-saturating GAN loss;
    `gan=False` trains G on L1 alone (the L1-only baseline). DiffAugment `policy` on D's pairs.

    With `mask` (N, 1, H, W), 1 = hidden (an inpainter): G's output counts only where the mask is, the
    rest of the image is the target's own pixels, and L1 is the mean over the hidden pixels."""
    with amp.autocast():
        fake = G(condition)
    if mask is not None:
        fake = target * (1 - mask) + amp.fp32(fake) * mask
    if gan:
        D.requires_grad_(True)
        with amp.autocast():
            logit_real = amp.fp32(D(*diff_augment_pair(condition, target, policy)))
            logit_fake = amp.fp32(D(*diff_augment_pair(condition, fake.detach(), policy)))
            loss_d = 0.5 * (F.softplus(-logit_real).mean() + F.softplus(logit_fake).mean())
        amp.step(loss_d, optimizers["D"])
        D.requires_grad_(False)  # G's step needs gradients through D, not of D's weights
    with amp.autocast():
        error = (amp.fp32(fake) - target.float()).abs()
        hidden = (mask.sum() * target.shape[1]).clamp_min(1.0) if mask is not None else None
        l1 = error.mean() if mask is None else (error * mask).sum() / hidden
        loss_g = lambda_l1 * l1
        if gan:
            loss_adv = F.softplus(-amp.fp32(D(*diff_augment_pair(condition, fake, policy)))).mean()
            loss_g = loss_g + loss_adv
    amp.step(loss_g, optimizers["G"])
    if not gan:
        return {"l1": l1.detach()}
    return {
        "loss_d": loss_d.detach(),
        "loss_g_gan": loss_adv.detach(),
        "l1": l1.detach(),
        "D(real)": torch.sigmoid(logit_real.detach()).mean(),  # mean patch probability of D(condition, target)
        "D(fake)": torch.sigmoid(logit_fake.detach()).mean(),  # ... of D(condition, G(condition))
    }
