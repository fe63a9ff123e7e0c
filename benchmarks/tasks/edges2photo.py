"""Edges → Photo: shoe-like photos, edges|photo pairs, an untrained U-Net stand-in, the tab's request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from benchmarks._data import save_stand_in

API = "edges_to_photo"  # the tab's main endpoint


def shoe_photo(path: Path, seed: int = 0, size: tuple[int, int] = (400, 300)) -> Path:
    """A shoe-like photo: a coloured silhouette with a sole, a stripe and lace holes, on white."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    body = tuple(int(c) for c in rng.integers(20, 200, 3))
    top = 0.15 + 0.2 * rng.random()
    d.polygon(
        [(0.05 * w, 0.85 * h), (0.95 * w, 0.85 * h), (0.92 * w, 0.6 * h), (0.5 * w, 0.45 * h), (0.4 * w, top * h)]
        + [(0.08 * w, top * h)],
        fill=body,
    )
    d.rectangle([(0.05 * w, 0.78 * h), (0.95 * w, 0.85 * h)], fill=(235, 235, 225))  # sole
    d.line([(0.15 * w, 0.65 * h), (0.85 * w, 0.7 * h)], fill=tuple(255 - c for c in body), width=max(2, h // 40))
    for i in range(4):
        x, y = 0.42 * w + i * 0.08 * w, 0.5 * h + i * 0.02 * h
        d.ellipse([(x - 4, y - 4), (x + 4, y + 4)], fill=(250, 250, 250))
    img.save(path, quality=92)
    return path


def pair_folder(folder: Path, n: int) -> Path:
    """`n` A|B pairs (256x128: edges | photo) of shoe-like photos, the edges by the data's recipe."""
    from gandemo.tasks import edges2photo

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo = edges2photo.prepare_photo(shoe_photo(folder / "photo.tmp.jpg", seed=i, size=(136, 102)))
        pair = Image.new("RGB", (2 * edges2photo.SIZE, edges2photo.SIZE), "white")
        pair.paste(edges2photo.photo_to_edges(photo), (0, 0))
        pair.paste(photo, (edges2photo.SIZE, 0))
        pair.save(folder / f"{i:04d}.jpg", quality=95)
    (folder / "photo.tmp.jpg").unlink()
    return folder


def data(images: Path) -> Path:
    """A|B pairs (edges | photo) beside `images`."""
    return pair_folder(images.parent / "pairs", 64)


def stand_in_model() -> tuple[Any, dict]:
    """An UNTRAINED U-Net of the cpu preset's size and its constructor kwargs."""
    from gandemo.nets.pix2pix import UNetGenerator
    from training.task import task_class

    preset = task_class("edges2photo").presets["cpu"]
    kwargs = {"in_channels": 3, "out_channels": 3, "ngf": preset["ngf"], "depth": 7, "max_mult": preset["max_mult"]}
    return UNetGenerator(**kwargs).eval(), kwargs


def stand_in(folder: Path, variant: str) -> str:
    G, kwargs = stand_in_model()
    params = save_stand_in(folder, "edges2photo", variant, {"G": G}, {"G": kwargs})
    return (
        f"an UNTRAINED U-Net of the cpu preset's size (ngf={kwargs['ngf']}, max_mult={kwargs['max_mult']}, "
        f"{params:.2f} M parameters; the same cost)"
    )


def edges2photo_root(tmp: Path) -> tuple[Path | None, str]:
    """(checkpoint root to use, None = the app's own; what the edges2photo model is, in words)."""
    from gandemo import registry

    if registry.status("edges2photo") is None:
        return None, f"the shipped checkpoint ({registry.checkpoint_dir('edges2photo')})"
    return tmp, "NO edges2photo checkpoint is shipped yet: " + stand_in(tmp / "edges2photo" / "default", "default")


def request(root: Path, examples: Path) -> tuple[str, tuple]:
    """The tab's first example sketch."""
    from gandemo.ui import edges2photo

    return API, (edges2photo.example_sketches(examples / "edges")[0],)
