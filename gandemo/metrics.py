"""Measurements shared by training/evaluate.py, the tests and the benchmarks (numpy in, floats out).

Faces: Fréchet distance between feature sets, improved precision and recall, mean pairwise
distance (diversity), the share of pictures in which a classical face detector finds a face,
nearest-neighbour distances (copying).
4x Upscale: the super-resolution papers' protocol (modcrop, bicubic low-resolution input, PSNR and
SSIM on the luma Y with the border shaved) and a sharpness ratio.
Anomaly: AUROC (image and pixel level).
Later tasks add theirs here (PSNR/SSIM, AUROC, ...), so there is one metrics module.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (FID when the
    features are Inception pool features): |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2).

    With A, B the centred features, S_a S_b = A^T A B^T B / ((n_a - 1)(n_b - 1)), whose non-zero
    eigenvalues are the squared singular values of A B^T / sqrt((n_a - 1)(n_b - 1)); so the
    trace term is the sum of those singular values. This equals scipy's sqrtm formula (tested)
    but takes an SVD of an N x N matrix instead of a square root of a 2048 x 2048 one: ~0.3 s
    rather than ~27 s for 1,000 images on 2 cores, and no complex round-off to discard."""
    a = np.asarray(feats_a, dtype=np.float64)
    b = np.asarray(feats_b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("need at least two items in each set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    ac, bc = a - mu_a, b - mu_b
    tr_a = (ac**2).sum() / (len(a) - 1)
    tr_b = (bc**2).sum() / (len(b) - 1)
    cross = ac @ bc.T / np.sqrt((len(a) - 1) * (len(b) - 1))
    from scipy import linalg  # here, not at the top: the app never needs FID, and scipy costs its cold start

    tr_sqrt = linalg.svdvals(cross).sum()
    return float(((mu_a - mu_b) ** 2).sum() + tr_a + tr_b - 2 * tr_sqrt)


def fid_gap(
    feats_a: np.ndarray, feats_b: np.ndarray, reference: np.ndarray, resamples: int = 100, seed: int = 0
) -> dict[str, float]:
    """How sure "A is closer to the reference than B" is, by FID, for sets paired item by item (the
    i-th items of A and B were both made from the reference's i-th item): the gap FID(B) - FID(A)
    on the whole sets, and over `resamples` bootstrap draws of the items (the same draw for all
    three sets) its 2.5 and 97.5 percentiles and the share of draws in which A is ahead. A gap
    whose interval holds 0 is within what another few hundred items could undo."""
    a, b, ref = (np.asarray(x, dtype=np.float64) for x in (feats_a, feats_b, reference))
    if not len(a) == len(b) == len(ref):
        raise ValueError(f"the sets must be paired item by item, got {len(a)}, {len(b)} and {len(ref)} items")
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(resamples):
        i = rng.integers(0, len(ref), len(ref))
        gaps.append(frechet_distance(b[i], ref[i]) - frechet_distance(a[i], ref[i]))
    lo, hi = np.percentile(gaps, [2.5, 97.5])
    gap = frechet_distance(b, ref) - frechet_distance(a, ref)
    return {"gap": gap, "low": float(lo), "high": float(hi), "a_ahead": float(np.mean(np.asarray(gaps) > 0))}


def _pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(d2, 0))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019) of feature sets.

    Each set's manifold is the union of balls around its points, each ball reaching the point's
    k-th nearest neighbour in its own set. Precision is the share of fake points inside the real
    manifold (are samples realistic?); recall the share of real points inside the fake manifold
    (is the data's variety covered?)."""
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"need more than k={k} items in each set")

    def radii(x: np.ndarray) -> np.ndarray:
        d = _pairwise_distances(x, x)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    r_real, r_fake = radii(real), radii(fake)
    cross = _pairwise_distances(fake, real)  # (fake, real)
    precision = float((cross <= r_real[None, :]).any(axis=1).mean())
    recall = float((r_fake[None, :] >= cross.T).any(axis=1).mean())
    return precision, recall


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


