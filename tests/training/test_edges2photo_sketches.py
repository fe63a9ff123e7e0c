"""training.sketches: drawn-looking edge maps from a training pair, and the silhouette outlines that
`evaluate` feeds, on shoe photos the tests draw (tests.tasks.test_edges2photo.shoe_photo)."""

import cv2
import numpy as np

from gandemo.tasks.edges2photo import edge_map, foreground_mask, normalise_sketch, prepare_photo
from tests.tasks.test_edges2photo import shoe_photo
from training import sketches


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    photo = np.asarray(prepare_photo(shoe_photo(seed=seed)))
    return edge_map(photo) == 0, photo


def test_the_silhouette_is_the_masks_rim_and_nothing_inside():
    _, photo = _pair()
    mask = foreground_mask(photo).astype(bool)
    sil = sketches.silhouette_sketch(photo) == 0
    assert sil.any() and not (sil & ~mask).any()  # on the shoe's rim, never outside it
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2) > 0
    assert not (sil & inner).any()  # no interior line
    assert np.array_equal(sketches.outline(mask, 1), sketches.outline(mask) & mask)
    # 2 px wide: about twice the recipe's 1-px outline
    assert 1.6 < sil.sum() / sketches.outline(mask, 1).sum() < 2.2
    # through the app's normalise_sketch it becomes 1-px lines like any drawing
    assert np.asarray(normalise_sketch(sketches.silhouette_sketch(photo)).convert("L")).min() == 0


def test_sketchify_draws_thin_lines_around_the_shoe_reproducibly():
    edges, photo = _pair()
    mask = foreground_mask(photo).astype(bool)
    near = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    sparser = 0
    for seed in range(40):
        ink = sketches.sketchify(edges, photo, np.random.default_rng(seed))
        assert ink.dtype == bool and ink.shape == edges.shape and ink.any()
        assert np.array_equal(ink, sketches.sketchify(edges, photo, np.random.default_rng(seed)))
        assert not (ink & ~near).any()  # wobbles and thick pens stay within a few px of the shoe
        core = cv2.erode(ink.astype(np.uint8), np.ones((2, 2), np.uint8), borderValue=0)
        assert core.sum() <= 0.05 * ink.sum()  # thinned to 1 px, as the app thins a drawing
        sparser += int(ink.sum() < 0.9 * edges.sum())
    assert sparser >= 10  # fewer lines than the recipe's map, often


def test_sketchify_drops_interior_lines_sometimes_and_keeps_the_outline():
    edges, photo = _pair(seed=3)
    mask = foreground_mask(photo).astype(bool)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=3) > 0
    interior = [int((sketches.sketchify(edges, photo, np.random.default_rng(s)) & inner).sum()) for s in range(40)]
    assert min(interior) == 0  # outline only
    assert max(interior) > 0  # some interior lines kept
    rim = sketches.outline(mask, 3)
    assert all((sketches.sketchify(edges, photo, np.random.default_rng(s)) & rim).sum() > 50 for s in range(10))


def test_a_photo_without_a_shoe_keeps_its_edges():
    blank = np.full((128, 128, 3), 255, np.uint8)
    edges = np.zeros((128, 128), bool)
    edges[60, 10:100] = True
    assert np.array_equal(sketches.sketchify(edges, blank, np.random.default_rng(0)), edges)
