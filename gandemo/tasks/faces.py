"""Faces: random faces from a DCGAN generator, and walks between two of them.

Face i of seed s always comes from the same latent vector, whatever the count asked for, so
"seed 7, 16 faces" starts with the 4 faces of "seed 7, 4 faces", and an interpolation from seed
a to seed b starts at the first face of seed a's gallery and ends at the first face of seed b's.

Truncation (the knob of StyleGAN demos): psi in [0, 1] pulls every latent toward the mean of its
distribution, z' = psi * z (z ~ N(0, I) has mean 0). Lower psi trades variety for typical, cleaner
faces; psi = 0 draws the one "average" face; psi = 1 (the default) leaves z untouched, so a call
without psi gives exactly the faces it always gave.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from gandemo.imaging import make_grid, tensor_to_pils
from gandemo.validation import as_float, as_int

SEED_MAX = 2**31 - 1
COUNT_MAX = 64
FRAMES_MIN, FRAMES_MAX = 2, 60
PSI_MIN, PSI_MAX = 0.0, 1.0
DISPLAY_SIZE = 128  # animation frames are enlarged from 64^2 so the GIF is watchable


def latents(seed: int, count: int, z_dim: int = 100) -> torch.Tensor:
    """(count, z_dim) standard-normal latents; row i depends only on (seed, i)."""
    rows = [np.random.default_rng([seed, i]).standard_normal(z_dim) for i in range(count)]
    return torch.from_numpy(np.stack(rows)).float()


def truncate(z: torch.Tensor, psi: float) -> torch.Tensor:
    """Latents pulled toward their mean (0) by `psi` (StyleGAN's truncation trick in z). psi = 1
    returns `z` itself, so untruncated faces are bit for bit the faces of before the knob."""
    return z if psi == 1 else z * psi


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: stays on the shell where Gaussian latents live (a straight line
    through the middle would pass through unlikely, low-norm latents and wash the faces out)."""
    a_n, b_n = a / a.norm(), b / b.norm()
    omega = torch.arccos((a_n * b_n).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = t[:, None]
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@torch.inference_mode()
def render(G: nn.Module, z: torch.Tensor, batch: int = 100) -> torch.Tensor:
    """The one way faces are drawn (the app, training's sample grids and evaluation all call it):
    latents (N, z_dim) -> images (N, 3, 64, 64) in [-1, 1], in batches, G in eval mode."""
    was_training = G.training
    G.eval()
    try:
        return torch.cat([G(z[i : i + batch]).float() for i in range(0, len(z), batch)])
    finally:
        G.train(was_training)


def check_seed(value: Any, name: str = "seed") -> int:
    return as_int(value, name, 0, SEED_MAX)


def check_count(value: Any) -> int:
    return as_int(value, "count", 1, COUNT_MAX)


def check_frames(value: Any) -> int:
    return as_int(value, "frames", FRAMES_MIN, FRAMES_MAX)


def check_psi(value: Any) -> float:
    return as_float(value, "truncation psi", PSI_MIN, PSI_MAX)


def generate_faces(G: nn.Module, seed: Any, count: Any, psi: Any = 1.0) -> list[Image.Image]:
    """`count` faces (64x64 RGB) for `seed` at truncation `psi`; validates every input first."""
    seed, count, psi = check_seed(seed), check_count(count), check_psi(psi)
    return tensor_to_pils(render(G, truncate(latents(seed, count, G.z_dim), psi)))


def interpolate_faces(G: nn.Module, seed_a: Any, seed_b: Any, frames: Any, psi: Any = 1.0) -> list[Image.Image]:
    """`frames` faces on the spherical path from face 1 of seed_a to face 1 of seed_b (both at
    truncation `psi`: the path between the truncated ends is the untruncated path scaled by psi)."""
    seed_a, seed_b = check_seed(seed_a, "seed A"), check_seed(seed_b, "seed B")
    frames, psi = check_frames(frames), check_psi(psi)
    za, zb = latents(seed_a, 1, G.z_dim)[0], latents(seed_b, 1, G.z_dim)[0]
    return tensor_to_pils(render(G, truncate(slerp(za, zb, torch.linspace(0, 1, frames)), psi)))


def truncation_table(card: dict[str, Any]) -> list[tuple[float, dict[str, float]]]:
    """What a card measured at each truncation psi: [(psi, {"FID": .., "precision": .., "recall": ..})],
    psi = 1 first ("model" in the card's metrics; other psi as "psi=0.8" keys beside it, written by
    `python -m training evaluate faces --psi 1,0.8,0.6`). [] when the card has no such rows."""
    rows: dict[float, dict[str, float]] = {}
    for name, row in (card.get("metrics") or {}).items():
        short = next((s for s in ("FID", "precision", "recall") if name.startswith(s)), None)
        if short is None or not isinstance(row, dict):
            continue
        for key, value in row.items():
            psi = 1.0 if key == "model" else _psi_key(key)
            if psi is not None and isinstance(value, int | float):
                rows.setdefault(psi, {})[short] = value
    if len(rows) < 2:  # psi = 1 alone is the card's ordinary table
        return []
    return sorted(rows.items(), key=lambda item: -item[0])


def psi_key(psi: float) -> str:
    """The key under which a card's metric row keeps the value measured at truncation `psi`."""
    return f"psi={psi:g}"


def _psi_key(key: str) -> float | None:
    if not key.startswith("psi="):
        return None
    try:
        return float(key[4:])
    except ValueError:
        return None


def grid_png(images: list[Image.Image], path: str | Path) -> Path:
    """Save the faces as one grid PNG (8 per row at most) and return its path."""
    path = Path(path)
    make_grid(images, ncol=min(8, len(images))).save(path, compress_level=1)
    return path


def animation_gif(frames: list[Image.Image], path: str | Path, seconds: float = 3.0) -> Path:
    """Save frames as a looping GIF that plays forward then back (a "ping-pong" walk)."""
    path = Path(path)
    big = [f.resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.LANCZOS) for f in frames]
    loop = big + big[-2:0:-1]
    duration = max(20, int(1000 * seconds / len(big)))
    loop[0].save(path, save_all=True, append_images=loop[1:], duration=duration, loop=0)
    return path
