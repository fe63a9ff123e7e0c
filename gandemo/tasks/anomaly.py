"""Anomaly: where is the defect? A GAN trained on normal images only cannot reproduce a defect, and
where it fails to reproduce the image is the heatmap.

Two ways to find the generator's closest image G(z) to an image x, both scored the same way:
- `latent_search` (AnoGAN, Schlegl et al. 2017): start from the best of a few seeded random z and
  optimise z with Adam so that G(z) matches x, minimising the anomaly score itself;
- `encode` (f-AnoGAN's izi_f, Schlegl et al. 2019): a trained encoder gives z = E(x) in one pass.

The score (AnoGAN's, with lambda = 0.1):
    A(x) = (1 - lambda) * R(x) + lambda * D(x)
    R(x) = mean |x - G(z)| over pixels and channels, in units of the 0-1 pixel range (residual)
    D(x) = mean |f(x) - f(G(z))| over D's last hidden layer (discriminator-feature loss)
The heatmap is the per-pixel residual |x - G(z)| (mean over channels), smoothed by a small
Gaussian; the binary mask is heatmap > the pixel threshold and the verdict is A(x) > the image
threshold, both calibrated on normal validation images and stored in the model's card
(`calibrate`). Any image is scored at the model's resolution (resized as a whole, aspect not kept,
as the data's own preparation does) and the heatmap and mask are mapped back to its size.

`PixelStatsBaseline` is the trivial detector every model is compared with: each pixel's z-score
against the per-pixel mean and standard deviation (+ 0.02) of the normal training images.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gandemo import plotting
from gandemo.imaging import load_image
from gandemo.optim import Adam
from gandemo.validation import InvalidInput, as_int, shown

METHODS = ("inpaint", "encoder", "latent_search")
METHOD_TITLES = {
    "inpaint": "inpainting GAN (128², one pass)",
    "encoder": "encoder (f-AnoGAN)",
    "latent_search": "latent search (AnoGAN)",
}
LAMBDA = 0.1  # AnoGAN's weight of the discriminator-feature term
ITERATIONS_MIN, ITERATIONS_MAX = 1, 1000
SEARCH_ITERATIONS = 200  # default; a checkpoint's card names the count its thresholds were calibrated at
SEARCH_LR = 0.05  # Adam's step on z
SEARCH_CANDIDATES = 16  # seeded random z tried first; the search starts from the best of them
SEARCH_SEED = 0  # the same image always gives the same search
HEATMAP_SIGMA = 1.0  # Gaussian smoothing of the residual map, in pixels at the model's resolution
IMAGE_FPR = 0.05  # image threshold: this share of normal validation images score above it
PIXEL_FPR = 0.005  # pixel threshold: this share of normal validation pixels lie above it
MIN_SIDE = 16  # smaller pictures hold no product to inspect
BASELINE_TITLE = "trivial baseline (per-pixel z-score, no GAN)"
# The inpainting detector (its card's `anomaly.inpaint` block overrides these defaults):
INPAINT_CELLS = (8, 16, 32)  # grid cells hidden and redrawn, in pixels at 128²: small defects and large ones
INPAINT_SETS = 4  # each grid's cells are dealt into this many disjoint masks: every pixel is hidden once
INPAINT_SIGMA = 2.0  # Gaussian smoothing of its heatmap, pixels at 128²
INPAINT_TOP = 0.005  # image score: the mean of this share of the heatmap's highest pixels
INPAINT_SIZE = 128  # the inpainter's resolution: the data's own, where a lead or a crack is a region

Progress = Callable[[int, int], None]


# ---- inputs ------------------------------------------------------------------------------------------
def check_category(value: Any, categories: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in categories:
        raise InvalidInput(f"category must be one of {', '.join(categories)}; got {shown(value)}")
    return value


def check_method(value: Any) -> str:
    if not isinstance(value, str) or value not in METHODS:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}; got {shown(value)}")
    return value


def check_iterations(value: Any) -> int:
    return as_int(value, "iterations", ITERATIONS_MIN, ITERATIONS_MAX)


def check_threads(value: int | None) -> int | None:
    """None (keep the caller's setting) or a thread count from 1 to the number of cores."""
    if value is None:
        return None
    return as_int(value, "threads", 1, os.cpu_count() or 1)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with `n` torch threads, then restore the previous count (None: leave it).

    Why: the latent search runs hundreds of backward passes per image. Torch applies a thread
    count to each thread that runs operators (its OpenMP setting), so setting it here, in the
    thread that runs the search, and restoring it afterwards bounds the search to `n` threads
    without changing the rest of the process for long."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def check_image(image: Any) -> Image.Image:
    """Any picture (path, bytes, PIL, array; any mode) -> RGB PIL, or InvalidInput saying why not
    (unreadable, empty, over the pixel cap, or too small to show a product)."""
    img = load_image(image)
    if min(img.size) < MIN_SIDE:
        w, h = img.size
        raise InvalidInput(
            f"the image is {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed (a photo of the product)"
        )
    return img


def prepare(image: Any, size: int, channels: int) -> tuple[torch.Tensor, Image.Image]:
    """Any picture -> (the model's input (channels, size, size) in [-1, 1], the decoded RGB
    original). The whole picture is resized (Lanczos), not cropped: defects sit anywhere, often
    at the border."""
    original = check_image(image)
    return to_input(original, size, channels), original


def to_input(img: Image.Image, size: int, channels: int) -> torch.Tensor:
    """An RGB PIL image -> (channels, size, size) in [-1, 1]; channels 1 = luminance (greyscale models)."""
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    img = img.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).div(127.5).sub(1.0)


