"""Edges → Photo: a Pix2Pix U-Net turns a shoe's edge map (black lines on white, 128x128) into a photo.

Three ways in, one way through the model:
- `photo_to_edges(photo)` draws a photo's edges with the training data's own recipe (the data's
  PROVENANCE.md, "Photo preparation" and "Edge recipe"), so an uploaded photo lands exactly in
  the distribution the model learnt from;
- `normalise_sketch(sketch)` brings a hand drawing to that distribution: cropped to the drawing,
  scaled and placed where the training shoes sit, lines thinned to 1 px. An input that already
  looks like a training edge map keeps its geometry, so the photo lines up with it pixel for pixel;
- `render(G, edges, colours)` is the one function that runs the generator, for the app, training's
  sample grids and the evaluation alike; `edges_to_photo(G, image, colour)` is sketch -> (edges, photo).

Colour: edges carry none, so a generator trained with `in_channels=7` also takes a colour hint, the
shoe's dominant colour (`shoe_colour`) as three constant planes plus a "given" plane
(`colour_planes`); without a hint (the "given" plane 0) it guesses, as a 3-channel one always does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from gandemo.imaging import load_image, pil_to_tensor, tensor_to_pils
from gandemo.validation import InvalidInput

SIZE = 128  # the model's resolution: training pairs are 128x128 edges | 128x128 photo

# ---- the data's edge recipe (PROVENANCE.md of the edges2shoes_utzap set; its recipe.py) -----------
FG_THR = 238  # a pixel is foreground (shoe) if min(R, G, B) < FG_THR
MASK_MIN_AREA = 30  # mask blobs smaller than this (px) are dropped
MASK_SMOOTH_SIGMA = 1.0
BLUR_SIGMA = 1.2  # Gaussian blur before Canny
CANNY_LO, CANNY_HI = 60, 150
INNER_ERODE_ITERS = 2  # interior edges are kept only inside the mask eroded twice by 3x3
MIN_COMPONENT = 15  # interior edge components smaller than this (px) are dropped

# ---- what training edge maps look like (measured on every 15th/30th of the 4,550 training maps) --
INK_THRESHOLD = 128  # the data's edge halves are JPEGs: lines ~0-40, background ~250-255; split at 128
# Where a training shoe sits in its 128x128 frame: its long side is 123 px (median; 5-95%: 91-128),
# at most ~94 px tall (the source photos are 136x102, padded to a square: a 96-px band), centred
# left-right (median offset 0) and standing on the band's floor (bottom margin: median 17 px).
BOX_W, BOX_H, BOTTOM_MARGIN = 122, 94, 17
# "Looks like a training edge map": 128x128, mostly white (ink 1.5-8.9% of the pixels in the data,
# a photo of a shoe 20%), near-binary (no pixel of the data's maps is mid-grey, 64..192; a shoe
# photo has 5-37% such pixels) and thin (a 2x2 erosion keeps 0.3% of the ink, at most 9%; 2-px
# strokes keep ~68%, photos 41-96%).
LIKE_INK = (0.003, 0.15)
LIKE_MAX_MID_GREY = 0.02
LIKE_MAX_THICK = 0.2
MIN_INK_PIXELS = 10  # fewer dark pixels than this is a blank sketch (stray specks, JPEG noise)
# A photo's own border (before padding) that is more than this fraction not-white has a busy
# background, unlike the data's catalogue photos (white all round; a shoe may touch the sides).
BUSY_BORDER = 0.5
CUT_OUT_SIDE = 256  # GrabCut runs on a copy this size (long side): the edges are made at 128 anyway
CUT_OUT_MARGIN = 0.04  # GrabCut's seed rectangle: the photo less this fraction on each side

_K3 = np.ones((3, 3), np.uint8)


# ---- photo -> edges --------------------------------------------------------------------------------
def busy_background(rgb: np.ndarray) -> bool:
    """Whether a photo (H, W, 3 uint8) stands on something other than the data's plain white:
    more than BUSY_BORDER of its outermost pixels are foreground by the recipe's own test."""
    ring = np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]])
    return float((ring.min(axis=1) < FG_THR).mean()) > BUSY_BORDER


