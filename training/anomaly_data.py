"""Anomaly training data: the MVTec layout (train/good, val/good, val/<defect>, ground_truth masks), the
images decoded once at the model's size, real-image augmentation and the inpainter's random masks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from gandemo.imaging import ImageInputError, list_images, load_image
from gandemo.tasks import anomaly as task
from training import distributed

AUGMENTS = ("hflip", "vflip", "rotate", "shift", "brightness")


# ---- the MVTec layout ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    path: Path
    defect: str  # "good" or the defect type (its folder's name)
    mask: Path | None  # ground_truth/<defect>/<stem>_mask.png; None for good images

    @property
    def anomalous(self) -> bool:
        return self.defect != "good"


def mvtec_items(folder: str | Path, split: str) -> list[Item]:
    """The images of `folder/split/*/` with their labels and mask files, sorted (good first)."""
    folder = Path(folder)
    root = folder / split
    if not (root / "good").is_dir():
        raise FileNotFoundError(
            f"{root / 'good'} is not a folder: --data must be a category folder in the MVTec layout "
            "(train/good, val/good, val/<defect>, ground_truth/<defect>/<stem>_mask.png)"
        )
    kinds = ["good"] + sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "good")
    items = []
    for kind in kinds:
        for path in list_images(root / kind):
            mask = None
            if kind != "good":
                mask = folder / "ground_truth" / kind / f"{path.stem}_mask.png"
                if not mask.is_file():
                    raise FileNotFoundError(f"{path} has no mask: expected {mask}")
            items.append(Item(path, kind, mask))
    return items


def load_mask(item: Item, size: tuple[int, int]) -> np.ndarray:
    """The item's defect mask as bool (H, W) for an image of `size` = (W, H); all False for good
    images. A mask of another size is resized with nearest neighbour, as the data's preparation did."""
    w, h = size
    if item.mask is None:
        return np.zeros((h, w), bool)
    mask = Image.open(item.mask).convert("L")
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.NEAREST)
    return np.asarray(mask) > 127


def is_greyscale(images: list[Image.Image]) -> bool:
    """Whether every (RGB-decoded) image has R = G = B: a greyscale category gets a 1-channel model."""
    for img in images:
        a = np.asarray(img)
        if not (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2])):
            return False
    return True


class ModelImages:
    """Images decoded once into memory at the model's input: uint8 (N, C, S, S), prepared by the
    app's own `gandemo.tasks.anomaly.to_input` (whole image resized, greyscale when C = 1), with
    their original sizes (heatmaps are mapped back to them)."""

    def __init__(self, originals: list[Image.Image], paths: list[Path], size: int, channels: int) -> None:
        if not originals:
            raise FileNotFoundError("no images to load")
        self.paths = paths
        self.sizes = [img.size for img in originals]
        x = torch.stack([task.to_input(img, size, channels) for img in originals])
        self.images = x.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices: torch.Tensor | slice) -> torch.Tensor:
        return self.images[indices].float().div_(127.5).sub_(1.0)


def decode(paths: list[Path], progress: bool = False, desc: str = "decoding") -> tuple[list[Image.Image], list[Path]]:
    """Decode image files with the app's decoder; unreadable ones are skipped, not fatal."""
    images, kept = [], []
    for p in tqdm(paths, desc=desc, disable=not progress, leave=False):
        try:
            images.append(load_image(p))
        except ImageInputError:
            continue
        kept.append(p)
    if not images:
        raise FileNotFoundError(f"none of the {len(paths)} files could be decoded")
    return images, kept


# ---- real-image augmentation -------------------------------------------------------------------------
def parse_augment(text: str | None) -> dict[str, float]:
    """ "hflip,rotate:15,shift:0.04" -> {"hflip": 1.0, "rotate": 15.0, "shift": 0.04}; "none" -> {}.
    rotate is in degrees (±), shift a fraction of the side (±), brightness a relative change (±)."""
    if not text or text.strip().lower() == "none":
        return {}
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition(":")
        if name not in AUGMENTS:
            raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(AUGMENTS)}")
        try:
            out[name] = float(value) if value else 1.0
        except ValueError:
            raise ValueError(f"augmentation {part!r}: the value after ':' must be a number") from None
        if not math.isfinite(out[name]) or out[name] < 0:
            raise ValueError(f"augmentation {part!r}: the value must be a finite number >= 0")
    return out


def augment(x: torch.Tensor, spec: dict[str, float]) -> torch.Tensor:
    """Random flips (each with p = 1/2), a random turn and shift (one resampling, for half of the
    items; the others stay crisp; reflected borders), and brightness, per item. x in [-1, 1]."""
    n = len(x)
    x = x.clone()
    for name, dim in (("hflip", 3), ("vflip", 2)):
        if name in spec:
            m = torch.rand(n) < 0.5
            x[m] = x[m].flip(dim)
    deg, frac = spec.get("rotate", 0.0), spec.get("shift", 0.0)
    if deg or frac:
        m = torch.rand(n) < 0.5
        angle = (torch.rand(n) * 2 - 1) * math.radians(deg) * m
        shift = (torch.rand(n, 2) * 2 - 1) * 2 * frac * m[:, None]  # a fraction of the side; the grid spans 2
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        moved = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        x = torch.where(m[:, None, None, None], moved, x)
    if spec.get("brightness"):
        b = 1 + (torch.rand(n, 1, 1, 1) * 2 - 1) * spec["brightness"]
        x = ((x + 1) * b - 1).clamp(-1, 1)
    return x


def describe_augment(spec: dict[str, float]) -> str:
    words = {
        "hflip": lambda v: "left-right flips",
        "vflip": lambda v: "up-down flips",
        "rotate": lambda v: f"turns of up to ±{v:g}°",
        "shift": lambda v: f"shifts of up to ±{v:.0%} of the side",
        "brightness": lambda v: f"brightness ±{v:.0%}",
    }
    return ", ".join(words[k](v) for k, v in spec.items()) or "none"


def random_cell_masks(n: int, size: int, cells: tuple[int, ...], sets: int) -> torch.Tensor:
    """(n, 1, size, size) training masks, 1 = hidden: per image a grid of one of `cells` (chosen at random)
    whose cells are each hidden with probability 1 / sets, as one of the app's `sets` disjoint masks
    hides them (gandemo.tasks.anomaly.cell_masks). Drawn with the run's RNG, sharded under DDP."""
    finest = size // min(cells)
    which = distributed.randint(0, len(cells), (n,))
    u = distributed.rand(n, 1, finest, finest)
    out = torch.empty(n, 1, size, size)
    for k, cell in enumerate(cells):
        step = cell // min(cells)
        hidden = (u[:, :, ::step, ::step] < 1 / sets).float()
        out[which == k] = hidden.repeat_interleave(cell, 2).repeat_interleave(cell, 3)[which == k]
    return out