def to_display(x: torch.Tensor) -> torch.Tensor:
    """(N, 1 or 3, S, S) -> (N, 3, S, S): greyscale repeated on three channels, for pictures."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


# ---- the score -----------------------------------------------------------------------------------------
@dataclass
class Scores:
    """What either method finds for a batch of images (all on the CPU)."""

    score: torch.Tensor  # (N,) A(x)
    residual: torch.Tensor  # (N,) R(x)
    feature: torch.Tensor  # (N,) D(x)
    heat: np.ndarray  # (N, S, S) float32: smoothed per-pixel residual at the model's resolution
    reconstruction: torch.Tensor  # (N, C, S, S) in [-1, 1]: G(z)
    z: torch.Tensor  # (N, z_dim)
    seconds: float  # wall time of the method for the whole batch
    history: list[float] = field(default_factory=list)  # latent search: mean score before each step, then after


def _terms(D: nn.Module, x: torch.Tensor, fx: torch.Tensor, g: torch.Tensor, lam: float) -> tuple[torch.Tensor, ...]:
    """(A, R, D) per image of x against G(z) = g, with f(x) = fx precomputed."""
    residual = (x - g).abs().flatten(1).mean(1) / 2  # [-1, 1] -> 0-1 pixel units
    feature = (fx - D.features(g)).abs().flatten(1).mean(1)
    return (1 - lam) * residual + lam * feature, residual, feature


def heatmap(x: torch.Tensor, reconstruction: torch.Tensor, sigma: float = HEATMAP_SIGMA) -> np.ndarray:
    """Per-pixel residual |x - G(z)| averaged over channels (0-1 units), Gaussian-smoothed:
    (N, S, S) float32. Smoothing removes single-pixel noise of the reconstruction; a defect is a
    region, not a pixel."""
    from scipy.ndimage import gaussian_filter

    heat = ((x - reconstruction).abs().mean(1) / 2).detach().float().cpu().numpy()
    if sigma > 0:
        heat = gaussian_filter(heat, sigma=(0, sigma, sigma), mode="reflect")
    return heat.astype(np.float32)


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Modules in eval mode without weight gradients for a block, then as they were (the trainer's
    live models are calibrated with this; the app's are frozen already)."""
    saved = [(m, m.training, [p.requires_grad for p in m.parameters()]) for m in modules]
    for m in modules:
        m.eval().requires_grad_(False)
    try:
        yield
    finally:
        for m, training, flags in saved:
            m.train(training)
            for p, flag in zip(m.parameters(), flags, strict=True):
                p.requires_grad_(flag)


def device_of(module: nn.Module) -> torch.device:
    """The device a module's weights are on (where its inputs must go)."""
    return next(module.parameters()).device


