"""4x Upscale inference on pictures the tests make, with tiny untrained SRResNets: exact sizes, tiles
against the untiled network, every kind of picture, the quality check, plain errors."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from gandemo import metrics
from gandemo.imaging import ImageInputError
from gandemo.nets.srgan import SRResNet
from gandemo.tasks import superres as sr
from gandemo.validation import InvalidInput


@pytest.fixture(scope="module")
def G() -> SRResNet:
    torch.manual_seed(0)
    return SRResNet(channels=8, blocks=2, bicubic_skip=True).eval()


def photo(w: int = 61, h: int = 47, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with a few sharp shapes and some noise: uint8 (h, w, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([40 + 150 * xx / w, 60 + 120 * yy / h, 200 - 100 * (xx + yy) / (w + h)], axis=2)
    img[(xx - w / 3) ** 2 + (yy - h / 2) ** 2 < (min(w, h) / 5) ** 2] = (230, 40, 40)
    img[h // 4 : h // 4 + 3, :] = 10
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


# ---- checks ------------------------------------------------------------------------------------------
def test_variant_and_flag_checks_accept_what_the_ui_sends_and_refuse_the_rest():
    assert sr.check_variant("gan") == "gan" and sr.check_variant("psnr") == "psnr"
    for bad in ("GAN", "", None, 1):
        with pytest.raises(InvalidInput, match="variant must be one of gan, psnr"):
            sr.check_variant(bad)
    assert sr.check_flag(True, "x") is True and sr.check_flag("false", "x") is False and sr.check_flag(1, "x")
    for bad in ("yes", 2, None, 0.5):
        with pytest.raises(InvalidInput, match="check must be true or false"):
            sr.check_flag(bad, "check")


# ---- tiles -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [1, 5, 128, 129, 240, 241, 256, 700, 2000])
def test_tiles_cover_the_side_share_the_overlap_and_are_no_larger_than_they_must_be(length):
    spans = sr.tile_spans(length, 128, 16)
    assert spans[0][0] == 0 and spans[-1][1] == length
    sizes = {b - a for a, b in spans}
    assert len(sizes) == 1 and max(sizes) <= 128  # equal tiles, at most the tile size
    shared = [a_end - b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False)]
    assert all(s >= 16 for s in shared)
    assert len(spans) == 1 or max(shared) - min(shared) <= 1  # spread evenly
    # the fewest tiles: one fewer could not cover the side with the overlap
    n = len(spans)
    assert n == 1 or (n - 1) * 128 - (n - 2) * 16 < length
    # as small as allowed: one pixel less per tile would not cover it
    assert n == 1 or n * (max(sizes) - 1) - (n - 1) * 16 < length
    with pytest.raises(ValueError):
        sr.tile_spans(100, 16, 16)


def test_a_256_pixel_side_is_cut_into_the_smallest_equal_tiles():
    assert sr.tile_spans(256, 128, 16) == [(0, 96), (80, 176), (160, 256)]
    assert sr.tile_spans(256, 192, 16) == [(0, 136), (120, 256)]


@pytest.mark.parametrize("h, w", [(9, 9), (23, 17), (47, 61)])
def test_the_output_is_exactly_four_times_any_size(G, h, w):
    out = sr.upscale_array(G, photo(w, h), tile=20, overlap=4)
    assert out.shape == (4 * h, 4 * w, 3) and out.dtype == np.uint8


def test_one_tile_is_the_plain_network(G):
    img = photo(30, 22)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        direct = ((G(x).clamp(-1, 1) + 1) * 127.5).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(sr.upscale_array(G, img).astype(float) - direct).max() <= 1  # float rounding only


def test_tiles_with_the_full_receptive_field_equal_the_untiled_result(G):
    img = photo(61, 47)
    untiled = sr.upscale_array(G, img, tile=1000)
    tiled = sr.upscale_array(G, img, tile=20, overlap=6, context=G.receptive_radius)
    assert np.abs(untiled.astype(int) - tiled).max() <= 1


def test_default_tiles_differ_from_the_untiled_result_by_a_level_at_most(G):
    img = photo(230, 200, seed=1)
    untiled = sr.upscale_array(G, img, tile=1000)
    tiled = sr.upscale_array(G, img)  # 2 x 2 tiles of <= 176 px, 16 px of overlap and of context
    assert len(sr.tile_spans(230)) == len(sr.tile_spans(200)) == 2
    diff = np.abs(untiled.astype(int) - tiled)
    assert diff.max() <= 2 and diff.mean() < 0.05


def test_progress_counts_the_tiles(G):
    calls = []
    sr.upscale_array(G, photo(50, 30), tile=20, overlap=4, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 6) for i in range(1, 7)]  # 3 x 2 tiles


def test_render_is_batch_independent_and_leaves_the_mode_alone(G):
    x = torch.rand(3, 3, 10, 12) * 2 - 1
    G.train()
    try:
        together = sr.render(G, x)
        assert G.training
    finally:
        G.eval()
    assert torch.allclose(together[1:2], sr.render(G, x[1:2]), atol=1e-5)
    assert together.abs().max() <= 1


# ---- every kind of picture ---------------------------------------------------------------------------
def test_rgb_gives_the_model_and_bicubic_at_four_times(G):
    out = sr.upscale(G, Image.fromarray(photo(33, 21)))
    assert out.image.mode == out.bicubic.mode == "RGB" and out.image.size == out.bicubic.size == (132, 84)
    assert np.array_equal(np.asarray(out.bicubic), sr.bicubic_array(photo(33, 21)))


def test_rgba_keeps_its_alpha_enlarged_separately(G):
    rgba = np.dstack([photo(30, 20), np.tile(np.linspace(0, 255, 30, dtype=np.uint8), (20, 1))])
    out = sr.upscale(G, png(Image.fromarray(rgba, "RGBA")))
    assert out.image.mode == out.bicubic.mode == "RGBA" and out.image.size == (120, 80)
    expected = Image.fromarray(rgba[..., 3]).resize((120, 80), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(out.image.getchannel("A")), np.asarray(expected))
    assert np.array_equal(np.asarray(out.bicubic.getchannel("A")), np.asarray(expected))
    # the colour is upscaled as if there were no alpha
    plain = sr.upscale(G, Image.fromarray(rgba[..., :3]))
    assert np.array_equal(np.asarray(out.image.convert("RGB")), np.asarray(plain.image))


@pytest.mark.parametrize("mode, expected", [("L", "L"), ("LA", "LA"), ("I;16", "L"), ("1", "L")])
def test_grey_stays_grey(G, mode, expected):
    grey = Image.fromarray(photo(25, 19)).convert("L")
    if mode == "I;16":
        grey = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    elif mode != "L":
        grey = grey.convert(mode)
    out = sr.upscale(G, png(grey))
    assert out.image.mode == out.bicubic.mode == expected and out.image.size == (100, 76)


def test_a_16_bit_picture_is_upscaled_from_the_decoders_8_bit_reduction(G):
    grey = np.asarray(Image.fromarray(photo(20, 16)).convert("L"))
    out16 = sr.upscale(G, png(Image.fromarray(grey.astype(np.uint16) * 257)))
    # the shared decoder stretches a 16-bit picture's used range to 0..255 (gandemo.imaging)
    lo, hi = int(grey.min()), int(grey.max())
    stretched = ((grey.astype(np.float64) - lo) * 255.0 / (hi - lo)).astype(np.uint8)
    out8 = sr.upscale(G, Image.fromarray(stretched))
    assert out16.image.mode == "L" and np.abs(np.asarray(out16.image).astype(int) - np.asarray(out8.image)).max() <= 1


def test_palette_pictures_work_with_and_without_transparency(G):
    pal = Image.fromarray(photo(24, 18)).quantize(16)
    assert sr.upscale(G, png(pal)).image.mode == "RGB"
    pal.info["transparency"] = 0
    out = sr.upscale(G, png(pal, transparency=0))
    assert out.image.mode == "RGBA" and out.image.size == (96, 72)


def test_exif_orientation_is_applied_before_upscaling(G):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    data = png(Image.fromarray(photo(30, 12)), format="JPEG", exif=exif.tobytes())
    assert sr.upscale(G, data).image.size == (48, 120)


@pytest.mark.parametrize(
    "source, words",
    [
        (Image.new("RGB", (1, 1)), "at least 8x8"),
        (Image.new("RGB", (100, 7)), "at least 8x8"),
        (png(Image.new("L", (2100, 2100))), "at most 4 MP"),
        (b"\x89PNG\r\n\x1a\n broken", "not a readable image"),
        (b"just some words", "not a readable image"),
        (None, "no image was given"),
    ],
)
def test_bad_pictures_get_plain_errors(G, source, words):
    with pytest.raises(ImageInputError, match=words):
        sr.upscale(G, source)


# ---- the quality check -------------------------------------------------------------------------------
def test_the_quality_check_measures_bicubic_and_the_model_by_the_protocol(G):
    img = photo(70, 53)
    result = sr.quality_check(G, Image.fromarray(img))
    hr = img[:52, :68]  # cropped to a multiple of 4
    lr = metrics.bicubic_downscale(hr)
    assert result["bicubic"]["psnr_y"] == pytest.approx(metrics.psnr_y(sr.bicubic_array(lr), hr))
    assert result["model"]["psnr_y"] == pytest.approx(metrics.psnr_y(sr.upscale_array(G, lr), hr))
    assert result["model"]["ssim_y"] == pytest.approx(metrics.ssim_y(sr.upscale_array(G, lr), hr))
    assert 15 < result["bicubic"]["psnr_y"] < 60 and 0 < result["bicubic"]["ssim_y"] <= 1


def test_the_quality_check_needs_room_to_shrink(G):
    with pytest.raises(ImageInputError, match="at least 32x32"):
        sr.quality_check(G, Image.fromarray(photo(40, 20)))
    grey = sr.quality_check(G, Image.fromarray(photo(40, 36)).convert("L"))
    assert set(grey) == {"bicubic", "model"}