def cut_out(rgb: np.ndarray) -> np.ndarray:
    """The photo with its background painted white, so the recipe sees what the data shows: one
    object on white. GrabCut (Rother, Kolmogorov & Blake, 2004: colour models of object and
    background refined by graph cuts) seeded with the photo less a CUT_OUT_MARGIN frame as
    "maybe object" and the frame as background; the largest object region is kept. Runs on a
    copy whose long side is CUT_OUT_SIDE, its mask scaled back up."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, CUT_OUT_SIDE / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    mx, my = max(1, round(sw * CUT_OUT_MARGIN)), max(1, round(sh * CUT_OUT_MARGIN))
    if sw - 2 * mx < 2 or sh - 2 * my < 2:
        return rgb  # too small to hold an object and a frame of background
    mask = np.zeros((sh, sw), np.uint8)
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means starts are random: the same photo gives the same edges
    cv2.grabCut(small[..., ::-1].copy(), mask, (mx, my, sw - 2 * mx, sh - 2 * my), *models, 5, cv2.GC_INIT_WITH_RECT)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n < 2:
        return rgb  # GrabCut found no object: the recipe sees the photo as it is
    fg = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    fg = cv2.resize(fg.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    return np.where(fg[..., None], rgb, np.uint8(255))


def prepare_photo(image: Any) -> Image.Image:
    """Any photo -> the 128x128 RGB photo the data's right halves are: padded to a square on white
    (centred), then resized with OpenCV's INTER_AREA. A photo on a busy background has it cut
    away first (`cut_out`); the result then says so in `info["cut_out"]`."""
    import cv2

    rgb = np.asarray(load_image(image), dtype=np.uint8)
    busy = busy_background(rgb)
    if busy:
        rgb = cut_out(rgb)
    h, w = rgb.shape[:2]
    s = max(h, w)
    canvas = np.full((s, s, 3), 255, np.uint8)
    y0, x0 = (s - h) // 2, (s - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = rgb
    if s != SIZE:
        canvas = cv2.resize(canvas, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    photo = Image.fromarray(canvas)
    photo.info["cut_out"] = busy
    return photo


def _keep_big(binary: np.ndarray, min_area: int) -> np.ndarray:
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def foreground_mask(rgb: np.ndarray) -> np.ndarray:
    """The recipe's shoe mask of a prepared 128x128 RGB photo (steps 1-5 of the edge recipe): uint8
    (H, W), 1 = shoe. Its inner rim is the edge map's outline."""
    import cv2

    m = (rgb.min(axis=2) < FG_THR).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, _K3)
    m = _keep_big(m, MASK_MIN_AREA).astype(np.uint8)
    # fill holes: the background is what a flood fill reaches from a 1-px frame around the image
    inv = cv2.copyMakeBorder((1 - m).astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    ffmask = np.zeros((inv.shape[0] + 2, inv.shape[1] + 2), np.uint8)
    cv2.floodFill(inv, ffmask, (0, 0), 2)
    m = ((m > 0) | (inv[1:-1, 1:-1] == 1)).astype(np.float32)
    m = cv2.GaussianBlur(m, (0, 0), MASK_SMOOTH_SIGMA) > 0.5  # smooth the jagged boundary
    return m.astype(np.uint8)


def edge_map(rgb: np.ndarray) -> np.ndarray:
    """The data's edge recipe on a prepared (128x128 RGB uint8) photo: uint8 (H, W), 0 = line,
    255 = background. The outline of the shoe's silhouette plus Canny edges inside it."""
    import cv2

    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    m = foreground_mask(rgb)
    outline = (m - cv2.erode(m, _K3)) > 0  # 1-px inner silhouette
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # 0.299 R + 0.587 G + 0.114 B
    grey = cv2.GaussianBlur(grey, (0, 0), BLUR_SIGMA)
    inner = cv2.Canny(grey, CANNY_LO, CANNY_HI) > 0
    inner &= cv2.erode(m, _K3, iterations=INNER_ERODE_ITERS) > 0
    inner = _keep_big(inner, MIN_COMPONENT)
    return np.where(outline | inner, 0, 255).astype(np.uint8)


def photo_to_edges(image: Any) -> Image.Image:
    """Any photo (path, bytes, PIL, array; any mode and size) -> its 128x128 RGB edge map, black
    lines on white, by the training data's recipe. The recipe assumes what the data has, an object
    on a plain white background; a busy background is cut away first (`cut_out`), and the edge
    map's `info["cut_out"]` is then True."""
    photo = prepare_photo(image)
    lines = edge_map(np.asarray(photo))
    if (lines == 0).sum() == 0:
        raise InvalidInput("no edges were found in the photo: use a photo of a shoe on a light, plain background")
    edges = _rgb(lines)
    edges.info["cut_out"] = photo.info["cut_out"]
    return edges


# ---- sketch -> training-like edges -----------------------------------------------------------------
def _rgb(lines: np.ndarray) -> Image.Image:
    return Image.fromarray(np.repeat(lines[..., None], 3, axis=2))


def looks_like_training_edges(grey: np.ndarray) -> bool:
    """Whether a greyscale uint8 image is already an edge map of the training data's kind:
    128x128, mostly white, near-binary, with thin (about 1 px) dark lines."""
    import cv2

    if grey.shape != (SIZE, SIZE):
        return False
    ink = grey < INK_THRESHOLD
    share = float(ink.mean())
    if not LIKE_INK[0] <= share <= LIKE_INK[1]:
        return False
    if float(((grey >= 64) & (grey <= 192)).mean()) > LIKE_MAX_MID_GREY:
        return False
    core = cv2.erode(ink.astype(np.uint8), np.ones((2, 2), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return float(core.sum()) / float(ink.sum()) <= LIKE_MAX_THICK


def normalise_sketch(image: Any) -> Image.Image:
    """A drawing (any size and mode; transparency counts as white) -> a 128x128 RGB edge map like the
    training data's: black 1-px lines on white.

    A training-like edge map (`looks_like_training_edges`) is only binarised: its geometry stays.
    Any other drawing is cropped to its dark strokes, scaled to fit the box a training shoe fills
    (BOX_W x BOX_H, aspect kept), centred left-right and stood on the training shoes' floor
    (BOTTOM_MARGIN px above the bottom edge); small gaps (up to 2 px at 128x128) are closed and the
    strokes thinned to 1 px (skeletonised), whatever the brush width. A white-on-dark drawing is
    read with its colours swapped. A blank drawing raises InvalidInput."""
    import cv2
    from skimage.morphology import skeletonize

    grey = np.asarray(load_image(image).convert("L"))
    if looks_like_training_edges(grey):
        return _rgb(np.where(grey < INK_THRESHOLD, 0, 255).astype(np.uint8))
    ink = grey < INK_THRESHOLD
    if ink.mean() > 0.5:  # more "ink" than paper: light strokes on a dark ground
        ink = ~ink
    if ink.sum() < MIN_INK_PIXELS:
        raise InvalidInput(
            "the sketch is blank: draw the outline of a shoe with dark strokes on white, "
            "or upload an edge map or a photo"
        )
    ys, xs = np.nonzero(ink)
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
    h, w = crop.shape
    scale = min(BOX_W / w, BOX_H / h)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    if scale < 1:
        # INTER_AREA gives each output pixel the share of it that ink covers. A 1-px stroke adds
        # `scale` to the pixels it crosses; split between two, the larger share is >= scale / 2.
        cover = cv2.resize(crop, (tw, th), interpolation=cv2.INTER_AREA)
        lines = cover >= 0.5 * scale
    else:
        lines = cv2.resize(crop, (tw, th), interpolation=cv2.INTER_LINEAR) >= 0.5
    canvas = np.zeros((SIZE, SIZE), np.uint8)
    x0, y0 = (SIZE - tw) // 2, SIZE - BOTTOM_MARGIN - th
    canvas[y0 : y0 + th, x0 : x0 + tw] = lines
    canvas = cv2.morphologyEx(canvas, cv2.MORPH_CLOSE, _K3)
    thin = skeletonize(canvas > 0)
    return _rgb(np.where(thin, 0, 255).astype(np.uint8))


# ---- colour ----------------------------------------------------------------------------------------
COLOUR_PLANES = 4  # a colour-conditioned G's extra input planes: R, G, B of the hint in [-1, 1], "given" (1/0)
AUTOMATIC = "automatic"  # the colour input's "no hint" value (also "", "auto" and None)


def shoe_colour(rgb: np.ndarray) -> np.ndarray:
    """A shoe photo's dominant colour (128x128 RGB uint8 on white) -> RGB uint8 (3,): the median, per
    CIELAB channel, of the shoe's pixels (the recipe's `foreground_mask`, eroded once so the rim
    blended with the white background does not count). The median, not the mean, so a white sole or
    black laces do not pull a red shoe towards pink or brown. The training hint and the colour
    measurement (ΔE) both use it. A photo without foreground: the median of all its pixels."""
    import cv2

    from gandemo.metrics import lab_to_rgb, rgb_to_lab

    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    mask = cv2.erode(foreground_mask(rgb), _K3) > 0
    pixels = rgb[mask] if mask.sum() >= MIN_INK_PIXELS else rgb.reshape(-1, 3)
    return lab_to_rgb(np.median(rgb_to_lab(pixels), axis=0))


def parse_colour(value: Any) -> tuple[int, int, int] | None:
    """The colour input -> an RGB triple, or None for "automatic" (None, "", "automatic", "auto").
    Takes "#rgb", "#rrggbb" (an optional alpha, "#rrggbbaa", is ignored), "rgb(r, g, b)" and
    "rgba(r, g, b, a)" as colour pickers send them; anything else is refused in plain words."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"the colour must be text such as '#8b1a1a' or '{AUTOMATIC}', got {type(value).__name__}")
    text = value.strip().lower()
    if text in ("", "auto", AUTOMATIC):
        return None
    bad = InvalidInput(
        f"the colour must be '#rrggbb' (e.g. '#8b1a1a'), 'rgb(r, g, b)' or '{AUTOMATIC}', got {text[:40]!r}"
    )
    if text.startswith("#"):
        digits = text[1:]
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits)
        if len(digits) not in (6, 8) or any(c not in "0123456789abcdef" for c in digits):
            raise bad
        return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
    if text.startswith(("rgb(", "rgba(")) and text.endswith(")"):
        parts = [p.strip() for p in text[text.index("(") + 1 : -1].split(",")]
        if len(parts) not in (3, 4):
            raise bad
        try:
            rgb = [float(p) for p in parts[:3]]
        except ValueError:
            raise bad from None
        if not all(np.isfinite(c) and 0 <= c <= 255 for c in rgb):
            raise bad
        return tuple(round(c) for c in rgb)  # type: ignore[return-value]
    raise bad


def takes_colour(G: nn.Module) -> bool:
    """Whether a generator was trained with a colour hint (edges + COLOUR_PLANES input planes)."""
    return getattr(G, "in_channels", 3) == 3 + COLOUR_PLANES


def colour_planes(colours: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Colour hints (N, 3) in [-1, 1], a row of NaN = none ("automatic") -> (N, 4, H, W) planes: the
    hint (zeros where none) and a "given" plane of 1 or 0."""
    given = ~torch.isnan(colours).any(dim=1)
    hint = torch.where(given[:, None], colours, torch.zeros_like(colours))
    planes = torch.cat([hint, given[:, None].to(colours.dtype)], dim=1)
    return planes[:, :, None, None].expand(-1, -1, *size)


def colour_tensor(colours: Sequence[Any]) -> torch.Tensor:
    """RGB triples (0-255) or None (automatic) -> (N, 3) float in [-1, 1], NaN rows for None."""
    rows = [[float("nan")] * 3 if c is None else [float(v) / 127.5 - 1.0 for v in c] for c in colours]
    return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), 3)


# ---- the model -------------------------------------------------------------------------------------
def to_batch(images: Sequence[Image.Image]) -> torch.Tensor:
    """RGB PIL images of one size -> float (N, 3, H, W) in [-1, 1] (the model's input)."""
    return torch.stack([pil_to_tensor(img) for img in images])


@torch.inference_mode()
def render(G: nn.Module, edges: torch.Tensor, colours: torch.Tensor | None = None, batch: int = 64) -> torch.Tensor:
    """The one way photos are made (the app, training's sample grids and evaluation all call it):
    edge maps (N, 3, 128, 128) in [-1, 1] -> photos (N, 3, 128, 128) in [-1, 1], float on the CPU.
    `colours` (N, 3) in [-1, 1], NaN rows for "automatic" (`colour_tensor`), are the hints of a
    colour-conditioned G (`takes_colour`); None: automatic for all. A G without a colour input
    refuses a hint.

    G runs in eval mode: BatchNorm uses its (recalibrated) running statistics and dropout is off,
    so a photo depends on its own edges only, never on the rest of the batch, and is reproducible.
    (The paper keeps dropout on at test time as G's noise; in practice G learns to ignore it.)"""
    if takes_colour(G):
        if colours is None:
            colours = torch.full((len(edges), 3), float("nan"))
        edges = torch.cat([edges, colour_planes(colours.to(edges.dtype), edges.shape[2:])], dim=1)
    elif colours is not None and not torch.isnan(colours).all():
        raise InvalidInput("this model was trained without a colour input: leave the colour on automatic")
    was_training = G.training
    device = next(G.parameters()).device
    G.eval()
    try:
        return torch.cat([G(edges[i : i + batch].to(device)).float().cpu() for i in range(0, len(edges), batch)])
    finally:
        G.train(was_training)


def edges_to_photo(G: nn.Module, image: Any, colour: Any = None) -> tuple[Image.Image, Image.Image]:
    """A sketch or an edge map (any size and mode, RGBA allowed) and an optional colour (`parse_colour`:
    "#rrggbb", an RGB triple, or None / "automatic") -> (the edges as the model saw them, the
    photo), both 128x128 RGB."""
    rgb = tuple(int(c) for c in colour) if isinstance(colour, tuple | list) else parse_colour(colour)
    if rgb is not None and (len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb)):
        raise InvalidInput(f"a colour is three numbers from 0 to 255, got {rgb}")
    edges = normalise_sketch(image)
    hint = colour_tensor([rgb]) if rgb is not None else None
    return edges, tensor_to_pils(render(G, to_batch([edges]), hint))[0]


