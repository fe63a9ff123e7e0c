"""Faces: a grid of generated faces from a seed."""

from __future__ import annotations

from pathlib import Path

API = "generate_faces"  # the tab's main endpoint
SEED_INPUT = 0


def request(root: Path, examples: Path) -> tuple[str, tuple]:
    """16 faces from seed 42."""
    return API, (42, 16)
