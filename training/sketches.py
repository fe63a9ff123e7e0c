"""Edge maps that look like what people draw, made from a training pair: for Edges → Photo's
sketch-style training inputs and for `evaluate`'s silhouette-only test, one copy for both.

The data's edge maps are the silhouette's outline plus every Canny edge inside it (laces, seams,
stripes). What people draw is sparser and rougher: the outline alone or with a few lines, open
here and there, wobbly, with a thick pen. The app (`gandemo.tasks.edges2photo.normalise_sketch`)
closes gaps of up to 2 px and thins any stroke to 1 px before the model sees it, so every sketch
made here ends the same way (close, then skeletonise): the model trains on what the app gives it.
The geometry stays on the photo (no crop or rescale), so L1 still compares aligned pictures.

All randomness comes from the `numpy.random.Generator` passed in: the trainer seeds one per item
from torch's generator, so a resumed run draws the same sketches.
"""

from __future__ import annotations

import numpy as np

from gandemo.tasks.edges2photo import foreground_mask

_K3 = np.ones((3, 3), np.uint8)
SILHOUETTE_WIDTH = 2  # px: `evaluate`'s outline-only sketches (a person's pen, not the recipe's 1 px)
OUTLINE_ONLY = 0.4  # share of sketches that keep no interior line at all
WOBBLE, THICKEN, GAPS, SIMPLIFY = 0.5, 0.5, 0.3, 0.5  # chance of each roughening, drawn per sketch


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """The inner rim of a (H, W) 0/1 mask, `width` px wide, as bool (width 1 is the recipe's outline)."""
    import cv2

    m = (np.asarray(mask) > 0).astype(np.uint8)
    return (m - cv2.erode(m, _K3, iterations=width, borderType=cv2.BORDER_CONSTANT, borderValue=0)) > 0


def silhouette_sketch(photo: np.ndarray, width: int = SILHOUETTE_WIDTH) -> np.ndarray:
    """What a person draws of a shoe, at its simplest: the outline of the photo's own silhouette (the
    recipe's mask), `width` px wide, no interior line. uint8 (H, W): 0 = line, 255 = paper."""
    return np.where(outline(foreground_mask(photo), width), 0, 255).astype(np.uint8)


def _close_and_thin(ink: np.ndarray) -> np.ndarray:
    """What the app does to every drawing after placing it: close 1-2 px gaps, thin to 1 px."""
    import cv2
    from skimage.morphology import skeletonize

    closed = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_CLOSE, _K3)
    return skeletonize(closed > 0)


def _wobble(ink: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Displace the lines by a smooth random field (a 4x4 grid of offsets up to `amplitude` px,
    interpolated bicubically): the slow wobble of a hand, not pixel noise."""
    import cv2

    h, w = ink.shape
    field = rng.uniform(-amplitude, amplitude, (2, 4, 4)).astype(np.float32)
    dy, dx = (cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in field)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    moved = cv2.remap(ink.astype(np.float32), gx + dx, gy + dy, cv2.INTER_LINEAR, borderValue=0.0)
    return moved > 0.25


def _simplified_outline(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The silhouette as a hand would trace it: its contour simplified to a polygon (Douglas-Peucker,
    tolerance 1-3 px), drawn 1 px wide."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    canvas = np.zeros(mask.shape, np.uint8)
    for c in contours:
        if len(c) >= 3:
            poly = cv2.approxPolyDP(c, float(rng.uniform(1.0, 3.0)), True)
            cv2.polylines(canvas, [poly], True, 1, 1)
    return canvas > 0


def sketchify(edges: np.ndarray, photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A training pair's edge map made to look drawn. `edges`: bool (H, W), True = line (the
    recipe's map); `photo`: its uint8 (H, W, 3) photo, whose recipe mask gives the outline.
    Returns bool (H, W), 1-px lines:
    - the outline (the recipe's 1-px rim, or with `SIMPLIFY` a polygon traced around it);
    - with `OUTLINE_ONLY` no interior line, else each interior line (a connected piece of the
      recipe's Canny lines) kept with one chance drawn per sketch from 15-85 %;
    - then, each with its chance: a wobble (up to 0.5-2.5 px), a thick pen (dilated by 3x3 or 5x5),
      gaps (1-4 bites of 1-2 px out of the lines); closed and thinned as the app does.
    A photo without a shoe (no mask) keeps its edges."""
    import cv2

    mask = foreground_mask(photo)
    if mask.sum() == 0:
        return edges.copy()
    rim = _simplified_outline(mask, rng) if rng.random() < SIMPLIFY else outline(mask)
    ink = rim.copy()
    if rng.random() >= OUTLINE_ONLY:
        interior = edges & (cv2.erode(mask, _K3, iterations=2) > 0)
        n, labels = cv2.connectedComponents(interior.astype(np.uint8), connectivity=8)
        keep = rng.random(n) < rng.uniform(0.15, 0.85)
        keep[0] = False  # the background label
        ink |= keep[labels]
    if rng.random() < WOBBLE:
        ink = _wobble(ink, rng, float(rng.uniform(0.5, 2.5)))
    if rng.random() < THICKEN:
        ink = cv2.dilate(ink.astype(np.uint8), np.ones((int(rng.choice([3, 5])),) * 2, np.uint8)) > 0
    if rng.random() < GAPS:
        ys, xs = np.nonzero(ink)
        canvas = ink.astype(np.uint8)
        for i in rng.choice(len(ys), size=min(len(ys), int(rng.integers(1, 5))), replace=False):
            cv2.circle(canvas, (int(xs[i]), int(ys[i])), int(rng.integers(1, 3)), 0, -1)
        ink = canvas > 0
    thin = _close_and_thin(ink)
    return thin if thin.sum() else edges.copy()
