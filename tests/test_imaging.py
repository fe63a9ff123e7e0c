import io

import numpy as np
import pytest
import torch
from PIL import Image

from gandemo.imaging import (
    ImageInputError,
    load_image,
    load_image_with_alpha,
    make_grid,
    open_image,
    pil_to_tensor,
    tensor_to_pils,
    tensor_to_uint8,
)


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "1"])
def test_every_mode_becomes_rgb(mode: str):
    img = Image.new(mode, (20, 10))
    out = load_image(img)
    assert out.mode == "RGB" and out.size == (20, 10)


def test_transparency_is_flattened_on_white():
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    assert load_image(img).getpixel((0, 0)) == (255, 255, 255)


def test_16_bit_greyscale_keeps_its_contrast():
    arr = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    out = np.asarray(load_image(Image.fromarray(arr)))
    assert out[0, 0, 0] == 0 and out[1, 1, 0] == 255


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (30, 10), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    data = _png_bytes(img, format="JPEG", exif=exif.tobytes())
    assert load_image(data).size == (10, 30)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    r, g, b = load_image(buf.getvalue()).getpixel((2, 2))
    assert r > 200 and b < 50


def test_pixel_cap_refuses_huge_images_before_decoding():
    data = _png_bytes(Image.new("L", (2000, 2000)))
    with pytest.raises(ImageInputError, match="at most 1 MP"):
        load_image(data, max_pixels=1_000_000)


@pytest.mark.parametrize("source", [b"not an image", b"", None, "/no/such/file.png"])
def test_unreadable_input_gives_a_plain_message(source):
    with pytest.raises(ImageInputError, match="image"):
        load_image(source)


def test_numpy_arrays_are_accepted():
    assert load_image(np.zeros((5, 6, 3), np.uint8)).size == (6, 5)
    assert load_image(np.ones((5, 6), np.float32)).getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(ImageInputError):
        load_image(np.zeros((5, 6, 7), np.uint8))


def test_tensor_round_trip_is_exact_for_8_bit_pictures():
    arr = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    t = pil_to_tensor(Image.fromarray(arr))
    assert t.shape == (3, 16, 16) and t.min() >= -1 and t.max() <= 1
    assert np.array_equal(tensor_to_uint8(t), arr)
    assert tensor_to_pils(t[None])[0].size == (16, 16)


def test_grid_tiles_images_with_padding():
    grid = make_grid([Image.new("RGB", (10, 10))] * 5, ncol=3, pad=2)
    assert grid.size == (3 * 10 + 4 * 2, 2 * 10 + 3 * 2)
    with pytest.raises(ValueError):
        make_grid([])


def test_tensor_to_uint8_clamps_out_of_range_values():
    assert tensor_to_uint8(torch.tensor([[[-5.0]], [[0.0]], [[5.0]]])).tolist() == [[[0, 128, 255]]]


@pytest.mark.parametrize(
    "mode, colour, has_alpha",
    [("L", "L", False), ("1", "L", False), ("LA", "L", True), ("I;16", "L", False), ("F", "L", False)]
    + [("RGB", "RGB", False), ("RGBA", "RGB", True), ("P", "RGB", False), ("CMYK", "RGB", False)],
)
def test_with_alpha_keeps_grey_as_grey_and_hands_back_the_transparency(mode: str, colour: str, has_alpha: bool):
    img, alpha = load_image_with_alpha(Image.new(mode, (20, 10)))
    assert img.mode == colour and img.size == (20, 10)
    assert (alpha is not None) == has_alpha
    if alpha is not None:
        assert alpha.mode == "L" and alpha.size == (20, 10)


def test_with_alpha_splits_colour_and_transparency_exactly():
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, np.arange(8, dtype=np.uint8) * 30  # red, alpha rising left to right
    img, alpha = load_image_with_alpha(Image.fromarray(rgba, "RGBA"))
    assert np.array_equal(np.asarray(img), rgba[..., :3]) and np.array_equal(np.asarray(alpha), rgba[..., 3])


def test_with_alpha_reads_a_palette_transparency_and_16_bit_contrast():
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.info["transparency"] = 0  # palette entry 0 is transparent
    img, alpha = load_image_with_alpha(_png_bytes(pal))
    assert img.mode == "RGB" and img.getpixel((1, 1)) == (255, 0, 0)
    assert alpha.getpixel((0, 0)) == 0 and alpha.getpixel((1, 1)) == 255
    grey, none = load_image_with_alpha(Image.fromarray(np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)))
    assert none is None and np.asarray(grey)[0, 0] == 0 and np.asarray(grey)[1, 1] == 255


def test_open_image_keeps_the_mode_and_applies_exif_and_the_cap():
    img = Image.new("L", (30, 10), 7)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    opened = open_image(_png_bytes(img, format="JPEG", exif=exif.tobytes()))
    assert opened.mode == "L" and opened.size == (10, 30)
    with pytest.raises(ImageInputError, match="at most 1 MP"):
        open_image(_png_bytes(Image.new("L", (2000, 2000))), max_pixels=1_000_000)


@pytest.mark.parametrize("source", [[1, 2], 7, {"x": 1}, 2.5])
def test_what_is_not_a_picture_source_at_all_gets_a_plain_message(source):
    with pytest.raises(ImageInputError, match="expected a picture"):
        load_image(source)


def test_peek_size_reads_the_header_only_and_never_raises():
    from gandemo.imaging import peek_size

    big = _png_bytes(Image.new("L", (3000, 2000)))
    assert peek_size(big) == (3000, 2000)
    assert peek_size(b"not a picture") is None and peek_size([1]) is None and peek_size(None) is None