# ---- the tab's example sketches: shoes drawn by this code, never taken from the data set ------------------
SKETCH_CANVAS = (256, 256)  # black 4-px strokes on a white canvas of this size


def _sneaker(d: ImageDraw.ImageDraw) -> None:
    d.line([(28, 196), (226, 196), (238, 184), (236, 170), (214, 152)], fill=0, width=4, joint="curve")  # sole, toe
    d.line([(30, 182), (232, 182)], fill=0, width=4)  # midsole
    d.line([(28, 196), (26, 132), (44, 108), (76, 106), (96, 124), (128, 116)], fill=0, width=4, joint="curve")
    d.line([(128, 116), (168, 132), (214, 152)], fill=0, width=4, joint="curve")  # vamp
    d.line([(96, 124), (122, 160), (168, 170), (214, 152)], fill=0, width=4, joint="curve")  # side panel
    for x in (112, 128, 144, 160):  # laces
        d.line([(x, 118 + (x - 112) // 3), (x + 8, 134 + (x - 112) // 3)], fill=0, width=4)
    d.ellipse([(40, 140), (58, 158)], outline=0, width=4)  # heel logo


def _boot(d: ImageDraw.ImageDraw) -> None:
    d.line([(62, 34), (64, 206), (226, 206), (232, 190), (220, 168), (164, 148), (138, 128)], fill=0, width=4)
    d.line([(138, 128), (132, 34), (62, 34)], fill=0, width=4)  # shaft front, top opening
    d.line([(64, 190), (228, 190)], fill=0, width=4)  # sole
    d.line([(64, 206), (64, 190), (104, 190), (104, 206)], fill=0, width=4)  # heel block
    d.line([(98, 34), (100, 120)], fill=0, width=4)  # zip
    d.line([(132, 90), (150, 146)], fill=0, width=4)  # ankle seam


def _heel(d: ImageDraw.ImageDraw) -> None:
    outline = [(46, 92), (54, 118), (70, 132), (120, 168), (170, 192), (220, 200), (238, 196), (240, 184)]
    d.line(outline + [(226, 172), (190, 158), (150, 140)], fill=0, width=4, joint="curve")  # heel, sole, toe, vamp
    d.line([(150, 140), (100, 124), (70, 104), (46, 92)], fill=0, width=4, joint="curve")  # the opening
    d.line([(56, 124), (60, 210), (70, 210), (74, 136)], fill=0, width=4)  # stiletto
    d.line([(170, 192), (176, 206), (226, 206), (238, 196)], fill=0, width=4, joint="curve")  # sole under the toe


SKETCHES = {"sneaker": _sneaker, "boot": _boot, "high heel": _heel}


def example_sketch(name: str) -> Image.Image:
    """The example sketch `name` (a key of SKETCHES) as a greyscale picture, as the tab writes it."""
    img = Image.new("L", SKETCH_CANVAS, 255)
    SKETCHES[name](ImageDraw.Draw(img))
    return img
