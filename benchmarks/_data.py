"""Synthetic data and untrained stand-ins that more than one task's benchmark hooks use. It imports
nothing from `benchmarks/`: the task hooks (`benchmarks/tasks/`), `_server.py` and the scripts import it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def synthetic_images(folder: Path, n: int = 160, size: int = 96) -> Path:
    """`n` random RGB pictures of `size`² as PNG: a trainer's plain image folder."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def save_stand_in(
    folder: Path, task: str, variant: str, modules: dict[str, Any], kwargs: dict[str, dict], **card: Any
) -> float:
    """Write untrained `modules` (their constructor `kwargs` by name) as a checkpoint folder the app
    loads; returns their parameters in millions."""
    from gandemo.checkpoint import arch_entry, save_checkpoint

    arch = {name: arch_entry(m, kwargs[name]) for name, m in modules.items()}
    save_checkpoint(folder, modules, {"task": task, "variant": variant, "arch": arch, "metrics": {}, **card})
    return sum(p.numel() for m in modules.values() for p in m.parameters()) / 1e6
