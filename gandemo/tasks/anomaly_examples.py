"""The Anomaly tab's example pictures, drawn by the app's own code (never photos from a data set): the
generator's own normal image of a category, and the same image with a defect painted on (a crack, rust,
a scratch). The tab writes them as files (gandemo.ui.anomaly.example_images); the drawing is here."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from gandemo.tasks import anomaly as task

EXAMPLE_SIZE = 256  # examples are the generator's images enlarged to this, with a defect painted on


def _crack(d: ImageDraw.ImageDraw, rng: np.random.Generator, s: int) -> None:
    """A dark, jagged crack."""
    x, y = rng.uniform(0.2, 0.35) * s, rng.uniform(0.25, 0.45) * s
    points = [(x, y)]
    for _ in range(7):
        x += rng.uniform(0.05, 0.09) * s
        y += rng.uniform(-0.06, 0.08) * s
        points.append((x, y))
    d.line(points, fill=(20, 20, 20), width=max(2, s // 80), joint="curve")


def _rust(d: ImageDraw.ImageDraw, rng: np.random.Generator, s: int) -> None:
    """A rust-brown stain of overlapping blobs, as large as the data's rust patches: the shipped
    metal_plate model calls a stain half this size normal (score 0.035 against its threshold 0.062)."""
    cx, cy = rng.uniform(0.35, 0.65, 2) * s
    for _ in range(9):
        r = rng.uniform(0.08, 0.15) * s
        ox, oy = rng.uniform(-0.1, 0.1, 2) * s
        d.ellipse([(cx + ox - r, cy + oy - r), (cx + ox + r, cy + oy + r)], fill=(130, 70, 25))


def _scratch(d: ImageDraw.ImageDraw, rng: np.random.Generator, s: int) -> None:
    """A bright scratch across the middle."""
    y0, y1 = rng.uniform(0.35, 0.65, 2) * s
    d.line([(0.15 * s, y0), (0.85 * s, y1)], fill=(235, 235, 235), width=max(2, s // 60))


DEFECTS = {"magnetic_tile": ("crack", _crack), "metal_plate": ("rust", _rust), "transistor": ("scratch", _scratch)}


def generated_normal(G: torch.nn.Module, seed: int = 0, size: int = EXAMPLE_SIZE) -> Image.Image:
    """The generator's image for a seeded z, as an RGB picture enlarged to `size` x `size`: a
    normal product as this model draws it (never a photo from the data set)."""
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        x = task.to_display(G(z.to(task.device_of(G))).float().cpu())[0]
    arr = x.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr).resize((size, size), Image.Resampling.LANCZOS)


def example_pictures(G: torch.nn.Module, category: str, size: int = EXAMPLE_SIZE) -> list[tuple[str, Image.Image]]:
    """(label, picture) of a category's examples: the model's normal image for seed 0, then the same
    with the category's defect painted on ("painted crack", ...)."""
    normal = generated_normal(G, seed=0, size=size)
    kind, paint = DEFECTS.get(category, ("scratch", _scratch))
    defect = normal.copy()
    paint(ImageDraw.Draw(defect), np.random.default_rng(1), defect.size[0])
    return [("generated normal", normal), (f"painted {kind}", defect)]
