"""Headless Chromium on the session's app (Debian's chromium; Playwright never downloads a
browser here). Every test in this folder is marked `browser` and skipped when either is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"  # git-ignored; the run's summary lists them


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def page(app_url: str):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM:
        pytest.skip("no chromium on PATH")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.goto(app_url)
        try:
            yield pg
        finally:
            browser.close()


@pytest.fixture
def screenshot(page, run_report):
    """`screenshot(name)` saves what the page shows now as screenshots/<name>.png (git-ignored) and
    the test run's summary prints its path."""

    def take(name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        run_report["screenshots"].append(str(path))
        return path

    return take
