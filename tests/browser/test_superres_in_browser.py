"""The 4x Upscale tab in headless Chromium: upload a picture and see the upscaled one and the
before/after slider; click an example and it is upscaled at once."""

from pathlib import Path

import numpy as np
from PIL import Image

_SIZES = "sel => [...document.querySelectorAll(sel + ' img')].map(i => [i.naturalWidth, i.naturalHeight])"


def _open_tab(page):
    page.get_by_role("tab", name="4× Upscale").click()
    page.locator("#superres-input").first.wait_for(timeout=10_000)


def _wait_for_slider(page, size: list[int]) -> None:
    """Until the slider shows two loaded pictures of `size` (bicubic and the model)."""
    page.wait_for_function(
        "size => [...document.querySelectorAll('#superres-slider img')]"
        ".filter(i => i.complete && i.naturalWidth === size[0] && i.naturalHeight === size[1]).length >= 2",
        arg=size,
        timeout=30_000,
    )


def test_an_uploaded_picture_comes_back_four_times_larger_with_the_slider(page, tmp_path: Path):
    yy, xx = np.mgrid[0:30, 0:45]
    picture = np.stack([5 * xx, 8 * yy, 200 - 2 * xx], axis=2).clip(0, 255).astype(np.uint8)
    path = tmp_path / "small.png"
    Image.fromarray(picture).save(path)
    _open_tab(page)
    page.locator("#superres-input input[type=file]").set_input_files(str(path))
    page.locator("#superres-input img").first.wait_for(timeout=10_000)
    page.get_by_role("button", name="Upscale 4×").click()
    _wait_for_slider(page, [180, 120])
    output = page.locator("#superres-output img").first
    output.wait_for(timeout=10_000)
    assert output.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [180, 120]
    page.wait_for_function(
        "() => [...document.querySelectorAll('#superres-file .file-preview, #superres-file a')]"
        ".some(e => (e.innerText || '').includes('.png'))",
        timeout=10_000,
    )


def test_clicking_an_example_upscales_it(page):
    _open_tab(page)
    examples = page.locator("#superres-examples .gallery-item, #superres-examples tbody tr")
    assert examples.count() >= 3
    examples.nth(1).click()
    _wait_for_slider(page, [640, 480])
