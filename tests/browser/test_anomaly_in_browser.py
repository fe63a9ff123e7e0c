"""The Anomaly tab in headless Chromium: upload one of the app's own examples and see the heatmap;
click an example row and it is checked at once."""

from pathlib import Path

from PIL import Image

from gandemo.checkpoint import load_checkpoint
from gandemo.ui.anomaly import example_images

_SRC = "() => document.querySelector('{sel} img')?.getAttribute('src') || ''"


def _open_tab(page):
    page.get_by_role("tab", name="Anomaly").click()
    page.locator("#anomaly-input").first.wait_for(timeout=10_000)


def _wait_for_new_image(page, selector: str, old: str) -> None:
    page.wait_for_function(
        f"old => {{ const i = document.querySelector('{selector} img'); return i && i.complete && i.naturalWidth > 0 "
        "&& i.getAttribute('src') !== old; }",
        arg=old,
        timeout=30_000,
    )


def test_an_uploaded_example_gets_a_heatmap_mask_and_verdict(page, tmp_path: Path, checkpoint_root: Path, screenshot):
    made = example_images({"transistor": load_checkpoint(checkpoint_root / "anomaly" / "transistor")}, tmp_path)
    painted = next(path for path, _, label in made if label.startswith("painted"))
    size = Image.open(painted).size
    _open_tab(page)
    page.locator("#anomaly-input input[type=file]").set_input_files(str(painted))
    page.locator("#anomaly-input img").first.wait_for(timeout=10_000)
    page.locator("#anomaly-category input").fill("transistor")
    page.locator("#anomaly-category input").press("Enter")
    before = {sel: page.evaluate(_SRC.format(sel=sel)) for sel in ("#anomaly-overlay", "#anomaly-mask")}
    page.get_by_role("button", name="Find the defect").click()
    for sel, old in before.items():  # each picture loads on its own: the mask may come after the overlay
        _wait_for_new_image(page, sel, old)
    overlay = page.locator("#anomaly-overlay img").first
    assert overlay.evaluate("i => [i.naturalWidth, i.naturalHeight]") == list(size)
    mask = page.locator("#anomaly-mask img").first
    assert mask.evaluate("i => [i.naturalWidth, i.naturalHeight]") == list(size)
    page.wait_for_function(
        "() => /threshold/.test(document.querySelector('#anomaly-verdict textarea')?.value || '')", timeout=10_000
    )
    screenshot("anomaly")


def test_clicking_an_example_checks_it_with_the_encoder(page):
    _open_tab(page)
    before = page.evaluate(_SRC.format(sel="#anomaly-plot"))
    examples = page.locator("#anomaly-examples .gallery-item, #anomaly-examples tbody tr")
    assert examples.count() >= 6  # two per category
    examples.nth(1).click()
    _wait_for_new_image(page, "#anomaly-plot", before)
