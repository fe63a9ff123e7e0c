"""Click through the Edges → Photo tab in headless Chromium: draw a stroke with the mouse, convert
it, and click an example."""

_SRC = "() => document.querySelector('{sel} img')?.getAttribute('src') || ''"


def _open_tab(page):
    page.get_by_role("tab", name="Edges → Photo").click()
    page.locator("#edges-sketch canvas").first.wait_for(timeout=10_000)


def _wait_for_new_image(page, selector: str, old: str) -> str:
    page.wait_for_function(
        f"old => {{ const i = document.querySelector('{selector} img'); return i && i.complete && i.naturalWidth > 0 "
        "&& i.getAttribute('src') !== old; }",
        arg=old,
        timeout=30_000,
    )
    return page.evaluate(_SRC.format(sel=selector))


def test_an_empty_sketchpad_gets_a_plain_message(page):
    _open_tab(page)
    page.get_by_role("button", name="Make the photo").click()
    page.get_by_text("nothing to convert").or_(page.get_by_text("the sketch is blank")).first.wait_for(timeout=30_000)


def test_a_stroke_drawn_with_the_mouse_becomes_edges_and_a_photo(page, screenshot):
    _open_tab(page)
    page.locator("#edges-sketch button[aria-label='Brush']").click()
    box = page.locator("#edges-sketch canvas").first.bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 0.2 * w, y + 0.7 * h)
    page.mouse.down()
    for px, py in [(0.8, 0.7), (0.75, 0.5), (0.5, 0.45), (0.4, 0.25), (0.25, 0.25), (0.2, 0.7)]:  # a boot-ish outline
        page.mouse.move(x + px * w, y + py * h, steps=8)
    page.mouse.up()
    before = page.evaluate(_SRC.format(sel="#edges-photo"))
    page.get_by_role("button", name="Make the photo").click()
    _wait_for_new_image(page, "#edges-photo", before)
    edges = page.locator("#edges-normalised img").first
    assert edges.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [128, 128]
    screenshot("edges2photo")


def test_clicking_an_example_loads_it_and_converts_it(page):
    _open_tab(page)
    before = page.evaluate(_SRC.format(sel="#edges-normalised"))
    examples = page.locator(".gallery-item")
    assert examples.count() >= 3
    examples.nth(2).click()
    _wait_for_new_image(page, "#edges-normalised", before)
    photo = page.locator("#edges-photo img").first  # an untrained test model may repeat its photo: no src check
    assert photo.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [128, 128]
