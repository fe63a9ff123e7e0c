"""4x Upscale: an SRResNet (trained for PSNR, `psnr`) or an SRGAN (fine-tuned from it with a perceptual
and an adversarial loss, `gan`) makes any picture four times larger.

One way through the model, for the app, training's sample grids and in-run evaluation, and the
offline evaluation alike: `upscale_bands(G, rgb)`, uint8 (H, W, 3) -> the uint8 (4H, 4W, 3) result
band by band (`upscale_array` puts the bands into one array; the app pastes them into its PIL
picture). It cuts the picture into overlapping tiles so that memory stays bounded whatever the size:
- each tile is at most TILE x TILE input pixels and shares OVERLAP pixels with its neighbours; the
  tiles along a side are equal and as small as covering it allows (`tile_spans`), since every
  pixel run twice costs time; each is run with CONTEXT more pixels of real picture on every side
  (cut off again after), so the model sees nearly what it would see untiled
  (`SRResNet.receptive_radius` pixels would make it exact);
- the tiles' outputs are blended with linear ramps across the shared band, so whatever
  difference remains fades from one tile to the next instead of showing as a seam;
- output rows are handed out as uint8 as soon as no later tile touches them: the float buffers
  hold one band of tiles, never the whole picture. Peak memory is then the network's work on one
  tile plus the output pictures themselves (benchmarks/superres_speed.py measures it for a
  2000x2000 input). The network's own peak grows with the tile's area (measured, 48 channels, one
  thread: 177 MB for 160x160 input pixels, 368 MB for 224x224, 608 MB for 288x288) and its time
  per pixel does not (~35 us). TILE = 176 (208 with context) still cuts a 256-px side into 2 tiles
  and a 2000x2000 upscale peaks at 1.36 GB (measured; the aim is 1.5 GB).
A picture of at most TILE x TILE pixels is one tile, i.e. the plain untiled network.

`upscale(G, image)` is what a user gets: any decodable picture (any mode, EXIF orientation
applied) of at least MIN_SIDE and at most MAX_INPUT_PIXELS pixels -> the 4x picture in the input's
kind (grey stays grey; alpha is enlarged separately, by bicubic) and the bicubic 4x beside it.
`quality_check(G, image)` shrinks the picture 4x by the papers' protocol, upscales it back with
bicubic and with the model, and measures both against the picture (gandemo.metrics: PSNR and SSIM
on the luma Y, 4-px border shaved).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from gandemo import metrics
from gandemo.imaging import ImageInputError, load_image_with_alpha
from gandemo.tasks import TASKS
from gandemo.validation import InvalidInput, as_bool, shown

SCALE = 4
VARIANTS = TASKS["superres"].variants  # ("gan", "psnr"): the first is the default
# The pixel cap of an upload: 2048 x 2048 = 4.2 MP in, 67 MP (8192 x 8192) out. The output alone
# is 201 MB as 8-bit RGB, and the model takes minutes for it on one core; the decoder's general
# 16 MP cap would mean 805 MB out. The tiles keep the model's own memory small at any size.
MAX_INPUT_PIXELS = 2048 * 2048
MIN_SIDE = 8  # smaller pictures are refused: 4x of a few pixels says nothing
MIN_CHECK_SIDE = 32  # the quality check shrinks 4x (to >= 8 px), then shaves 4 px off each border
TILE = 176  # input pixels per tile side, at most (see the module's docstring for why 176)
OVERLAP = 16  # input pixels neighbouring tiles share, blended linearly
CONTEXT = 16  # extra input pixels around each tile, cut off after the network

Progress = Callable[[int, int], None]  # (tiles done, tiles in all)


def check_variant(value: Any) -> str:
    """A variant name ("gan" or "psnr"), else InvalidInput in plain words."""
    if not isinstance(value, str) or value not in VARIANTS:
        raise InvalidInput(f"variant must be one of {', '.join(VARIANTS)}, got {shown(value)}")
    return value


def check_flag(value: Any, name: str) -> bool:
    """A yes/no input: True/False, 1/0 or "true"/"false" (any case), else InvalidInput."""
    return as_bool(value, name)


# ---- the model, tile by tile ------------------------------------------------------------------------
@torch.inference_mode()
def render(G: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """The network itself: low resolution (N, 3, h, w) in [-1, 1] -> (N, 3, 4h, 4w) in [-1, 1],
    float on the CPU. G runs in eval mode (BatchNorm with its running statistics), so a pixel
    depends on its own neighbourhood only, never on the rest of the batch or of the picture."""
    was_training = G.training
    device = next(G.parameters()).device
    G.eval()
    try:
        x = lr.to(device).contiguous(memory_format=torch.channels_last)
        return G(x).float().clamp_(-1, 1).cpu()
    finally:
        G.train(was_training)


def tile_spans(length: int, tile: int = TILE, overlap: int = OVERLAP) -> list[tuple[int, int]]:
    """The tiles along one side as (start, end): the fewest tiles of at most `tile` pixels that cover
    `length` while sharing at least `overlap` pixels with their neighbours, all the same size (as
    small as that allows) and spread evenly, so no pixel is run through the network more often
    than it must be (a 256-px side is 2 tiles of 136, not 3 of 128)."""
    if tile <= overlap:
        raise ValueError(f"the tile ({tile}) must be larger than the overlap ({overlap})")
    if length <= tile:
        return [(0, length)]
    n = -(-(length - overlap) // (tile - overlap))  # ceil: n tiles of `tile` share `overlap` each
    size = -(-(length + (n - 1) * overlap) // n)  # ceil: the smallest equal tiles that still do
    return [(start, start + size) for start in (round(i * (length - size) / (n - 1)) for i in range(n))]


def _ramp(n: int, ramp_in: int, ramp_out: int) -> np.ndarray:
    """Blending weights of one tile along one side: rising over the first `ramp_in` pixels and
    falling over the last `ramp_out` (0 = no neighbour there), 1 between; never 0."""
    w = np.ones(n, np.float32)
    i = np.arange(n, dtype=np.float32)
    if ramp_in:
        w = np.minimum(w, (i + 0.5) / ramp_in)
    if ramp_out:
        w = np.minimum(w, (n - i - 0.5) / ramp_out)
    return w


def upscale_bands(
    G: nn.Module,
    rgb: np.ndarray,
    tile: int = TILE,
    overlap: int = OVERLAP,
    context: int = CONTEXT,
    progress: Progress | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """The model's 4x of a uint8 (H, W, 3) picture in overlapping blended tiles (see the module's
    docstring), handed out top to bottom as (first output row, uint8 rows (n, 4W, 3)) as soon as no
    later tile reaches those rows. `progress(done, total)` is called after each tile."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB array (H, W, 3), got shape {rgb.shape}")
    h, w = rgb.shape[:2]
    s = SCALE
    ys, xs = tile_spans(h, tile, overlap), tile_spans(w, tile, overlap)
    total, done = len(ys) * len(xs), 0
    ramp = s * overlap
    carry: tuple[np.ndarray, np.ndarray] | None = None  # rows the previous band shares with this one
    for r, (y0, y1) in enumerate(ys):
        acc = np.zeros((s * (y1 - y0), s * w, 3), np.float32)
        wsum = np.zeros((s * (y1 - y0), s * w), np.float32)
        if carry is not None:
            acc[: len(carry[0])] += carry[0]
            wsum[: len(carry[1])] += carry[1]
        wy = _ramp(s * (y1 - y0), ramp if r > 0 else 0, ramp if r < len(ys) - 1 else 0)
        for c, (x0, x1) in enumerate(xs):
            cy0, cy1, cx0, cx1 = max(0, y0 - context), min(h, y1 + context), max(0, x0 - context), min(w, x1 + context)
            lr = torch.from_numpy(rgb[cy0:cy1, cx0:cx1].copy()).permute(2, 0, 1)[None].float().div_(127.5).sub_(1.0)
            sr = render(G, lr)[0].permute(1, 2, 0).numpy()
            sr = sr[s * (y0 - cy0) : s * (y1 - cy0), s * (x0 - cx0) : s * (x1 - cx0)]
            wx = _ramp(s * (x1 - x0), ramp if c > 0 else 0, ramp if c < len(xs) - 1 else 0)
            weight = wy[:, None] * wx[None, :]
            acc[:, s * x0 : s * x1] += sr * weight[..., None]
            wsum[:, s * x0 : s * x1] += weight
            done += 1
            if progress is not None:
                progress(done, total)
        # rows above the next band's first row are final: no later tile reaches them
        final = s * ((ys[r + 1][0] if r + 1 < len(ys) else h) - y0)
        band = acc[:final]  # turned into pixels in place: a 2000-px-wide band is ~50 MB of floats
        np.divide(band, wsum[:final, :, None], out=band)
        band += 1.0
        band *= 127.5
        np.clip(np.rint(band, out=band), 0, 255, out=band)
        yield s * y0, band.astype(np.uint8)
        # copies of the shared rows, so this band's buffers are freed before the next band's exist
        carry = (acc[final:].copy(), wsum[final:].copy())
        del acc, wsum, band


