"""GAN update steps that several trainers share (one copy, so a fix reaches every task)."""

from __future__ import annotations

from collections.abc import Callable

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
    DiffAugment `policy` on everything D sees. Returns the detached losses and D's mean outputs.
    `gan_step` with its defaults, the one implementation."""
    return gan_step(G, D, optimizers, real, z, amp, augment=lambda x: diff_augment(x, policy))


LOSSES = ("nonsaturating", "hinge")


def d_loss(logit_real: torch.Tensor, logit_fake: torch.Tensor, loss: str = "nonsaturating") -> torch.Tensor:
    """D's loss on its logits. "nonsaturating": the minimax -[log D(x) + log(1 - D(G(z)))] in softplus form;
    "hinge" (Lim & Ye 2017, SNGAN, BigGAN): max(0, 1 - D(x)) + max(0, 1 + D(G(z)))."""
    if loss == "hinge":
        return F.relu(1 - logit_real).mean() + F.relu(1 + logit_fake).mean()
    if loss == "nonsaturating":
        return F.softplus(-logit_real).mean() + F.softplus(logit_fake).mean()
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")


def g_loss(logit_fake: torch.Tensor, loss: str = "nonsaturating") -> torch.Tensor:
    """G's loss on D's logits of its images: -log D(G(z)) (non-saturating), or -D(G(z)) (hinge)."""
    if loss == "hinge":
        return -logit_fake.mean()
    if loss == "nonsaturating":
        return F.softplus(-logit_fake).mean()
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")


def r1_penalty(logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): the mean over the batch of |grad_x D(x)|^2 at real x, kept in the
    graph so that D can be trained on it. `inputs` must require grad and `logits` be D(inputs)."""
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


def gan_step(
    G: nn.Module,
    D: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    real: torch.Tensor,
    z: torch.Tensor,
    amp: Amp,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    loss: str = "nonsaturating",
    r1_gamma: float = 0.0,
    r1_every: int = 1,
    step: int = 0,
) -> dict[str, torch.Tensor]:
    """`dcgan_step` with choices: D then G, `augment` on everything D sees, the `loss` ("nonsaturating" or
    "hinge") and lazy R1 (StyleGAN2): on steps where `step` % `r1_every` == 0, D's loss gains
    r1_gamma / 2 * r1_every * R1 on the augmented real images (every r1_every-th step, weighted up to the
    same strength on average, for 1/r1_every of the cost). With the defaults it is DCGAN's step (`dcgan_step`).
    Returns the detached losses, D's mean outputs (sigmoid of the logits) and "r1" on the steps it was computed."""
    aug = augment or (lambda x: x)
    regularise = r1_gamma > 0 and step % r1_every == 0
    D.requires_grad_(True)
    with amp.autocast():
        fake = G(z)
        x_real = aug(real)
        if regularise:
            # R1 differentiates D at the real images (a double backward): in fp32, since under fp16 the
            # input gradient would underflow (the loss scaler does not reach it) and bf16 would round it
            x_real = x_real.detach().float().requires_grad_(True)
            with amp.full_precision():
                logit_real = D(x_real).float()
        else:
            logit_real = amp.fp32(D(x_real))
        logit_fake = amp.fp32(D(aug(fake.detach())))
        loss_d = d_loss(logit_real, logit_fake, loss)
    total_d = loss_d
    if regularise:
        r1 = r1_penalty(logit_real, x_real)
        total_d = loss_d + (r1_gamma / 2 * r1_every) * r1
    amp.step(total_d, optimizers["D"])

    D.requires_grad_(False)  # G's step needs gradients through D, not of D's weights
    with amp.autocast():
        loss_g = g_loss(amp.fp32(D(aug(fake))), loss)
    amp.step(loss_g, optimizers["G"])

    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "D(x)": torch.sigmoid(logit_real.detach()).mean(),
        "D(G(z))": torch.sigmoid(logit_fake.detach()).mean(),
    } | ({"r1": r1.detach()} if regularise else {})


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
