"""The one image decoder and the tensor <-> picture conversions every task shares.

`load_image` accepts whatever a user or a dataset hands us (a path, bytes, a file object, a PIL
image, a numpy array) in any mode (L, LA, P, RGB, RGBA, CMYK, I;16, ...), applies the EXIF
orientation, takes the first frame of an animation, flattens transparency onto a background and
refuses pictures that are empty, unreadable or larger than a stated pixel cap. `open_image` does
the same checks and keeps the picture's own mode; `load_image_with_alpha` keeps grey as grey and
hands back the transparency separately (the 4x upscaler enlarges it on its own).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gandemo.validation import InvalidInput, shown

DEFAULT_MAX_PIXELS = 16_000_000  # ~16 MP: a 4000x4000 photo; bigger uploads are refused up front
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


class ImageInputError(InvalidInput):
    """The input is not a usable picture; the message says what is wrong and what is allowed."""


def _open(source: Any) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8:
            if np.issubdtype(arr.dtype, np.floating) and np.isfinite(arr).all() and arr.max() <= 1.0:
                arr = arr * 255.0
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
            raise ImageInputError(f"an image array must be HxW, HxWx3 or HxWx4, got {arr.shape}")
        return Image.fromarray(arr.squeeze(2) if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        if not Path(source).is_file():
            raise ImageInputError(f"no image file at {shown(str(source), 80)}")
    elif not hasattr(source, "read"):  # a number, a list, a dict without a file...: not a picture at all
        raise ImageInputError(
            f"expected a picture (an uploaded PNG, JPEG, WebP, BMP, GIF or TIFF file), got {shown(source)}"
        )
    return Image.open(source)


def open_image(source: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode `source` into a PIL image in its own mode (L, LA, P, RGB, RGBA, I;16, CMYK, ...), or
    raise `ImageInputError` saying why not: the checks, EXIF orientation and first frame of
    `load_image`, without its conversion to RGB (a task that keeps alpha or grey uses this)."""
    if source is None:
        raise ImageInputError("no image was given: upload a PNG, JPEG, WebP, BMP, GIF or TIFF")
    try:
        img = _open(source)
        width, height = img.size
        if width * height > max_pixels:
            raise ImageInputError(
                f"the image is {width}x{height} = {width * height / 1e6:.1f} MP; "
                f"at most {max_pixels / 1e6:.0f} MP is allowed"
            )
        if width < 1 or height < 1:
            raise ImageInputError("the image is empty (0 pixels)")
        if getattr(img, "is_animated", False):
            img.seek(0)
        img = ImageOps.exif_transpose(img) or img
        img.load()
    except ImageInputError:
        raise
    except Image.DecompressionBombError:
        raise ImageInputError(f"the image is too large; at most {max_pixels / 1e6:.0f} MP is allowed") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(
            f"the file is not a readable image ({type(exc).__name__}); upload a PNG, JPEG, WebP, BMP, GIF or TIFF"
        ) from None
    return img


def peek_size(source: Any) -> tuple[int, int] | None:
    """(width, height) from the picture's header alone, without decoding its pixels (before EXIF
    rotation, which keeps the pixel count); None when `source` is not a readable picture (the
    decoder then says why). For choosing a queue before the work, never for checking."""
    try:
        with _open(source) as img:
            return img.size
    except Exception:  # anything unreadable: the real decode answers it in plain words
        return None


def load_image(
    source: Any,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Decode `source` into an RGB PIL image, or raise `ImageInputError` saying why not."""
    return _to_rgb(open_image(source, max_pixels), background)


def load_image_with_alpha(source: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, Image.Image | None]:
    """Decode `source` like `load_image` but keep what it flattens: (colour, alpha). The colour is
    "L" for greyscale sources (1, L, LA, I;16, I, F; 16-bit and integer ones reduced to 8 bits as
    `load_image` does) and "RGB" for every other mode (P, RGB, RGBA, CMYK, ...); the alpha is an
    "L" image for sources with transparency (LA, PA, RGBA, a palette with a transparent entry),
    else None."""
    img = _to_8bit(open_image(source, max_pixels))
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("LA", "PA", "RGBA"):
        grey = img.mode == "LA"
        rgba = img.convert("LA" if grey else "RGBA")
        return rgba.convert("L" if grey else "RGB"), rgba.getchannel("A")
    return img.convert("L" if img.mode in ("1", "L") else "RGB"), None


def _to_8bit(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit / integer / float greyscale: stretch the used range to 8 bits instead of clipping
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        return Image.fromarray(((arr - lo) * scale).astype(np.uint8), "L")
    return img


def _to_rgb(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, background)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in `folder` (or below it), sorted by path, so order is reproducible."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def center_square(img: Image.Image, size: int) -> Image.Image:
    """Crop the central square and resize it to `size` x `size` (Lanczos)."""
    return ImageOps.fit(img, (size, size), method=Image.Resampling.LANCZOS)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float tensor (3, H, W) in [-1, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1).div(127.5).sub(1.0)


def tensor_to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) or (3, H, W) tensor in [-1, 1] -> uint8 array (N, H, W, 3) or (H, W, 3)."""
    x = x.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def tensor_to_pils(x: torch.Tensor) -> list[Image.Image]:
    """(N, 3, H, W) tensor in [-1, 1] -> list of RGB PIL images."""
    return [Image.fromarray(a) for a in tensor_to_uint8(x)]


def make_grid(images: Sequence[Image.Image], ncol: int | None = None, pad: int = 2, fill: int = 255) -> Image.Image:
    """Tile equally sized images into one picture (nearly square unless `ncol` is given)."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    w, h = images[0].size
    ncol = ncol or math.ceil(math.sqrt(len(images)))
    nrow = math.ceil(len(images) / ncol)
    grid = Image.new("RGB", (ncol * w + (ncol + 1) * pad, nrow * h + (nrow + 1) * pad), (fill,) * 3)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        grid.paste(img.convert("RGB"), (pad + c * (w + pad), pad + r * (h + pad)))
    return grid
