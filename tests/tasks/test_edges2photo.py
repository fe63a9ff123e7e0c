"""Edges → Photo inference on pictures the tests draw: synthetic shoe photos and sketches.

The edge recipe is checked against the data's own `recipe.py` when the shared datasets folder
sits beside the repository (nothing else here reads the data)."""

import importlib.util
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from gandemo.nets.pix2pix import UNetGenerator
from gandemo.tasks import edges2photo as e2p
from gandemo.validation import InvalidInput

RECIPE = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "edges2shoes_utzap" / "recipe.py"

# a shoe's outline in a unit box (x right, y down): sole, toe, vamp, collar, heel; plus a lace line
OUTLINE = [(0.0, 1.0), (1.0, 1.0), (1.0, 0.8), (0.75, 0.55), (0.55, 0.45), (0.45, 0.0), (0.1, 0.0), (0.05, 0.5)]
LACE = [(0.5, 0.5), (0.62, 0.72)]


def shoe_photo(size=(136, 102), colour=(70, 45, 30), seed=0) -> Image.Image:
    """A dark shoe-shaped blob with a light sole and laces, on white, with a little sensor noise."""
    w, h = size
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    box = lambda pts: [(0.08 * w + x * 0.84 * w, 0.2 * h + y * 0.65 * h) for x, y in pts]  # noqa: E731
    d.polygon(box(OUTLINE), fill=colour)
    d.polygon(box([(0.0, 0.9), (1.0, 0.9), (1.0, 1.0), (0.0, 1.0)]), fill=(215, 205, 190))
    d.line(box(LACE), fill=(235, 230, 220), width=max(1, w // 60))
    d.ellipse(box([(0.2, 0.3), (0.32, 0.45)]), fill=(150, 120, 90))
    arr = np.asarray(img, dtype=np.float64) + np.random.default_rng(seed).normal(0, 2.0, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def sketch(canvas=(400, 300), box=(50, 60, 322, 230), width=3, ink=0, paper=255, mode="RGB") -> Image.Image:
    """The shoe outline drawn with a `width`-px pen into `box` (x0, y0, x1, y1) of a blank canvas."""
    img = Image.new("L", canvas, paper)
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = box
    at = lambda pts: [(x0 + x * (x1 - x0), y0 + y * (y1 - y0)) for x, y in pts]  # noqa: E731
    d.line(at([*OUTLINE, OUTLINE[0]]), fill=ink, width=width, joint="curve")
    d.line(at(LACE), fill=ink, width=width)
    if mode == "RGBA":  # a sketchpad composite: strokes opaque, the rest transparent (and black)
        alpha = Image.fromarray(np.where(np.asarray(img) == ink, 255, 0).astype(np.uint8))
        out = Image.new("RGBA", canvas, (0, 0, 0, 0))
        out.paste(Image.new("RGBA", canvas, (ink, ink, ink, 255)), mask=alpha)
        return out
    return img.convert(mode)


def ink_of(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L")) < 128


def near(a: np.ndarray, b: np.ndarray, px: int = 2) -> float:
    """Share of a's ink within `px` pixels (Chebyshev) of b's ink."""
    grown = cv2.dilate(b.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0
    return float((a & grown).sum() / a.sum())


# ---- photo -> edges ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recipe():
    if not RECIPE.is_file():
        pytest.skip(f"the data's recipe.py is not at {RECIPE}")
    spec = importlib.util.spec_from_file_location("edges2shoes_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "size, colour, seed",
    [
        ((136, 102), (70, 45, 30), 0),
        ((300, 200), (20, 60, 140), 1),
        ((90, 160), (160, 30, 40), 2),
        ((128, 128), (90, 90, 90), 3),
    ],
)
def test_photo_to_edges_is_the_datas_recipe_exactly(recipe, size, colour, seed):
    photo = shoe_photo(size, colour, seed)
    ours = e2p.photo_to_edges(photo)
    assert ours.size == (128, 128) and ours.mode == "RGB"
    arr = np.asarray(ours)
    assert (arr == arr[..., :1]).all() and set(np.unique(arr)) == {0, 255}
    theirs = recipe.photo_to_edges(recipe.prepare_photo(np.asarray(photo)))
    assert np.array_equal(arr[..., 0], theirs)
    assert np.array_equal(np.asarray(e2p.prepare_photo(photo)), recipe.prepare_photo(np.asarray(photo)))
    assert 100 < (theirs == 0).sum() < 3000  # a real drawing: outline and interior lines, not noise


def test_photo_to_edges_draws_the_outline_and_the_interior():
    lines = ink_of(e2p.photo_to_edges(shoe_photo()))
    ys, xs = np.nonzero(lines)
    # 136x102 -> padded to 136^2 (17 rows of white above and below) -> 128^2: the shoe in the middle band
    assert ys.min() >= 16 and ys.max() <= 112 and xs.min() < 20 and xs.max() > 108
    mask = e2p.foreground_mask(np.asarray(e2p.prepare_photo(shoe_photo()))).astype(bool)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2) > 0
    assert (lines & inner).sum() > 20  # the sole, lace and eyelet edges inside the silhouette


def on_busy_background(photo: Image.Image, seed: int = 0) -> Image.Image:
    """The shoe photo's white replaced by a busy scene: random coloured tiles with grain."""
    rng = np.random.default_rng(seed)
    w, h = photo.size
    tiles = rng.integers(60, 230, (h // 12 + 1, w // 12 + 1, 3)).repeat(12, 0).repeat(12, 1)[:h, :w]
    scene = np.clip(tiles + rng.normal(0, 12, tiles.shape), 0, 255).astype(np.uint8)
    shoe = np.asarray(photo)
    return Image.fromarray(np.where(shoe.min(axis=2, keepdims=True) < 238, shoe, scene))


def test_a_busy_background_is_cut_away_before_the_recipe():
    plain = shoe_photo(size=(272, 204))
    busy = on_busy_background(plain)
    assert e2p.busy_background(np.asarray(busy)) and not e2p.busy_background(np.asarray(plain))
    edges = e2p.photo_to_edges(busy)
    assert edges.info["cut_out"] is True and e2p.photo_to_edges(plain).info["cut_out"] is False
    lines, truth = ink_of(edges), ink_of(e2p.photo_to_edges(plain))
    raw = e2p.edge_map(np.asarray(busy.resize((128, 96)).crop((0, -16, 128, 112)))) == 0  # the recipe alone
    assert near(lines, truth, px=3) > 0.8  # the shoe's own edges, not the tiles'
    assert near(raw, truth, px=3) < 0.5 and raw.sum() > 2 * lines.sum()  # what the cut-out spares the model
    assert np.array_equal(np.asarray(e2p.photo_to_edges(busy)), np.asarray(edges))  # same photo, same edges


def test_photo_to_edges_takes_any_mode_and_refuses_a_blank_photo():
    photo = shoe_photo()
    assert np.array_equal(np.asarray(e2p.photo_to_edges(photo.convert("RGBA"))), np.asarray(e2p.photo_to_edges(photo)))
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    assert np.array_equal(np.asarray(e2p.photo_to_edges(buf.getvalue())), np.asarray(e2p.photo_to_edges(photo)))
    with pytest.raises(InvalidInput, match="no edges"):
        e2p.photo_to_edges(Image.new("RGB", (200, 150), "white"))


# ---- sketch -> training-like edges -------------------------------------------------------------------
# the same drawing, 1.6x wider than tall, at different positions, scales and pen widths
SKETCHES = {
    "small, thin pen, off-centre": dict(canvas=(200, 200), box=(10, 120, 74, 160), width=1),
    "middle, 3-px pen": dict(canvas=(400, 300), box=(50, 60, 322, 230), width=3),
    "big sketchpad, 12-px brush": dict(canvas=(900, 800), box=(300, 100, 876, 460), width=12),
    "tall canvas, top left, 6-px brush": dict(canvas=(300, 700), box=(5, 5, 285, 180), width=6),
}


@pytest.mark.parametrize("name", SKETCHES)
def test_a_sketch_is_cropped_placed_like_the_training_shoes_and_thinned(name):
    out = e2p.normalise_sketch(sketch(**SKETCHES[name]))
    assert out.size == (128, 128) and out.mode == "RGB"
    assert set(np.unique(np.asarray(out))) == {0, 255}
    lines = ink_of(out)
    ys, xs = np.nonzero(lines)
    left, right, bottom = xs.min(), 127 - xs.max(), 127 - ys.max()
    w, h = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    # the shoe is 1.6x wider than tall: its width fills the training shoes' box, centred, on their floor
    assert abs(w - e2p.BOX_W) <= 2 and h <= e2p.BOX_H, (w, h)
    assert abs(left - right) <= 1 and abs(bottom - e2p.BOTTOM_MARGIN) <= 1, (left, right, bottom)
    # lines 1 px wide like the data's: a 2x2 erosion leaves (almost) nothing
    core = cv2.erode(lines.astype(np.uint8), np.ones((2, 2), np.uint8), borderValue=0)
    assert core.sum() <= 0.02 * lines.sum()
    assert e2p.looks_like_training_edges(np.asarray(out.convert("L")))


def test_the_same_drawing_at_any_position_scale_and_width_gives_the_same_edges():
    maps = {name: ink_of(e2p.normalise_sketch(sketch(**kw))) for name, kw in SKETCHES.items()}
    ref = maps["middle, 3-px pen"]
    for name, lines in maps.items():
        assert near(lines, ref, px=1) > 0.95 and near(ref, lines, px=1) > 0.95, name


def test_a_tall_drawing_fills_the_training_shoes_height():
    out = ink_of(e2p.normalise_sketch(sketch(canvas=(300, 400), box=(100, 20, 200, 380), width=4)))
    ys, xs = np.nonzero(out)
    assert abs((ys.max() - ys.min() + 1) - e2p.BOX_H) <= 2
    assert abs(xs.min() - (127 - xs.max())) <= 1 and abs(127 - ys.max() - e2p.BOTTOM_MARGIN) <= 1


def test_a_training_like_edge_map_keeps_its_geometry():
    edges = e2p.photo_to_edges(shoe_photo())
    assert e2p.looks_like_training_edges(np.asarray(edges.convert("L")))
    assert np.array_equal(np.asarray(e2p.normalise_sketch(edges)), np.asarray(edges))
    # moved into a corner it is still taken as it is: no re-centring, no rescaling
    shifted = Image.fromarray(np.roll(np.asarray(edges), (-12, -6), axis=(0, 1)))
    assert np.array_equal(np.asarray(e2p.normalise_sketch(shifted)), np.asarray(shifted))
    # the data's own form: greyscale, stored as JPEG quality 95 (ringing around the lines)
    buf = io.BytesIO()
    edges.convert("L").save(buf, "JPEG", quality=95)
    assert np.array_equal(np.asarray(e2p.normalise_sketch(buf.getvalue())), np.asarray(edges))
    # and a normalised sketch is a fixed point
    once = e2p.normalise_sketch(sketch())
    assert np.array_equal(np.asarray(e2p.normalise_sketch(once)), np.asarray(once))


def test_what_is_not_training_like():
    grey = np.asarray(e2p.photo_to_edges(shoe_photo()).convert("L"))
    assert not e2p.looks_like_training_edges(np.asarray(shoe_photo((128, 128)).convert("L")))  # a photo
    assert not e2p.looks_like_training_edges(grey[:100, :100])  # not 128x128
    thick = cv2.erode(grey, np.ones((3, 3), np.uint8))  # the same lines, 3 px wide
    assert not e2p.looks_like_training_edges(thick)
    assert not e2p.looks_like_training_edges(np.full((128, 128), 255, np.uint8))


def test_a_transparent_sketchpad_composite_reads_as_strokes_on_white():
    rgba = sketch(mode="RGBA")
    assert rgba.getpixel((0, 0)) == (0, 0, 0, 0)  # transparent black, as sketchpads send it
    expected = np.asarray(e2p.normalise_sketch(sketch()))
    assert np.array_equal(np.asarray(e2p.normalise_sketch(rgba)), expected)
    assert np.array_equal(np.asarray(e2p.normalise_sketch(np.asarray(sketch()))), expected)


def test_light_strokes_on_a_dark_ground_read_like_dark_on_light():
    dark = sketch(ink=255, paper=0)
    assert np.array_equal(np.asarray(e2p.normalise_sketch(dark)), np.asarray(e2p.normalise_sketch(sketch())))


@pytest.mark.parametrize(
    "blank",
    [
        Image.new("RGB", (300, 200), "white"),
        Image.new("RGBA", (300, 200), (0, 0, 0, 0)),  # an untouched sketchpad
        Image.new("L", (128, 128), 200),  # light grey paper, no strokes
    ],
)
def test_a_blank_sketch_is_refused_in_plain_words(blank):
    with pytest.raises(InvalidInput, match="the sketch is blank"):
        e2p.normalise_sketch(blank)


def test_stray_specks_are_blank_too():
    img = Image.new("RGB", (400, 400), "white")
    for xy in [(10, 10), (200, 300), (390, 50)]:
        img.putpixel(xy, (0, 0, 0))
    with pytest.raises(InvalidInput, match="blank"):
        e2p.normalise_sketch(img)


def test_a_non_image_is_refused():
    with pytest.raises(InvalidInput):
        e2p.normalise_sketch(b"not a picture")
    with pytest.raises(InvalidInput):
        e2p.normalise_sketch(None)


# ---- the model ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    return UNetGenerator(ngf=4, max_mult=2).eval()


def test_render_is_per_item_deterministic_and_leaves_the_mode_alone(G):
    edges = e2p.to_batch([e2p.normalise_sketch(sketch(**kw)) for kw in SKETCHES.values()])
    assert edges.shape == (4, 3, 128, 128) and edges.min() == -1 and edges.max() == 1
    G.train()
    out = e2p.render(G, edges, batch=3)
    assert G.training  # restored
    G.eval()
    assert out.shape == (4, 3, 128, 128) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert out.min() >= -1 and out.max() <= 1
    # eval mode: a photo depends on its own edges only, whatever else is in the batch
    assert torch.allclose(e2p.render(G, edges[2:3]), out[2:3], atol=1e-5)
    assert torch.allclose(e2p.render(G, edges, batch=1), out, atol=1e-5)


def test_edges_to_photo_returns_the_edges_the_model_saw_and_the_photo(G):
    edges, photo = e2p.edges_to_photo(G, sketch(mode="RGBA"))
    assert edges.size == photo.size == (128, 128) and edges.mode == photo.mode == "RGB"
    assert np.array_equal(np.asarray(edges), np.asarray(e2p.normalise_sketch(sketch())))
    again = e2p.edges_to_photo(G, sketch(mode="RGBA"))[1]
    assert np.array_equal(np.asarray(photo), np.asarray(again))
    # an uploaded photo goes through photo_to_edges first, and then keeps its geometry
    lines = e2p.photo_to_edges(shoe_photo())
    assert np.array_equal(np.asarray(e2p.edges_to_photo(G, lines)[0]), np.asarray(lines))
