"""Data shared by the image tasks: a decoded, in-memory image set with a stable held-out split
(single images, or pix2pix's A|B side-by-side pairs), and an infinite, resumable batch sampler."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from gandemo.imaging import ImageInputError, center_square, list_images, load_image


def is_holdout(path: Path, fraction: float) -> bool:
    """Stable split by file name: the same file is held out whatever else is in the folder."""
    h = int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16)
    return h % 10_000 < fraction * 10_000


def split_pair(img: Image.Image) -> tuple[Image.Image, Image.Image]:
    """An A|B side-by-side picture (pix2pix's layout: A on the left) -> (A, B).

    Raises ImageInputError unless the picture is twice as wide as it is tall (one pixel of slack)."""
    w, h = img.size
    if abs(w - 2 * h) > 1:
        raise ImageInputError(f"an A|B pair must be twice as wide as tall, got {w}x{h}")
    half = w // 2
    return img.crop((0, 0, half, h)), img.crop((w - half, 0, w, h))


class ImageSet:
    """Every image of a folder, centre-cropped to `size`^2 and kept in memory as uint8 (N, 3, S, S).

    With `pairs=True` each file is an A|B pair side by side (pix2pix's aligned layout: A on the
    left, B on the right, each half square); both halves are centre-cropped to `size`^2 and stacked
    on channels, (N, 6, S, S): channels 0-2 are A, 3-5 are B, so one index, flip or crop treats
    both alike. Files that are not twice as wide as tall are skipped like unreadable ones.

    14,000 faces at 64^2 are 172 MB and decode in seconds, which beats a DataLoader on 2 cores.
    """

    def __init__(
        self,
        folder: str | Path,
        size: int,
        split: str = "train",
        holdout_fraction: float = 0.0,
        limit: int | None = None,
        progress: bool = True,
        pairs: bool = False,
    ) -> None:
        if split not in ("train", "holdout", "all"):
            raise ValueError(f"split must be train, holdout or all, not {split!r}")
        self.folder = Path(folder)
        paths = list_images(self.folder)
        if split != "all":
            want = split == "holdout"
            paths = [p for p in paths if is_holdout(p, holdout_fraction) == want]
        if limit is not None:
            paths = paths[:limit]
        if not paths:
            raise FileNotFoundError(f"no images for split {split!r} in {self.folder}")
        arrays, kept = [], []
        for p in tqdm(paths, desc=f"decoding {split} images", disable=not progress, leave=False):
            try:
                img = load_image(p)
                halves = split_pair(img) if pairs else (img,)
                array = np.concatenate([np.asarray(center_square(x, size)) for x in halves], axis=2)
            except ImageInputError:
                continue  # an unreadable file in a big folder is skipped, not fatal
            arrays.append(array)
            kept.append(p)
        if not arrays:
            what = "decoded as A|B pairs (twice as wide as tall)" if pairs else "decoded"
            raise FileNotFoundError(f"none of the {len(paths)} files in {self.folder} could be {what}")
        self.paths = kept
        self.size = size
        self.split = split
        self.holdout_fraction = holdout_fraction
        self.pairs = pairs
        self.images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """uint8 images at `indices` -> float (B, C, S, S) in [-1, 1] (C = 3, or 6 for pairs)."""
        return self.images[indices].float().div_(127.5).sub_(1.0)


class EpochSampler:
    """Endless shuffled epochs of indices, batch by batch; its state resumes mid-epoch exactly."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if n < 1:
            raise ValueError("cannot sample from an empty set")
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(n, generator=self.generator)
        self.pos = 0
        self.epoch = 0

    def next(self) -> torch.Tensor:
        out = []
        need = self.batch_size
        while need:
            if self.pos >= self.n:
                self.perm = torch.randperm(self.n, generator=self.generator)
                self.pos = 0
                self.epoch += 1
            take = min(need, self.n - self.pos)
            out.append(self.perm[self.pos : self.pos + take])
            self.pos += take
            need -= take
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "perm": self.perm.clone(),
            "pos": self.pos,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["perm"]) != self.n:
            raise ValueError(f"sampler state is for {len(state['perm'])} items, data has {self.n}")
        # on the CPU whatever a state was loaded onto: set_state takes a CPU ByteTensor only, and the
        # permutation indexes CPU data
        self.generator.set_state(state["generator"].cpu())
        self.perm, self.pos, self.epoch = state["perm"].cpu(), int(state["pos"]), int(state["epoch"])
