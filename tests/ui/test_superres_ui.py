"""The 4x Upscale endpoint through gradio_client, on the session's app (tiny untrained SRResNets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from gandemo.tasks import superres
from gandemo.ui import superres as ui


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 37x29 picture (odd sizes) with a gradient, a disc and a dark bar."""
    yy, xx = np.mgrid[0:29, 0:37]
    img = np.stack([40 + 5 * xx, 50 + 6 * yy, 200 - 3 * (xx + yy)], axis=2).astype(np.float64)
    img[(xx - 12) ** 2 + (yy - 14) ** 2 < 36] = (230, 40, 40)
    img[8:10] = 10
    path = tmp_path_factory.mktemp("superres") / "picture.png"
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


def _open(path: str) -> Image.Image:
    return Image.open(path)


def test_upscale_gives_the_picture_first_then_the_slider_the_file_and_the_table(client: Client, picture: Path):
    image, slider, file, table = client.predict(handle_file(str(picture)), "gan", False, api_name="/upscale")
    assert _open(image).size == (148, 116)  # exactly 4x of 37x29
    left, right = slider
    assert _open(left).size == _open(right).size == (148, 116)
    assert np.array_equal(np.asarray(_open(right)), np.asarray(_open(image)))  # the slider's right side is the model
    bicubic = superres.bicubic_array(np.asarray(Image.open(picture).convert("RGB")))
    assert np.array_equal(np.asarray(_open(left).convert("RGB")), bicubic)  # ... its left side bicubic
    assert file.endswith(".png") and np.array_equal(np.asarray(_open(file)), np.asarray(_open(image)))
    assert table["headers"] == ui.QUALITY_HEADERS and table["data"] == []


def test_the_quality_check_fills_the_table_for_bicubic_and_the_model(client: Client, tmp_path: Path):
    rng = np.random.default_rng(0)
    path = tmp_path / "big.png"
    base = np.asarray(Image.fromarray(rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)).resize((70, 60)))
    Image.fromarray(base).save(path)
    _, _, _, table = client.predict(handle_file(str(path)), "psnr", True, api_name="/upscale")
    rows = {row[0]: row[1:] for row in table["data"]}
    assert set(rows) == {"bicubic", "this model"}
    assert all(10 < float(psnr) < 60 and 0 < float(ssim) <= 1 for psnr, ssim in rows.values())


def test_transparency_survives_the_round_trip(client: Client, tmp_path: Path):
    rgba = np.zeros((20, 24, 4), np.uint8)
    rgba[..., 1] = 180
    rgba[..., 3] = np.tile(np.linspace(0, 255, 24).astype(np.uint8), (20, 1))
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image, _, file, _ = client.predict(handle_file(str(path)), "gan", False, api_name="/upscale")
    for out in (_open(image), _open(file)):
        assert out.mode == "RGBA" and out.size == (96, 80)
        assert out.getchannel("A").getpixel((0, 0)) < 20 and out.getchannel("A").getpixel((95, 0)) > 235


def _bad_file(tmp: Path, kind: str) -> Path | None:
    path = tmp / f"{kind}.png"
    if kind == "one_pixel":
        Image.new("RGB", (1, 1), "black").save(path)
    elif kind == "text":
        path.write_text("not a picture, just words")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    elif kind == "huge":  # 2,100 x 2,100 = 4.4 MP, over the 4.2 MP cap (a few kB as a PNG)
        Image.new("L", (2100, 2100), 255).save(path)
    else:
        return None
    return path


@pytest.mark.parametrize(
    "kind, words",
    [
        ("one_pixel", "at least 8x8 pixels"),
        ("text", "not a readable image"),
        ("empty", "not a readable image"),
        ("corrupt", "not a readable image"),
        ("huge", "at most 4 MP is allowed"),
        ("none", "nothing to upscale"),
    ],
)
def test_bad_pictures_get_the_apps_own_message_and_the_next_request_is_served(
    client: Client, tmp_path: Path, picture: Path, kind: str, words: str
):
    bad = _bad_file(tmp_path, kind)
    with pytest.raises(Exception, match=words):
        client.predict(handle_file(str(bad)) if bad else None, "gan", False, api_name="/upscale")
    image, *_ = client.predict(handle_file(str(picture)), "gan", False, api_name="/upscale")
    assert _open(image).size == (148, 116)


@pytest.mark.parametrize(
    "variant, check, words",
    [("srgan", False, "variant must be one of gan, psnr"), ("gan", "maybe", "check_quality must be true or false")],
)
def test_bad_options_get_plain_messages(client: Client, picture: Path, variant, check, words):
    with pytest.raises(Exception, match=words):
        client.predict(handle_file(str(picture)), variant, check, api_name="/upscale")


def test_a_picture_too_small_to_check_says_so(client: Client, picture: Path):
    with pytest.raises(Exception, match="at least 32x32"):
        client.predict(handle_file(str(picture)), "gan", True, api_name="/upscale")  # 37x29


def test_the_examples_are_drawn_by_the_app_and_each_upscales(tmp_path: Path, checkpoint_root: Path, use_checkpoints):
    use_checkpoints(checkpoint_root)
    paths = ui.example_pictures(tmp_path)
    assert len(paths) >= 3
    for path in paths:
        image, (left, right), file, table = ui.upscale(str(path), "psnr", True)
        assert Image.open(image).size == (640, 480) and Image.open(left).size == (640, 480)
        assert len(table["data"]) == 2


def test_how_it_works_matches_the_code_and_names_the_card_settings():
    text = ui.HOW_IT_WORKS
    assert f"{superres.TILE}\\times{superres.TILE}" in text and f"with {superres.CONTEXT} pixels" in text
    assert f"{superres.OVERLAP}-pixel shared" in text and "10^{-3}" in text
    for words in ("content loss", "adversarial term", "Pixel shuffle", "Residual blocks", "VGG19", "TF-Inception"):
        assert words.lower() in text.lower(), words
    card = {
        "variant": "gan",
        "arch": {"G": {"class": "srgan:SRResNet", "kwargs": {"channels": 48, "blocks": 8, "bicubic_skip": True}}},
        "objective": "0.05 x MSE of TF-Inception mixed_2 features + ...",
        "content_loss": "TF-Inception v3 ... mixed_2",
        "hyperparameters": {"batch_size": 16, "crop": 96, "lr": 1e-4, "init": "assets/checkpoints/superres/psnr"},
    }
    settings = ui.model_settings(card)
    assert "8 residual blocks of 48 channels" in settings and "96×96" in settings and "started from" in settings
    assert ui.model_settings({}) == ""


def test_large_upscales_take_the_long_job_slot_and_small_ones_go_past(tmp_path, checkpoint_root, use_checkpoints):
    import threading

    from gandemo.ui.common import HEAVY_SLOT

    use_checkpoints(checkpoint_root)
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    Image.new("RGB", (160, 120), "teal").save(small)
    side = int(ui.HEAVY_UPSCALE_PIXELS**0.5) + 1
    Image.new("RGB", (side, side), "teal").save(large)
    done = threading.Event()
    with HEAVY_SLOT:  # a latent search (or another large upscale) is running
        image, *_ = ui.upscale(str(small), "gan", False)  # a small picture does not wait for it
        assert Image.open(image).size == (640, 480)
        worker = threading.Thread(target=lambda: (ui.upscale(str(large), "psnr", False), done.set()))
        worker.start()
        assert not done.wait(0.5)  # the large one waits for the slot
    worker.join(60)
    assert done.is_set()