def upscale_array(
    G: nn.Module,
    rgb: np.ndarray,
    tile: int = TILE,
    overlap: int = OVERLAP,
    context: int = CONTEXT,
    progress: Progress | None = None,
) -> np.ndarray:
    """The one way pictures are upscaled: uint8 (H, W, 3) -> uint8 (4H, 4W, 3), in overlapping
    blended tiles (`upscale_bands`). `progress(done, total)` is called after each tile."""
    h, w = np.shape(rgb)[:2]
    out = np.empty((SCALE * h, SCALE * w, 3), np.uint8)
    for y, rows in upscale_bands(G, rgb, tile, overlap, context, progress):
        out[y : y + len(rows)] = rows
    return out


def bicubic_array(image: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """The reference: a uint8 (H, W[, C]) picture enlarged `scale` times by bicubic interpolation."""
    return metrics.bicubic_resize(image, (image.shape[1] * scale, image.shape[0] * scale))


def _model_upscale(G: nn.Module, colour: np.ndarray, progress: Progress | None = None) -> Image.Image:
    """The model's 4x of an RGB (H, W, 3) or a greyscale (H, W) picture as a PIL image, filled band
    by band (no second full-size copy); grey comes back grey (the model sees R = G = B; its
    output's luma is kept, by PIL's ITU-R 601 weights)."""
    grey = colour.ndim == 2
    rgb = np.repeat(colour[..., None], 3, axis=2) if grey else colour
    out = Image.new("L" if grey else "RGB", (SCALE * colour.shape[1], SCALE * colour.shape[0]))
    for y, rows in upscale_bands(G, rgb, progress=progress):
        band = Image.fromarray(rows)
        out.paste(band.convert("L") if grey else band, (0, y))
    return out


# ---- what the app calls -----------------------------------------------------------------------------
@dataclass
class Upscaled:
    image: Image.Image  # the model's 4x picture, in the input's kind: L, LA, RGB or RGBA
    bicubic: Image.Image  # the bicubic 4x picture, the same size and mode


def decode(image: Any, min_side: int = MIN_SIDE) -> tuple[Image.Image, Image.Image | None]:
    """Any picture -> (colour "L" or "RGB", alpha "L" or None), checked: decodable, at most
    MAX_INPUT_PIXELS (refused before decoding), at least `min_side` pixels on each side."""
    colour, alpha = load_image_with_alpha(image, max_pixels=MAX_INPUT_PIXELS)
    w, h = colour.size
    if min(w, h) < min_side:
        raise ImageInputError(f"the image is {w}x{h}; at least {min_side}x{min_side} pixels are needed")
    return colour, alpha


def upscale(G: nn.Module, image: Any, progress: Progress | None = None) -> Upscaled:
    """Any picture (path, bytes, PIL, array; any mode; EXIF orientation applied) -> its 4x enlargement
    by the model and by bicubic. Grey stays grey, an alpha channel is enlarged by bicubic and kept."""
    colour, alpha = decode(image)
    # no more full-size copies than needed: the model's picture is filled band by band, and bicubic is
    # made by PIL directly (the same filter as bicubic_array, without its numpy copy)
    model = _model_upscale(G, np.asarray(colour), progress)
    bicubic = colour.resize(model.size, Image.Resampling.BICUBIC)
    if alpha is not None:
        big_alpha = alpha.resize(model.size, Image.Resampling.BICUBIC)
        model.putalpha(big_alpha)  # L -> LA, RGB -> RGBA
        bicubic.putalpha(big_alpha)
    return Upscaled(model, bicubic)


def quality_check(G: nn.Module, image: Any) -> dict[str, dict[str, float]]:
    """Shrink the picture 4x (bicubic, after cropping it to a multiple of 4), upscale it back by
    bicubic and by the model, and measure both against the picture: {"bicubic": {"psnr_y",
    "ssim_y"}, "model": {...}} (gandemo.metrics: luma Y, 4-px border shaved; alpha ignored)."""
    colour, _ = decode(image, MIN_CHECK_SIDE)
    hr = metrics.modcrop(np.asarray(colour))
    lr = metrics.bicubic_downscale(hr)
    result = {}
    for name, sr in (("bicubic", bicubic_array(lr)), ("model", np.asarray(_model_upscale(G, lr)))):
        result[name] = {"psnr_y": metrics.psnr_y(sr, hr), "ssim_y": metrics.ssim_y(sr, hr)}
    return result
