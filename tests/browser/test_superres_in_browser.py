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


_SLIDER = """() => {
    const model = [...document.querySelectorAll('#superres-slider img')].find(i => i.style.clipPath);
    const handle = document.querySelector('#superres-slider [data-testid=slider]');
    return [parseFloat(model.style.clipPath.match(/([\\d.]+)%/)[1]), handle.getBoundingClientRect().x];
}"""


def test_dragging_the_slider_shows_more_of_bicubic_or_of_the_model(page, tmp_path: Path, screenshot):
    path = tmp_path / "stripes.png"
    Image.fromarray(np.tile(np.array([[0], [255]], np.uint8), (20, 40))).save(path)  # 40x40 stripes
    _open_tab(page)
    page.locator("#superres-input input[type=file]").set_input_files(str(path))
    page.locator("#superres-input img").first.wait_for(timeout=10_000)
    page.get_by_role("button", name="Upscale 4×").click()
    _wait_for_slider(page, [160, 160])
    page.locator("#superres-slider").scroll_into_view_if_needed()
    cut, x = page.evaluate(_SLIDER)  # the model's picture is clipped where the handle stands
    box = page.locator("#superres-slider [data-testid=slider]").bounding_box()
    frame = page.locator("#superres-slider img").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(frame["x"] + 0.2 * frame["width"], box["y"] + box["height"] / 2, steps=10)
    page.mouse.up()
    dragged, x_after = page.evaluate(_SLIDER)
    assert x_after < x and dragged < cut - 10  # handle moved left: more of the model's picture shows
    screenshot("superres")


def test_clicking_an_example_upscales_it(page):
    _open_tab(page)
    examples = page.locator("#superres-examples .gallery-item, #superres-examples tbody tr")
    assert examples.count() >= 3
    examples.nth(1).click()
    _wait_for_slider(page, [640, 480])
