"""Measurements shared by training/evaluate.py, the tests and the benchmarks (numpy in, floats out).

Faces: Fréchet distance between feature sets, mean pairwise distance (diversity), the share of
pictures in which a classical face detector finds a face, nearest-neighbour distances (copying).
Later tasks add theirs here (PSNR/SSIM, AUROC, ...), so there is one metrics module.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image
from scipy import linalg


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (FID when the
    features are Inception pool features): |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2)."""
    mu_a, mu_b = feats_a.mean(0), feats_b.mean(0)
    s_a = np.cov(feats_a, rowvar=False)
    s_b = np.cov(feats_b, rowvar=False)
    covmean = linalg.sqrtm(s_a @ s_b)
    if not np.isfinite(covmean).all():  # near-singular product: nudge the diagonals (as pytorch-fid)
        eps = np.eye(len(s_a)) * 1e-6
        covmean = linalg.sqrtm((s_a + eps) @ (s_b + eps))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean))


def mean_pairwise_distance(feats: np.ndarray, max_items: int = 1000, seed: int = 0) -> float:
    """Mean Euclidean distance over all pairs of rows (a random `max_items` subset if larger):
    a collapsed generator has a much smaller value than real data."""
    x = np.asarray(feats, dtype=np.float64)
    if len(x) > max_items:
        x = x[np.random.default_rng(seed).choice(len(x), max_items, replace=False)]
    if len(x) < 2:
        raise ValueError("need at least two items")
    sq = (x**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)
    iu = np.triu_indices(len(x), 1)
    return float(np.sqrt(d2[iu]).mean())


def nearest_distances(queries: np.ndarray, refs: np.ndarray, chunk: int = 256) -> np.ndarray:
    """For each row of `queries`, the Euclidean distance to its nearest row of `refs`."""
    q = np.asarray(queries, dtype=np.float32)
    r = np.asarray(refs, dtype=np.float32)
    r_sq = (r**2).sum(1)
    out = np.empty(len(q), dtype=np.float64)
    for i in range(0, len(q), chunk):
        block = q[i : i + chunk]
        d2 = (block**2).sum(1)[:, None] + r_sq[None, :] - 2 * block @ r.T
        out[i : i + chunk] = np.sqrt(np.maximum(d2.min(1), 0))
    return out


@lru_cache(maxsize=1)
def _face_cascade():
    import cv2  # imported here: only the evaluation needs OpenCV

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise RuntimeError("OpenCV's Haar cascade is missing (opencv-python-headless>=5 ships none; pin <5)")
    return cascade


def face_found(images: Sequence[Image.Image], upscale: int = 128) -> np.ndarray:
    """For each picture, whether OpenCV's frontal-face Haar cascade finds at least one face.

    64^2 crops are enlarged to `upscale`^2 first: the cascade's smallest window is 24^2 and it
    misses faces that fill a tiny frame. The settings are the classical defaults
    (scaleFactor 1.1, minNeighbors 3) with a minimum face of a quarter of the side."""
    cascade = _face_cascade()
    found = np.zeros(len(images), dtype=bool)
    for i, img in enumerate(images):
        grey = np.asarray(img.convert("L").resize((upscale, upscale), Image.Resampling.BICUBIC))
        faces = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=3, minSize=(upscale // 4,) * 2)
        found[i] = len(faces) > 0
    return found
