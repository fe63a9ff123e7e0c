"""GAN Basics: the toy GAN trained live (no checkpoint)."""

from __future__ import annotations

from pathlib import Path

API = "toy_gan"  # the tab's main endpoint
SEED_INPUT = 7


def request(root: Path, examples: Path) -> tuple[str, tuple]:
    """200 steps of the 1-D toy GAN on a Gaussian, a plot every 100."""
    return API, ("gaussian", "normal", "non-saturating", 1e-3, 1e-3, 1, 64, 0, 200, 100)
