"""Click through the Faces tab in headless Chromium as a visitor would."""


def test_generate_faces_fills_the_gallery_and_offers_the_grid(page):
    page.get_by_role("tab", name="Faces").click()
    page.get_by_label("How many faces").first.fill("6")
    page.get_by_role("button", name="Generate faces").click()
    gallery = page.locator(".gallery-item, button.thumbnail-item")
    gallery.first.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.grid-container img, .gallery img').length >= 6", timeout=30_000
    )
    # the download offers the grid, named after its seed and count
    page.wait_for_function(
        "() => [...document.querySelectorAll('.file-preview')].some(e => e.innerText.includes('faces_seed42_x6'))",
        timeout=30_000,
    )


def test_a_generated_face_opens_large_when_clicked(page, screenshot):
    page.get_by_role("tab", name="Faces").click()
    page.locator("#faces-seed input").fill("43")
    page.locator("#faces-seed input").press("Tab")
    page.get_by_label("How many faces").first.fill("6")
    page.get_by_role("button", name="Generate faces").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.file-preview')].some(e => e.innerText.includes('faces_seed43_x6'))",
        timeout=30_000,
    )
    page.locator("#faces-gallery img").first.click()
    preview = page.locator("#faces-gallery .preview img").first
    preview.wait_for(timeout=10_000)
    natural, shown = preview.evaluate("i => [i.naturalWidth, i.getBoundingClientRect().width]")
    assert natural == 64 and shown >= 4 * natural  # the 64x64 face, enlarged
    screenshot("faces")


def test_a_bad_seed_shows_a_plain_error_and_the_app_keeps_working(page):
    page.get_by_role("tab", name="Faces").click()
    seed = page.locator("#faces-seed input")
    seed.fill("3.5")
    seed.press("Tab")
    page.get_by_role("button", name="Generate faces").click()
    page.get_by_text("seed must be a whole number").first.wait_for(timeout=30_000)
    seed.fill("5")
    seed.press("Tab")
    page.get_by_role("button", name="Generate faces").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.file-preview')].some(e => e.innerText.includes('faces_seed5_x6'))",
        timeout=30_000,
    )
