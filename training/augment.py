"""Differentiable augmentation (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN
Training", NeurIPS 2020). The same random transform family is applied to real and generated
images before D sees them, and gradients flow through it to G, so D cannot simply memorise a
small training set while G still learns the un-augmented distribution.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from training import distributed

POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str | None) -> tuple[str, ...]:
    """ "color,translation" -> ("color", "translation"); "" or "none" -> ()."""
    if not text or text.strip().lower() == "none":
        return ()
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown}; choose from {', '.join(POLICIES)}")
    return parts


def add_policy_argument(parser: argparse.ArgumentParser, default: str, what: str = "D's inputs") -> None:
    """The `--diffaugment POLICY` option every task that uses DiffAugment takes."""
    parser.add_argument(
        "--diffaugment",
        default=default,
        help=f"DiffAugment policy for {what}: comma list of {','.join(POLICIES)}, or none",
    )


def diff_augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    for name in policy:
        x = _AUGMENTS[name](x)
    return x


def augment(
    x: torch.Tensor, policy: tuple[str, ...], p: float = 1.0, translation: float = 0.125, cutout: float = 0.5
) -> torch.Tensor:
    """DiffAugment with a strength: `policy` applied to a share `p` of the images (the others pass
    unchanged; ADA's p, held fixed), shifts of up to `translation` of the side, cutout squares of
    `cutout` of the side. The defaults are `diff_augment(x, policy)` exactly, random draws included."""
    if not policy or p <= 0:
        return x
    out = x
    for name in policy:
        if name == "translation":
            out = _translation(out, translation)
        elif name == "cutout":
            out = _cutout(out, cutout)
        else:
            out = _AUGMENTS[name](out)
    if p >= 1:
        return out
    keep = distributed.rand(x.shape[0], 1, 1, 1, device=x.device) >= p  # per item, sharded like the batch
    return torch.where(keep, x, out)


def diff_augment_pair(
    condition: torch.Tensor, image: torch.Tensor, policy: tuple[str, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """DiffAugment for a conditional D that sees (condition, image) pairs, e.g. Pix2Pix's (edges,
    photo): colour changes the image only (the condition is not a photo), while translation and
    cutout move or cut both alike, so the pair stays aligned."""
    if not policy:
        return condition, image
    if "color" in policy:
        image = _color(image)
    pair = diff_augment(torch.cat([condition, image], dim=1), tuple(p for p in policy if p != "color"))
    return pair[:, : condition.shape[1]], pair[:, condition.shape[1] :]


def _color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    # per-item draws through training.distributed: under DDP each process keeps its slice of the global batch's
    rand = lambda: distributed.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device)  # noqa: E731
    x = x + (rand() - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (rand() * 2) + mean  # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (rand() + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = distributed.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = distributed.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy[None] + ty + 1, 0, h + 1)
    gx = torch.clamp(gx[None] + tx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # shifted-in pixels are zeros (mid-grey in [-1, 1])
    idx = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[idx, gy, gx].permute(0, 3, 1, 2).contiguous()


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = distributed.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    ox = distributed.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(ch, device=x.device), torch.arange(cw, device=x.device), indexing="ij")
    gy = torch.clamp(gy[None] + oy - ch // 2, 0, h - 1)
    gx = torch.clamp(gx[None] + ox - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[torch.arange(n, device=x.device)[:, None, None], gy, gx] = 0
    return x * mask[:, None]


_AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}