def encode(
    G: nn.Module, D: nn.Module, E: nn.Module, x: torch.Tensor, lam: float = LAMBDA, sigma: float = HEATMAP_SIGMA
) -> Scores:
    """f-AnoGAN: z = E(x) in one pass, then the score and the heatmap. x (N, C, S, S) in [-1, 1]."""
    t0 = time.perf_counter()
    device = device_of(G)
    with frozen(G, D, E), torch.inference_mode():
        x = x.to(device)
        z = E(x)
        g = G(z)
        score, residual, feature = _terms(D, x, D.features(x), g, lam)
    heat = heatmap(x, g, sigma)
    return Scores(score.cpu(), residual.cpu(), feature.cpu(), heat, g.cpu(), z.cpu(), time.perf_counter() - t0)


def latent_search(
    G: nn.Module,
    D: nn.Module,
    x: torch.Tensor,
    iterations: int = SEARCH_ITERATIONS,
    lam: float = LAMBDA,
    sigma: float = HEATMAP_SIGMA,
    lr: float = SEARCH_LR,
    candidates: int = SEARCH_CANDIDATES,
    seed: int = SEARCH_SEED,
    progress: Progress | None = None,
    threads: int | None = None,
) -> Scores:
    """AnoGAN: optimise z (Adam, `lr`) for `iterations` steps so that G(z) matches x, minimising
    A(x) itself; start from the best of `candidates` seeded random z. Images of a batch are
    searched independently (Adam acts element-wise, G and D run in eval mode), so a batch gives
    the scores its images would get one by one. `progress(i, iterations)` is called as it goes,
    at most ~50 times; `threads` bounds torch's threads for the search (see `torch_threads`)."""
    iterations = check_iterations(iterations)
    threads = check_threads(threads)
    t0 = time.perf_counter()
    device = device_of(G)
    with torch_threads(threads), frozen(G, D):
        x = x.to(device)
        with torch.no_grad():
            fx = D.features(x)
            gen = torch.Generator().manual_seed(seed)
            pool = torch.randn(max(1, candidates), G.z_dim, generator=gen).to(device)
            start_g = G(pool)
            start_f = D.features(start_g)
            losses = torch.stack(  # (N, K): A(x) of every image against every candidate
                [
                    (1 - lam) * (x - start_g[k : k + 1]).abs().flatten(1).mean(1) / 2
                    + lam * (fx - start_f[k : k + 1]).abs().flatten(1).mean(1)
                    for k in range(len(pool))
                ],
                dim=1,
            )
            z0 = pool[losses.argmin(1)]
        z = z0.clone().requires_grad_(True)
        adam = Adam([z], lr)  # torch.optim's arithmetic without its first import (gandemo.optim)
        history: list[float] = []
        every = max(1, iterations // 50)
        for i in range(iterations):
            score, _, _ = _terms(D, x, fx, G(z), lam)
            history.append(float(score.detach().mean()))
            (grad,) = torch.autograd.grad(score.sum(), z)  # each image's z gets its own image's gradient
            adam.step([grad])
            if progress is not None and ((i + 1) % every == 0 or i + 1 == iterations):
                progress(i + 1, iterations)
        with torch.no_grad():
            g = G(z)
            score, residual, feature = _terms(D, x, fx, g, lam)
        history.append(float(score.mean()))
    heat = heatmap(x, g, sigma)
    return Scores(
        score.cpu(), residual.cpu(), feature.cpu(), heat, g.cpu(), z.detach().cpu(), time.perf_counter() - t0, history
    )


# ---- the inpainting detector -----------------------------------------------------------------------------
def cell_masks(size: int, cell: int, sets: int, seed: int = 0) -> torch.Tensor:
    """(sets, 1, size, size) float masks, 1 = hidden: the size/cell x size/cell grid's cells dealt at random
    (seeded: the same masks every time) into `sets` disjoint groups of equal size that cover the image, so
    each pixel is hidden in exactly one of them."""
    if size % cell or sets < 1:
        raise ValueError(f"the image side {size} must be a multiple of the cell {cell}, and sets >= 1")
    n = size // cell
    order = torch.randperm(n * n, generator=torch.Generator().manual_seed(seed))
    group = torch.empty(n * n, dtype=torch.long)
    group[order] = torch.arange(n * n) % sets
    grid = F.one_hot(group, sets).T.reshape(sets, 1, n, n).float()
    return grid.repeat_interleave(cell, 2).repeat_interleave(cell, 3)


def inpaint_input(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """What the inpainter sees: the image with the hidden pixels set to 0 (mid-grey) and the mask as an
    extra channel, (N, C + 1, S, S)."""
    return torch.cat([x * (1 - mask), mask.expand(len(x), 1, -1, -1)], 1)


def inpaint_heat(
    inpainter: nn.Module, x: torch.Tensor, cells: Sequence[int] = INPAINT_CELLS, sets: int = INPAINT_SETS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pixel of x (N, C, S, S) hidden once per grid and redrawn from what surrounds it (RIAD's
    scheme, with an adversarially trained inpainter): returns the raw heatmap (N, S, S), the mean over
    grids of |x - redrawn| (channel mean, 0-1 units), and the redrawn image (the mean over grids)."""
    size = x.shape[-1]
    heat = torch.zeros(len(x), size, size, device=x.device)
    redrawn = torch.zeros_like(x)
    for cell in cells:
        masks = cell_masks(size, cell, sets).to(x.device)
        # one batch of all `sets` masks of every image: (sets * N, ...)
        batch = torch.cat([inpaint_input(x, m[None]) for m in masks])
        out = inpainter(batch).float().reshape(sets, *x.shape)
        rec = (out * masks[:, None]).sum(0)  # each pixel from the pass that hid it
        heat += (x - rec).abs().mean(1) / 2
        redrawn += rec
    return heat / len(cells), redrawn / len(cells)


def smooth(heat: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian smoothing of heatmaps (N, S, S) with reflected borders (a defect is a region, not a pixel)."""
    if sigma <= 0:
        return heat
    radius = max(1, round(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=heat.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(heat.dtype)
    h = F.pad(heat[:, None], (radius, radius, radius, radius), mode="reflect")
    h = F.conv2d(h, k.reshape(1, 1, 1, -1))
    return F.conv2d(h, k.reshape(1, 1, -1, 1))[:, 0]


def top_mean(heat: torch.Tensor, share: float) -> torch.Tensor:
    """(N, S, S) -> (N,): the mean of each map's highest `share` of pixels (at least one pixel)."""
    flat = heat.flatten(1)
    k = max(1, round(share * flat.shape[1]))
    return flat.topk(k, dim=1).values.mean(1)


def against_itself(heat: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Each heatmap (N, S, S) as robust z-scores against its own pixels: (h - median) / (1.4826 MAD + eps).
    Where normal images are not aligned (a tile's streaks and lighting differ from tile to tile), what
    stands out is what differs from the rest of the same image, not from a per-pixel average."""
    flat = heat.flatten(1)
    median = flat.median(1).values[:, None, None]
    mad = (heat - median).abs().flatten(1).median(1).values[:, None, None]
    return (heat - median) / (1.4826 * mad + eps)


def inpaint_settings(block: Mapping[str, Any] | None) -> dict[str, Any]:
    """The inpainting detector's settings from the card's `anomaly.inpaint` block, with the defaults."""
    block = dict(block or {})
    return {
        "cells": tuple(int(c) for c in block.get("cells", INPAINT_CELLS)),
        "sets": int(block.get("sets", INPAINT_SETS)),
        "sigma": float(block.get("sigma", INPAINT_SIGMA)),
        "top": float(block.get("top", INPAINT_TOP)),
        "normalise": bool(block.get("normalise", True)),
        "self_normalise": bool(block.get("self_normalise", False)),
        "image_size": int(block.get("image_size", INPAINT_SIZE)),
    }


def inpaint(models: Mapping[str, nn.Module], x: torch.Tensor, block: Mapping[str, Any] | None = None) -> Scores:
    """The inpainting detector on a batch x (N, C, S, S) in [-1, 1]: the heatmap is the smoothed
    redrawing error, per-pixel z-scored against normal training images when the card says so
    (`normalise`: `models["N"]`, gandemo.nets.anogan.ResidualStats), then against the image's own pixels
    (`self_normalise`: `against_itself`); the score is the mean of its top pixels."""
    cfg = inpaint_settings(block)
    t0 = time.perf_counter()
    inpainter = _inpainter(models)
    with frozen(inpainter), torch.no_grad():
        x = x.to(device_of(inpainter))
        raw, redrawn = inpaint_heat(inpainter, x, cfg["cells"], cfg["sets"])
        heat = smooth(raw, cfg["sigma"])
        if cfg["normalise"] and "N" in models:
            heat = models["N"](heat)
        if cfg["self_normalise"]:
            heat = against_itself(heat)
        score = top_mean(heat, cfg["top"])
    residual = raw.flatten(1).mean(1)
    return Scores(
        score.cpu(),
        residual.cpu(),
        torch.zeros_like(residual).cpu(),
        heat.cpu().numpy().astype(np.float32),
        redrawn.clamp(-1, 1).cpu(),
        torch.zeros(len(x), 0),
        time.perf_counter() - t0,
    )


def _inpainter(models: Mapping[str, nn.Module]) -> nn.Module:
    """The checkpoint's inpainter, or InvalidInput saying which methods this checkpoint has instead."""
    if "I" not in models:
        raise InvalidInput("this category's model has no inpainter yet: choose the encoder or the latent search")
    return models["I"]


def input_shape(models: Mapping[str, nn.Module], method: str, card: Mapping[str, Any]) -> tuple[int, int]:
    """(side, channels) of the images `method`'s models take: the inpainter's (side from the card; the
    U-Net itself takes any multiple of 128), or G's for f-AnoGAN/AnoGAN."""
    if method == "inpaint":
        return inpaint_settings(settings(card).get("inpaint"))["image_size"], int(_inpainter(models).out_channels)
    G = models["G"]
    return int(G.image_size), int(G.channels)


def run_method(
    method: str,
    models: Mapping[str, nn.Module],
    x: torch.Tensor,
    iterations: int = SEARCH_ITERATIONS,
    sigma: float = HEATMAP_SIGMA,
    progress: Progress | None = None,
    threads: int | None = None,
    block: Mapping[str, Any] | None = None,
    scoring: Mapping[str, Any] | None = None,
) -> Scores:
    """The one dispatch to every method, for the app, calibration and evaluation alike (`block`: the
    card's `anomaly.inpaint` settings; `sigma` is the f-AnoGAN methods' smoothing; `scoring`: the card's
    `lambda`, `search_lr` and `search_candidates`, see `search_settings`: the values a card's thresholds
    were calibrated with, so the app scores as calibration did)."""
    method = check_method(method)
    if method == "inpaint":
        return inpaint(models, x, block)
    s = search_settings(scoring)
    if method == "encoder":
        return encode(models["G"], models["D"], models["E"], x, lam=s["lambda"], sigma=sigma)
    return latent_search(
        models["G"],
        models["D"],
        x,
        iterations,
        lam=s["lambda"],
        sigma=sigma,
        lr=s["search_lr"],
        candidates=s["search_candidates"],
        progress=progress,
        threads=threads,
    )


def search_settings(scoring: Mapping[str, Any] | None) -> dict[str, Any]:
    """The score's weight `lambda` and the latent search's `search_lr` and `search_candidates` of a card's
    `anomaly` block; what a card leaves out takes today's constants (every shipped card records the same
    values, so shipped checkpoints answer exactly as before these were read)."""
    scoring = scoring or {}
    return {
        "lambda": float(scoring.get("lambda", LAMBDA)),
        "search_lr": float(scoring.get("search_lr", SEARCH_LR)),
        "search_candidates": int(scoring.get("search_candidates", SEARCH_CANDIDATES)),
    }


def to_original_size(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A heatmap (S, S) at the model's resolution -> (H, W) for an image of `size` = (W, H),
    bilinearly (the model saw the whole image resized to S x S, so this undoes that)."""
    w, h = size
    t = torch.from_numpy(np.ascontiguousarray(heat, dtype=np.float32))[None, None]
    if t.shape[-2:] == (h, w):
        return t[0, 0].numpy()
    return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()


# ---- thresholds ----------------------------------------------------------------------------------------
def calibrate(
    normal_scores: Sequence[float],
    normal_heat: Sequence[np.ndarray] | np.ndarray,
    image_fpr: float = IMAGE_FPR,
    pixel_fpr: float = PIXEL_FPR,
) -> dict[str, Any]:
    """Thresholds from normal images only: the image threshold is the (1 - image_fpr) quantile of
    their scores (so about image_fpr of normal images are called anomalous), the pixel threshold
    the (1 - pixel_fpr) quantile of all their heatmap pixels (at the images' own size)."""
    scores = np.asarray(normal_scores, dtype=np.float64)
    if len(scores) < 2:
        raise ValueError("calibration needs at least two normal images")
    pixels = np.concatenate([np.asarray(h, dtype=np.float32).ravel() for h in normal_heat])
    return {
        "image_threshold": float(np.quantile(scores, 1 - image_fpr)),
        "pixel_threshold": float(np.quantile(pixels, 1 - pixel_fpr)),
        "image_fpr": image_fpr,
        "pixel_fpr": pixel_fpr,
        "normal_images": len(scores),
        "normal_scores": [round(float(s), 6) for s in scores],
    }


# ---- pictures ------------------------------------------------------------------------------------------
def _colormap(values: np.ndarray) -> np.ndarray:
    """values in [0, 1] -> uint8 RGB by matplotlib's 'jet' (blue = like the normal images, red = not)."""
    from matplotlib import colormaps

    lut = (colormaps["jet"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    return lut[np.clip(values * 255, 0, 255).astype(np.uint8)]


def overlay(image: Image.Image, heat: np.ndarray, pixel_threshold: float, alpha: float = 0.45) -> Image.Image:
    """The image with the heatmap blended over it; the colour scale puts the pixel threshold at
    its middle (green), so red is well above it and blue is where the model reproduces the image."""
    scale = max(2 * pixel_threshold, 1e-6)
    colour = _colormap(heat / scale).astype(np.uint16)
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint16)
    a = round(alpha * 256)  # integer blending: a 16 MP picture needs 3 x 96 MB, not 3 x 192 MB of floats
    return Image.fromarray(((rgb * (256 - a) + colour * a + 128) >> 8).astype(np.uint8))


def mask_image(heat: np.ndarray, pixel_threshold: float) -> Image.Image:
    """The binary defect mask, white where the heatmap is above the pixel threshold."""
    return Image.fromarray(np.where(heat > pixel_threshold, 255, 0).astype(np.uint8), "L")


def score_plot(score: float, normal_scores: Sequence[float], threshold: float, title: str = "") -> Image.Image:
    """This image's score among the normal validation images' scores, with the image threshold."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    normal = np.asarray(normal_scores, dtype=np.float64)
    with plotting.LOCK:  # matplotlib is not thread-safe (gandemo.plotting)
        fig = Figure(figsize=(5.6, 2.2), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(normal))
        ax.scatter(normal, jitter, s=12, color="tab:blue", alpha=0.6, label=f"{len(normal)} normal validation images")
        ax.axvline(threshold, color="tab:red", ls="--", lw=1.2, label=f"threshold {threshold:.4g}")
        ax.scatter([score], [0], s=160, marker="*", color="black", zorder=3, label=f"this image {score:.4g}")
        lo, hi = min(normal.min(), score, threshold), max(normal.max(), score, threshold)
        pad = 0.08 * (hi - lo or 1.0)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(-0.6, 0.6)
        ax.set_yticks([])
        ax.set_xlabel("anomaly score A(x)" + (f", {title}" if title else ""), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
        fig.subplots_adjust(left=0.04, right=0.96, bottom=0.25, top=0.72)  # the top stays clear for the app's label
        fig.canvas.draw()
        return Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())


# ---- one image, end to end -----------------------------------------------------------------------------
@dataclass
class Detection:
    overlay: Image.Image
    mask: Image.Image
    reconstruction: Image.Image
    score: float
    verdict: str
    plot: Image.Image
    seconds: float  # the method's own time on this image (search or encoder pass)
    anomalous: bool
    heat: np.ndarray  # (H, W) at the original size


def settings(card: Mapping[str, Any]) -> dict[str, Any]:
    """The card's anomaly settings (`anomaly` block written by training), with the defaults."""
    block = dict(card.get("anomaly") or {})
    block.update(search_settings(block))
    block.setdefault("heatmap_sigma", HEATMAP_SIGMA)
    block.setdefault("search_iterations", SEARCH_ITERATIONS)
    return block


def thresholds(card: Mapping[str, Any], method: str) -> dict[str, Any] | None:
    """The calibrated thresholds of `method` in the card, or None if the card has none."""
    calibration = (card.get("anomaly") or {}).get("calibration") or {}
    entry = calibration.get(method)
    if not entry or "image_threshold" not in entry or "pixel_threshold" not in entry:
        return None
    return entry


def verdict_text(score: float, entry: Mapping[str, Any], method: str, iterations: int | None = None) -> str:
    """The verdict in words, with how the threshold was chosen."""
    t = float(entry["image_threshold"])
    anomalous = score > t
    n = entry.get("normal_images", len(entry.get("normal_scores", [])))
    fpr = float(entry.get("image_fpr", IMAGE_FPR))
    word = "ANOMALOUS" if anomalous else "normal"
    relation = "above" if anomalous else "at or below"
    text = (
        f"{word}: score {score:.4g} is {relation} the threshold {t:.4g}, set so that {fpr:.0%} of the "
        f"{n} normal validation images score above it."
    )
    calibrated_at = entry.get("iterations")
    if method == "latent_search" and calibrated_at and iterations is not None and iterations != calibrated_at:
        text += (
            f" The threshold was calibrated at {calibrated_at} iterations, this search ran {iterations}: "
            "more iterations lower every score, so read the verdict with care."
        )
    return text


def detect(
    models: Mapping[str, nn.Module],
    card: Mapping[str, Any],
    image: Any,
    method: str,
    iterations: Any = None,
    progress: Progress | None = None,
    threads: int | None = None,
) -> Detection:
    """One picture, end to end: checks, the method, the heatmap and mask at the picture's size,
    the reconstruction, the score and its verdict, and the score among the normal ones.

    `models` are the checkpoint's (G, D, E; I, C, N for the inpainter); `card` its card (thresholds in
    `anomaly.calibration`)."""
    method = check_method(method)
    block = settings(card)
    n_iter = check_iterations(block["search_iterations"] if iterations is None else iterations)
    entry = thresholds(card, method)
    if entry is None:
        raise InvalidInput(f"this model has no calibrated thresholds for {method}: re-export it with training")
    x, original = prepare(image, *input_shape(models, method, card))
    found = run_method(
        method,
        models,
        x[None],
        n_iter,
        sigma=float(block["heatmap_sigma"]),
        progress=progress,
        threads=threads,
        block=block.get("inpaint"),
        scoring=block,
    )
    title = METHOD_TITLES[method] + (f", {n_iter} iterations" if method == "latent_search" else "")
    verdict = verdict_text(float(found.score[0]), entry, method, n_iter if method == "latent_search" else None)
    return _detection(original, found.heat[0], float(found.score[0]), entry, verdict, title, found)


def _detection(
    original: Image.Image,
    heat: np.ndarray,
    score: float,
    entry: Mapping[str, Any],
    verdict: str,
    title: str,
    found: Scores,
) -> Detection:
    """What the app shows of one scored picture, at the picture's own size."""
    heat = to_original_size(heat, original.size)
    pixel_t = float(entry["pixel_threshold"])
    recon = to_display(found.reconstruction)[0]
    recon_img = Image.fromarray(
        recon.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    ).resize(original.size, Image.Resampling.BILINEAR)
    return Detection(
        overlay=overlay(original, heat, pixel_t),
        mask=mask_image(heat, pixel_t),
        reconstruction=recon_img,
        score=score,
        verdict=verdict,
        plot=score_plot(score, entry["normal_scores"], float(entry["image_threshold"]), title),
        seconds=found.seconds,
        anomalous=score > float(entry["image_threshold"]),
        heat=heat,
    )


def detect_baseline(models: Mapping[str, nn.Module], card: Mapping[str, Any], image: Any) -> Detection:
    """The trivial baseline on one picture, shown like a method: its per-pixel z-score map as the heatmap,
    the normal training images' mean as its "reconstruction", its own thresholds (calibrated on the same
    normal validation images as the GAN's). Needs the checkpoint's `B` (the baseline's statistics)."""
    entry = thresholds(card, "baseline")
    if "B" not in models or entry is None:
        raise InvalidInput("this category's model ships no baseline statistics: re-export it with training")
    original = check_image(image)
    t0 = time.perf_counter()
    baseline = PixelStatsBaseline.from_module(models["B"])
    scores, pixels = baseline.score(baseline_input(original)[None])
    mean = torch.from_numpy(baseline.mean).permute(2, 0, 1)[None] * 2 - 1
    found = Scores(
        torch.from_numpy(scores).float(),
        torch.zeros(1),
        torch.zeros(1),
        pixels.astype(np.float32),
        mean,
        torch.zeros(1, 0),
        time.perf_counter() - t0,
    )
    verdict = verdict_text(float(scores[0]), entry, "baseline")
    return _detection(original, pixels[0], float(scores[0]), entry, verdict, BASELINE_TITLE, found)


# ---- the trivial baseline ------------------------------------------------------------------------------
BASELINE_SIZE = 128
BASELINE_STD_EPS = 0.02
BASELINE_TOP = 0.01


def baseline_input(image: Any) -> np.ndarray:
    """A picture -> the baseline's input: RGB uint8 (128, 128, 3), resized as a whole (Lanczos)."""
    img = load_image(image)
    if img.size != (BASELINE_SIZE, BASELINE_SIZE):
        img = img.resize((BASELINE_SIZE, BASELINE_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


class PixelStatsBaseline:
    """The reference a GAN must beat (the issue's trivial detector): RGB at 128x128 in 0-1 units,
    each pixel's z-score |x - mean| / (std + 0.02) against the per-pixel mean and standard
    deviation of the normal training images, the maximum over channels as the pixel score, and
    the mean of the top 1 % of an image's pixel scores as its score."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @classmethod
    def from_module(cls, stats: nn.Module) -> PixelStatsBaseline:
        """The baseline a checkpoint ships (its `B`, a ResidualStats of 3 channels: the train/good images'
        mean and std + 0.02), so that the app shows it without the training data."""
        return cls(stats.mean[0].permute(1, 2, 0).cpu().numpy(), stats.std[0].permute(1, 2, 0).cpu().numpy())

    def to_module(self) -> nn.Module:
        """These statistics as a checkpoint module (gandemo.nets.anogan.ResidualStats, 3 channels)."""
        from gandemo.nets.anogan import ResidualStats

        module = ResidualStats(self.mean.shape[0], channels=3)
        module.load_state_dict(
            {
                "mean": torch.from_numpy(self.mean).permute(2, 0, 1)[None].contiguous(),
                "std": torch.from_numpy(self.std).permute(2, 0, 1)[None].contiguous(),
            }
        )
        return module

    @classmethod
    def fit(cls, images: np.ndarray) -> PixelStatsBaseline:
        """images: uint8 (N, H, W, 3) normal training images."""
        x = np.asarray(images, dtype=np.float32) / 255
        if x.ndim != 4 or len(x) < 2:
            raise ValueError(f"need at least two images (N, H, W, 3), got shape {x.shape}")
        return cls(x.mean(0), x.std(0) + BASELINE_STD_EPS)

    def pixel_scores(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> (N, H, W) float32 z-scores, the maximum over channels."""
        x = np.asarray(images, dtype=np.float32) / 255
        return (np.abs(x - self.mean) / self.std).max(-1)

    @staticmethod
    def image_scores(pixel_scores: np.ndarray) -> np.ndarray:
        """(N, H, W) -> (N,): the mean of each image's top 1 % pixel scores."""
        flat = np.asarray(pixel_scores).reshape(len(pixel_scores), -1)
        k = max(1, round(BASELINE_TOP * flat.shape[1]))
        return np.sort(flat, axis=1)[:, -k:].mean(1)

    def score(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, H, W, 3) -> (image scores (N,), pixel scores (N, H, W))."""
        pixels = self.pixel_scores(images)
        return self.image_scores(pixels), pixels


def chunks(n: int, size: int) -> Iterator[slice]:
    """slice(0, size), slice(size, 2 size), ... covering range(n)."""
    for i in range(0, n, max(1, size)):
        yield slice(i, min(n, i + size))


def score_batches(
    method: str,
    models: Mapping[str, nn.Module],
    x: torch.Tensor,
    iterations: int = SEARCH_ITERATIONS,
    sigma: float = HEATMAP_SIGMA,
    batch: int = 64,
    progress: Progress | None = None,
    block: Mapping[str, Any] | None = None,
    scoring: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores (N,) and heatmaps (N, S, S) at the model's resolution of many images, in batches
    (calibration and evaluation; `block`, `scoring` as `run_method`'s). `progress(done, total)` after
    each batch."""
    scores, heats = [], []
    for part in chunks(len(x), batch):
        found = run_method(method, models, x[part], iterations, sigma=sigma, block=block, scoring=scoring)
        scores.append(found.score.numpy())
        heats.append(found.heat)
        if progress is not None:
            progress(part.stop, len(x))
    return np.concatenate(scores).astype(np.float64), np.concatenate(heats)