def _image_batch(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{name} must be a batch of images (N, H, W, C), got shape {x.shape}")
    return x


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of each image pair, 10 log10(data_range^2 / MSE): (N,) from
    two (N, H, W, C) batches (uint8 images: data_range 255). Identical images give inf."""
    a, b = _image_batch(a, "a").astype(np.float64), _image_batch(b, "b").astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"image batches differ in shape: {a.shape} vs {b.shape}")
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(data_range**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Structural similarity of each image pair (N,) from two (N, H, W, C) batches, by
    scikit-image with the settings of Wang et al. 2004: an 11x11 Gaussian window (sigma 1.5),
    population covariances, K1 = 0.01, K2 = 0.03; the mean over the colour channels."""
    from skimage.metrics import structural_similarity

    a, b = _image_batch(a, "a"), _image_batch(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"image batches differ in shape: {a.shape} vs {b.shape}")
    return np.array(
        [
            structural_similarity(
                x,
                y,
                data_range=data_range,
                channel_axis=-1,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for x, y in zip(a, b, strict=True)
        ]
    )


# ---- super-resolution, measured as the SRGAN paper (and SRCNN, VDSR, EDSR...) measure it --------------
# The high-resolution image is cropped to a multiple of the scale, the low-resolution input made
# from it by bicubic downscaling (antialiased, as MATLAB's imresize), and PSNR/SSIM computed on the
# luma Y of YCbCr (ITU-R BT.601, MATLAB's rgb2ycbcr: 16..235) with `scale` pixels shaved off every
# border. Y is kept in floating point (not rounded to 8 bits), as BasicSR does.
SR_SCALE = 4


def modcrop(image: np.ndarray, scale: int = SR_SCALE) -> np.ndarray:
    """The top-left part of an (H, W[, C]) image whose sides are multiples of `scale`."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


def bicubic_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A uint8 (H, W[, C]) image resized to `size` = (width, height) by PIL's bicubic filter (a = -0.5,
    as MATLAB's; antialiased when shrinking, as MATLAB's imresize), rounded back to uint8."""
    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    return np.asarray(img.resize(size, Image.Resampling.BICUBIC))


def bicubic_downscale(hr: np.ndarray, scale: int = SR_SCALE) -> np.ndarray:
    """The protocol's low-resolution input of a uint8 image: modcrop, then bicubic 1/scale."""
    hr = modcrop(hr, scale)
    return bicubic_resize(hr, (hr.shape[1] // scale, hr.shape[0] // scale))


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """Luma of (..., 3) RGB values in 0..255 as float64 in 16..235 (MATLAB's rgb2ycbcr, BT.601)."""
    x = np.asarray(rgb, dtype=np.float64)
    if x.shape[-1] != 3:
        raise ValueError(f"expected RGB values in the last axis, got shape {x.shape}")
    return 16.0 + x @ np.array([65.481, 128.553, 24.966]) / 255.0


def _luma(image: np.ndarray) -> np.ndarray:
    """Y of an (H, W, 3) RGB image; an (H, W) greyscale one is taken as R = G = B."""
    image = np.asarray(image)
    return rgb_to_y(image[..., None].repeat(3, axis=-1) if image.ndim == 2 else image)


def _shaved_y(sr: np.ndarray, hr: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    sr, hr = np.asarray(sr), np.asarray(hr)
    if sr.shape != hr.shape:
        raise ValueError(f"the images differ in shape: {sr.shape} vs {hr.shape}")
    if min(hr.shape[:2]) <= 2 * border:
        raise ValueError(f"an image of {hr.shape[1]}x{hr.shape[0]} has nothing left after a {border}-px border")
    ys, yh = _luma(sr), _luma(hr)
    if border:
        ys, yh = ys[border:-border, border:-border], yh[border:-border, border:-border]
    return ys, yh


def mse_y(sr: np.ndarray, hr: np.ndarray, border: int = SR_SCALE) -> float:
    """Mean squared error of the luma Y (0..255 scale) of one image pair, `border` px shaved. The
    images are (H, W, 3) RGB or (H, W) greyscale (taken as R = G = B), as are those of the
    functions below."""
    ys, yh = _shaved_y(sr, hr, border)
    return float(((ys - yh) ** 2).mean())


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int = SR_SCALE) -> float:
    """PSNR in dB of one super-resolved image against its original by the protocol above:
    10 log10(255^2 / MSE of Y), `border` px shaved. Identical images give inf."""
    mse = mse_y(sr, hr, border)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int = SR_SCALE) -> float:
    """SSIM of the luma Y of one image pair, `border` px shaved, with `ssim`'s settings (Wang et al.
    2004: 11x11 Gaussian window, sigma 1.5, data range 255)."""
    ys, yh = _shaved_y(sr, hr, border)
    return float(ssim(ys[None, ..., None], yh[None, ..., None])[0])


def detail_ratio(sr: np.ndarray, hr: np.ndarray, border: int = SR_SCALE) -> float:
    """How much fine detail an upscaled image has relative to the original: the variance of the
    Laplacian of its luma over that of the original's (`border` px shaved). Blur gives < 1, the
    original itself 1; an upscaler that invents texture can exceed 1. It measures sharpness, not
    faithfulness: read it beside PSNR/SSIM."""
    ys, yh = _shaved_y(sr, hr, border)

    def lap_var(y: np.ndarray) -> float:
        lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
        return float(lap.var())

    ref = lap_var(yh)
    return float("nan") if ref == 0 else lap_var(ys) / ref


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn's roc_auc_score): the probability that a random
    positive (label 1: anomalous image, or defect pixel) scores higher than a random negative,
    ties counting half. 0.5 is chance, 1.0 perfect. Labels and scores may have any shape (pixel
    AUROC: masks and heatmaps, flattened together). Both classes must be present."""
    from sklearn.metrics import roc_auc_score  # imported here: only the anomaly evaluation needs it

    y = np.asarray(labels).ravel().astype(bool)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in size: {y.size} vs {s.size}")
    if y.all() or not y.any():
        raise ValueError("AUROC needs both positives and negatives")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return float(roc_auc_score(y, s))


def mean_iou(predicted: list[np.ndarray], truth: list[np.ndarray]) -> float:
    """The mean over images with a non-empty true mask of |predicted ∩ truth| / |predicted ∪ truth|
    (binary masks of the same shape per image): how well a detector's defect mask overlaps the defect."""
    ious = []
    for p, t in zip(predicted, truth, strict=True):
        p, t = np.asarray(p, bool), np.asarray(t, bool)
        if p.shape != t.shape:
            raise ValueError(f"mask shapes differ: {p.shape} vs {t.shape}")
        if t.any():
            ious.append((p & t).sum() / (p | t).sum())
    if not ious:
        raise ValueError("no image has a non-empty true mask")
    return float(np.mean(ious))


# ---- music: the MuseGAN paper's objective metrics (Dong et al., AAAI 2018, section "Objective Metrics") -
# Computed here rather than by a library: pypianoroll 1.0.4 (the paper author's, and its current
# source) gets several wrong on hand-made rolls (its chroma folds pitches by tens, so a C major triad
# counts 1 pitch class and C4 + C5 count 2; empty_beat_rate returns the share of *non*-empty beats;
# qualified_note_rate pairs onsets and offsets across pitches and fails on bool/uint8 rolls), and
# muspy 0.5.0 has no qualified-note rate or tonal distance, counts a bar past the end in its
# empty-measure rate, and needs music21 (~110 MB). The definitions follow the paper and the
# MuseGAN code's evaluation (per bar, per track; the tonal distance per beat between two tracks).
# A piece is a bool array (tracks, steps, pitches); pitch index i is MIDI pitch `lowest_pitch + i`.
MUSIC_METRICS = ("empty_bars", "pitch_classes_per_bar", "qualified_notes", "polyphony", "tonal_distance")


def _pieces(rolls: np.ndarray) -> np.ndarray:
    rolls = np.asarray(rolls)
    if rolls.ndim != 4:
        raise ValueError(f"piano rolls must be (pieces, tracks, steps, pitches), got shape {rolls.shape}")
    return rolls.astype(bool, copy=False)


def _chroma(counts: np.ndarray, lowest_pitch: int) -> np.ndarray:
    """(..., pitches) -> (..., 12): summed over octaves, pitch class 0 = C."""
    classes = (lowest_pitch + np.arange(counts.shape[-1])) % 12
    out = np.zeros((*counts.shape[:-1], 12), dtype=np.float64)
    for c in range(12):
        out[..., c] = counts[..., classes == c].sum(-1)
    return out


def empty_bar_rate(rolls: np.ndarray, steps_per_bar: int) -> np.ndarray:
    """(pieces, tracks) share of each track's bars in which it plays no note (EB)."""
    r = _pieces(rolls)
    n, k, t, p = r.shape
    if t % steps_per_bar:
        raise ValueError(f"{t} steps are not whole bars of {steps_per_bar}")
    return (~r.reshape(n, k, t // steps_per_bar, steps_per_bar * p).any(-1)).mean(-1)


def pitch_classes_per_bar(rolls: np.ndarray, steps_per_bar: int, lowest_pitch: int) -> np.ndarray:
    """(pieces, tracks) number of pitch classes (0-12) a track uses in a bar, averaged over its
    non-empty bars (UPC); NaN for a track with no note."""
    r = _pieces(rolls)
    n, k, t, p = r.shape
    used = r.reshape(n, k, t // steps_per_bar, steps_per_bar, p).any(3)  # (n, k, bars, pitches)
    classes = (_chroma(used, lowest_pitch) > 0).sum(-1).astype(np.float64)
    classes[~used.any(-1)] = np.nan
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(classes, -1)


def note_lengths(rolls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every note of every (piece, track): a note is a run of consecutive steps on one pitch.
    Returns (row, length): row = piece * tracks + track, length in steps."""
    r = _pieces(rolls)
    n, k, t, p = r.shape
    x = r.transpose(0, 1, 3, 2).reshape(n * k * p, t).astype(np.int8)  # one row per (piece, track, pitch)
    d = np.diff(np.pad(x, ((0, 0), (1, 1))), axis=1)
    on_rows, on_t = np.nonzero(d == 1)  # row-major: runs come in the same order as their ends
    _, off_t = np.nonzero(d == -1)
    return on_rows // p, off_t - on_t


def qualified_note_rate(rolls: np.ndarray, min_steps: int = 2) -> np.ndarray:
    """(pieces, tracks) share of a track's notes that last at least `min_steps` steps (QN); NaN
    for a track with no note. The paper counts notes of at least 3 of its 96 steps per bar (a
    32nd note); at 16 steps per bar every note is that long, so the default here asks for an
    eighth note (2 steps): shorter notes are the fragments a GAN makes, rare in chorales."""
    r = _pieces(rolls)
    n, k = r.shape[:2]
    rows, lengths = note_lengths(r)
    notes = np.bincount(rows, minlength=n * k).astype(np.float64)
    good = np.bincount(rows, weights=lengths >= min_steps, minlength=n * k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (good / notes).reshape(n, k)


def polyphony_rate(rolls: np.ndarray, min_pitches: int = 2) -> np.ndarray:
    """(pieces, tracks) share of the steps on which a track sounds at all where it sounds at least
    `min_pitches` pitches at once (PP, "polyphonicity"); NaN for a silent track. A chorale voice
    is one line, so its value is 0."""
    r = _pieces(rolls)
    count = r.sum(-1)  # (n, k, steps)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (count >= min_pitches).sum(-1) / (count > 0).sum(-1)


def tonal_matrix(radii: tuple[float, float, float] = (1.0, 1.0, 0.5)) -> np.ndarray:
    """Harte, Sandler & Gasser (2006): a chroma vector -> its 6-D tonal centroid (circle of fifths,
    minor thirds, major thirds, with these radii)."""
    c = np.arange(12)
    r1, r2, r3 = radii
    return np.stack(
        [
            r1 * np.sin(c * 7 * np.pi / 6),
            r1 * np.cos(c * 7 * np.pi / 6),
            r2 * np.sin(c * 3 * np.pi / 2),
            r2 * np.cos(c * 3 * np.pi / 2),
            r3 * np.sin(c * 2 * np.pi / 3),
            r3 * np.cos(c * 2 * np.pi / 3),
        ]
    )


def tonal_distance(rolls: np.ndarray, a: int, b: int, steps_per_beat: int, lowest_pitch: int) -> np.ndarray:
    """(pieces,) tonal distance (TD) between tracks `a` and `b`: per beat, each track's chroma (its
    notes' steps summed per pitch class) normalised to sum 1 and mapped to its tonal centroid;
    the Euclidean distance of the two centroids, averaged over the beats where both tracks sound
    (NaN if there is none). The paper reads smaller as closer harmony; compare it with the data's
    own value, though: a track that plays every pitch class at once has a centroid near 0 and so
    a small distance to anything."""
    r = _pieces(rolls)
    n, k, t, p = r.shape
    if t % steps_per_beat:
        raise ValueError(f"{t} steps are not whole beats of {steps_per_beat}")
    beats = r[:, [a, b]].reshape(n, 2, t // steps_per_beat, steps_per_beat, p).sum(3)
    chroma = _chroma(beats, lowest_pitch)  # (n, 2, beats, 12)
    total = chroma.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = (chroma / total) @ tonal_matrix().T  # (n, 2, beats, 6)
    dist = np.linalg.norm(centroid[:, 0] - centroid[:, 1], axis=-1)  # NaN where a track is silent
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(dist, -1)


def _nanmean(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def music_metrics(
    rolls: np.ndarray,
    track_names: Sequence[str],
    steps_per_bar: int = 16,
    steps_per_beat: int = 4,
    lowest_pitch: int = 36,
    min_note_steps: int = 2,
) -> dict[str, dict[str, float]]:
    """The five metrics of `MUSIC_METRICS` over a set of pieces (pieces, tracks, steps, pitches):
    metric -> {track name (or "a-b" for tonal distance): mean over the pieces, "mean": over the
    tracks (pairs)}. Means skip NaN (a silent track has no pitch classes, notes or harmony)."""
    r = _pieces(rolls)
    if r.shape[1] != len(track_names):
        raise ValueError(f"{r.shape[1]} tracks but {len(track_names)} names")
    per_track = {
        "empty_bars": empty_bar_rate(r, steps_per_bar),
        "pitch_classes_per_bar": pitch_classes_per_bar(r, steps_per_bar, lowest_pitch),
        "qualified_notes": qualified_note_rate(r, min_note_steps),
        "polyphony": polyphony_rate(r),
    }
    out: dict[str, dict[str, float]] = {}
    for name, values in per_track.items():
        means = _nanmean(values, 0)
        out[name] = {t: float(v) for t, v in zip(track_names, means, strict=True)}
        out[name]["mean"] = float(_nanmean(means))
    pairs = [(i, j) for i in range(len(track_names)) for j in range(i + 1, len(track_names))]
    td = {
        f"{track_names[i]}-{track_names[j]}": float(_nanmean(tonal_distance(r, i, j, steps_per_beat, lowest_pitch)))
        for i, j in pairs
    }
    td["mean"] = float(_nanmean(np.array(list(td.values()))))
    out["tonal_distance"] = td
    return out


def music_metric_gap(generated: dict[str, dict[str, float]], reference: dict[str, dict[str, float]]) -> float:
    """One number for how far generated pieces are from reference pieces on the five metrics
    (lower is better; 0 = the same means): the mean over the metrics of |generated - reference|
    of their track means, as a relative error for pitch classes per bar and tonal distance (whose
    scales differ) and as a plain difference of shares for the three rates (whose chorale values
    can be 0). A metric that is NaN on either side (e.g. no note at all) counts as 1."""
    pairs = [(name, generated[name]["mean"], reference[name]["mean"]) for name in MUSIC_METRICS]
    return _mean_gap(pairs, relative={"pitch_classes_per_bar", "tonal_distance"})


def _mean_gap(pairs: list[tuple[str, float, float]], relative: set[str]) -> float:
    """The mean over (name, generated, reference) of |generated - reference|, relative to the reference for
    the `relative` names (counts whose scales differ), plain for the others (shares that can be 0); a NaN on
    either side counts as 1."""
    gaps = []
    for name, g, r in pairs:
        if not (np.isfinite(g) and np.isfinite(r)):
            gaps.append(1.0)
        elif name in relative:
            gaps.append(abs(g - r) / max(abs(r), 1e-9))
        else:
            gaps.append(abs(g - r))
    return float(np.mean(gaps))


# ---- music: harmony as a teacher marks it (the Music tab's harmoniser, issue "Music v2") ------------
# Over 4-voice pieces (pieces, voices, steps, pitches), soprano first and bass last, at 16th steps. A
# voice's line is its highest sounding note at each step (the bass's: its lowest), -1 where it rests.
# Each figure pools every step (or move) of every piece, so a set's value is not a mean of ratios.
CONSONANT_INTERVALS = (0, 3, 4, 7, 8, 9)  # interval classes (semitones mod 12): unison/octave, thirds, fifth, sixths
PERFECT_INTERVALS = (0, 7)  # unison/octave and fifth: the ones two voices must not move in together
HARMONY_METRICS = ("bass_consonance", "pitch_classes_together", "parallel_fifths_octaves", "notes_at_once")


def voice_lines(rolls: np.ndarray, lowest_pitch: int) -> np.ndarray:
    """(pieces, voices, steps) MIDI pitch of each voice at each step, -1 where it is silent: the
    voice's highest note, the last voice's (the bass's) lowest."""
    r = _pieces(rolls)
    p = r.shape[-1]
    top = p - 1 - np.argmax(r[..., ::-1], axis=-1)
    bottom = np.argmax(r, axis=-1)
    line = np.where(np.arange(r.shape[1])[None, :, None] == r.shape[1] - 1, bottom, top) + lowest_pitch
    return np.where(r.any(-1), line, -1)


def bass_consonance(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per piece (consonant steps, steps where soprano and bass both sound): consonant = their
    interval class is in CONSONANT_INTERVALS. `lines` from `voice_lines`."""
    s, b = lines[:, 0], lines[:, -1]
    both = (s >= 0) & (b >= 0)
    good = both & np.isin((s - b) % 12, CONSONANT_INTERVALS)
    return good.sum(-1), both.sum(-1)


def pitch_classes_together(rolls: np.ndarray, lowest_pitch: int) -> tuple[np.ndarray, np.ndarray]:
    """Per piece (sum over sounding steps of the distinct pitch classes of all voices' notes, the
    number of steps where any voice sounds): their ratio is the mean size of the sounding chord."""
    r = _pieces(rolls)
    chroma = _chroma(r.any(1), lowest_pitch) > 0  # (pieces, steps, 12)
    counts = chroma.sum(-1)
    return counts.sum(-1), (counts > 0).sum(-1)


def parallel_moves(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per piece (consecutive fifths or octaves, moves together) over every pair of voices: a move
    together is a step at which both voices of a pair change pitch (both sounding before and
    after); it is a consecutive fifth or octave when their interval class is the same perfect
    interval (PERFECT_INTERVALS) before and after, in similar or contrary motion (a teacher marks both)."""
    a_idx, b_idx = np.triu_indices(lines.shape[1], 1)
    x, y = lines[:, a_idx], lines[:, b_idx]  # (pieces, pairs, steps)
    sounding = (x[..., 1:] >= 0) & (x[..., :-1] >= 0) & (y[..., 1:] >= 0) & (y[..., :-1] >= 0)
    moves = sounding & (x[..., 1:] != x[..., :-1]) & (y[..., 1:] != y[..., :-1])
    before, after = (x[..., :-1] - y[..., :-1]) % 12, (x[..., 1:] - y[..., 1:]) % 12
    bad = moves & (before == after) & np.isin(after, PERFECT_INTERVALS)
    return bad.sum((1, 2)), moves.sum((1, 2))


def notes_at_once(rolls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (piece, voice) (notes summed over the steps where the voice sounds, those steps): their
    ratio is how many notes a voice sounds at once, 1 for a sung line."""
    count = _pieces(rolls).sum(-1)
    return count.sum(-1), (count > 0).sum(-1)


def harmony_metrics(rolls: np.ndarray, lowest_pitch: int, voices: Sequence[int] | None = None) -> dict[str, float]:
    """The four figures of HARMONY_METRICS over a set of 4-voice pieces, each pooled over all of
    them: the share of steps where soprano and bass are consonant; the mean number of distinct
    pitch classes sounding together; the share of moves together (any two voices) that are
    consecutive fifths or octaves; the notes a voice sounds at once, over `voices` (default all;
    the harmoniser's are the three it writes). NaN where nothing was there to count."""
    r = _pieces(rolls)
    lines = voice_lines(r, lowest_pitch)
    voices = list(range(r.shape[1])) if voices is None else list(voices)

    def ratio(num: np.ndarray, den: np.ndarray) -> float:
        return float(num.sum() / den.sum()) if den.sum() else float("nan")

    notes, steps = notes_at_once(r)
    return {
        "bass_consonance": ratio(*bass_consonance(lines)),
        "pitch_classes_together": ratio(*pitch_classes_together(r, lowest_pitch)),
        "parallel_fifths_octaves": ratio(*parallel_moves(lines)),
        "notes_at_once": ratio(notes[:, voices], steps[:, voices]),
    }


def harmony_gap(generated: dict[str, float], reference: dict[str, float]) -> float:
    """One number for how far generated harmony is from reference harmony on HARMONY_METRICS (lower
    is better): the mean of |generated - reference|, relative for pitch classes together and notes
    at once (counts), plain for the two shares. NaN on either side counts as 1."""
    pairs = [(name, generated[name], reference[name]) for name in HARMONY_METRICS]
    return _mean_gap(pairs, relative={"pitch_classes_together", "notes_at_once"})


# ---- Edges → Photo: colour (CIELAB) and the checkerboard of stride-2 upsampling -------------------
def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (..., 3) -> CIELAB (..., 3) float64 (D65 white; L 0-100), OpenCV's conversion."""
    import cv2

    rgb = np.asarray(rgb, dtype=np.uint8)
    flat = rgb.reshape(1, -1, 3).astype(np.float32) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(rgb.shape).astype(np.float64)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (..., 3) -> sRGB uint8 (..., 3), out-of-gamut values clipped."""
    import cv2

    lab = np.asarray(lab, dtype=np.float32)
    rgb = cv2.cvtColor(lab.reshape(1, -1, 3), cv2.COLOR_Lab2RGB).reshape(lab.shape)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def delta_e(rgb_a: np.ndarray, rgb_b: np.ndarray) -> np.ndarray:
    """CIE 1976 colour difference ΔE*ab between sRGB uint8 colours (..., 3): the Euclidean distance in
    CIELAB. About 2.3 is a just-noticeable difference; 10 or more reads as another shade."""
    return np.sqrt(((rgb_to_lab(rgb_a) - rgb_to_lab(rgb_b)) ** 2).sum(-1))


def _grey(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float64)
    return x @ np.array([0.299, 0.587, 0.114]) if x.ndim == 4 else x


def checkerboard(images: np.ndarray) -> np.ndarray:
    """Strength of the period-2 pattern a stride-2 transposed convolution prints (the checkerboard),
    per image, in grey levels (0-255), for uint8 (N, H, W, 3) or (N, H, W) with H, W even.

    The luma's four 2x2 phases (pixels (i, j) with the same i mod 2, j mod 2) are averaged over the
    whole image; the pattern is those four means less the image mean, i.e. exactly the image's
    Fourier energy at the Nyquist frequencies (pi, 0), (0, pi) and (pi, pi). Returned: its root mean
    square. The whole image, not tiles: measured on edges2photo outputs the artefact keeps its sign
    across the picture, while in 16-32 px tiles ordinary edges swamp it. Real photos are not zero
    (fine texture, JPEG), so compare against them; `nyquist_spike` is the scale-free view."""
    x = _grey(images)
    n, h, w = x.shape
    phases = x.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # (n, 2, 2)
    return np.sqrt(((phases - phases.mean(axis=(1, 2), keepdims=True)) ** 2).mean(axis=(1, 2)))


def nyquist_spike(images: np.ndarray, radius: int = 3) -> float:
    """A set's mean power spectrum (luma, each image's mean removed) at the three Nyquist bins over
    its mean in the (2 radius + 1)² bins around each of them (the bin itself left out), averaged over
    the three. Natural photos have a smooth spectrum there (about 1); a periodic period-2 artefact
    is a spike (> 1), whatever the picture's content."""
    x = _grey(images)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(x)) ** 2).mean(0)
    h, w = power.shape
    ratios = []
    for ky, kx in ((h // 2, w // 2), (h // 2, 0), (0, w // 2)):
        around = np.roll(power, (radius - ky, radius - kx), axis=(0, 1))[: 2 * radius + 1, : 2 * radius + 1]
        ratios.append(power[ky, kx] / ((around.sum() - power[ky, kx]) / (around.size - 1)))
    return float(np.mean(ratios))


def texture(images: np.ndarray, masks: np.ndarray | None = None, sigma: float = 2.0) -> np.ndarray:
    """How much fine detail a picture has, per image, in grey levels: the RMS of the luma less its
    Gaussian blur (`sigma` px) over the pixels of `masks` (N, H, W; all pixels if None). A flat
    shape scores near 0 inside its outline; laces, seams, stitching and shading score more."""
    import cv2

    x = _grey(images).astype(np.float32)
    out = []
    for i, grey in enumerate(x):
        high = grey - cv2.GaussianBlur(grey, (0, 0), sigma)
        where = np.ones(grey.shape, bool) if masks is None else np.asarray(masks[i]) > 0
        out.append(float(np.sqrt((high[where] ** 2).mean())) if where.any() else 0.0)
    return np.asarray(out)
