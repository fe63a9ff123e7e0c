"""Anomaly: plates in the MVTec layout, the tab's request (no stand-in: an untrained detector must also
be calibrated by the task's own methods; benchmarks/anomaly_speed.py builds its own)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

API = "detect_anomaly"  # the tab's main endpoint


def plate(path: Path, size: tuple[int, int], seed: int = 0, scratch: bool = True) -> Path:
    """A grey plate with a soft gradient and noise, and a dark scratch (a stand-in product photo)."""
    rng = np.random.default_rng(seed)
    w, h = size
    a = np.linspace(90, 150, w)[None, :, None] + rng.normal(0, 6, (h, w, 3))
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if scratch:
        ImageDraw.Draw(img).line([(0.2 * w, 0.4 * h), (0.7 * w, 0.55 * h)], fill=(30, 30, 30), width=max(2, w // 60))
    img.save(path, quality=92)
    return path


def mvtec_tree(folder: Path, n: int = 64, size: int = 128) -> Path:
    """One anomaly category in the MVTec layout: `n` normal plates to train on, 8 to calibrate on."""
    for split, count in (("train/good", n), ("val/good", 8)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            plate(folder / split / f"{i:03d}.png", (size, size), seed=i, scratch=False)
    return folder


def data(images: Path) -> Path:
    """One category in the MVTec layout beside `images`."""
    return mvtec_tree(images.parent / "mvtec")


def request(root: Path, examples: Path) -> tuple[str, tuple]:
    """The last example product of the first category (drawn by the model under `root`), encoder method."""
    from gandemo.checkpoint import load_checkpoint
    from gandemo.tasks import TASKS
    from gandemo.ui import anomaly

    category = TASKS["anomaly"].variants[0]
    product = anomaly.example_images({category: load_checkpoint(root / "anomaly" / category)}, examples / "anomaly")
    return API, (product[-1][0], category, "encoder", 200)
