"""Click through the GAN Basics tab in headless Chromium: Start streams a live plot, Pause stops it."""

import re


def _step(page) -> int:
    text = page.locator("table").first.inner_text()
    match = re.search(r"step\s+(\d+)", text)
    assert match, text
    return int(match.group(1))


def test_start_streams_the_1d_game_and_pause_stops_it(page, screenshot):
    page.get_by_role("tab", name="GAN Basics").click()
    page.get_by_role("button", name="Start", exact=True).first.click()
    page.get_by_text("Running").first.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('table')].some(t => /step\\s+([1-9]\\d{2,})/.test(t.innerText))",
        timeout=60_000,
    )
    page.get_by_role("button", name="Pause", exact=True).first.click()
    page.wait_for_timeout(1500)
    paused = _step(page)
    page.wait_for_timeout(1500)
    assert _step(page) == paused, "the plot kept moving after Pause"
    screenshot("gan_basics")
