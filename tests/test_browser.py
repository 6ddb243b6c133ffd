"""Open every chapter of the built book in headless Chromium, as a reader would.

For each page built from a notebook: no JavaScript error other than blocked network loads (the test
machine is offline, so CDN scripts and the Colab badge cannot load), every figure that is part of the
page loaded, and every pre-rendered static slider changes the figure it shows when moved. One screenshot
per chapter is saved under `_build/screenshots/` for people to look at.

Needs `make book` first (`_build/html`) and Debian's `chromium` and `chromium-driver`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("SSMAX_BROWSER_HTML", ROOT / "_build" / "html"))  # another build may be tested
SHOTS = ROOT / "_build" / "screenshots"
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

pytestmark = pytest.mark.browser

# Console messages caused by the offline test machine, not by the page.
BLOCKED_NETWORK = ("net::ERR_", "Failed to load resource", "Script error for", "ERR_NAME_NOT_RESOLVED",
                   "ERR_INTERNET_DISCONNECTED", "ERR_CONNECTION", "ERR_PROXY", "ERR_ADDRESS_UNREACHABLE")


def _find(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = _find("chromium", "chromium-browser", "google-chrome")
    driver_path = _find("chromedriver")
    if not (chromium and driver_path):
        pytest.fail("headless Chromium is needed: install the Debian packages chromium and chromium-driver "
                    "(.ci/run does this)")
    if not (HTML / "index.html").exists():
        pytest.fail("_build/html/index.html is missing: run `make book` first")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,2000", "--allow-file-access-from-files"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def _page_of(notebook: Path) -> Path:
    return HTML / "notebooks" / (notebook.stem + ".html")


def _uses_static_slider(notebook: Path) -> bool:
    cells = json.loads(notebook.read_text())["cells"]
    return any("static_slider(" in "".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_every_chapter_was_built():
    assert CHAPTERS, "no chapter notebooks found"
    missing = [nb.name for nb in CHAPTERS if not _page_of(nb).exists()]
    assert not missing, f"chapters without a built page: {missing}"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[nb.stem for nb in CHAPTERS])
def test_chapter_page_in_chromium(browser, notebook):
    page = _page_of(notebook)
    browser.get_log("browser")  # drop messages of earlier pages
    browser.get(page.as_uri())
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight);")

    # 1. No JavaScript errors other than blocked network loads.
    errors = [entry["message"] for entry in browser.get_log("browser")
              if entry["level"] == "SEVERE" and not any(b in entry["message"] for b in BLOCKED_NETWORK)]
    assert not errors, f"JavaScript errors on {page.name}: {errors}"

    # 2. Every figure of the page (local or embedded images; remote ones cannot load offline) loaded.
    images = browser.execute_script("""
        return Array.from(document.querySelectorAll('main img, article img')).map(img => ({
            src: img.currentSrc || img.src, ok: img.complete && img.naturalWidth > 0}));""")
    local = [im for im in images if not im["src"].startswith(("http://", "https://"))]
    broken = [im["src"][:80] for im in local if not im["ok"]]
    assert not broken, f"figures that did not load on {page.name}: {broken}"
    assert local or not _has_figures(notebook), f"{page.name} shows no figure"

    # 3. Every static slider changes the figure it shows.
    sliders = browser.execute_script(
        "return Array.from(document.querySelectorAll('input.anim-slider')).map(s => s.id);")
    if _uses_static_slider(notebook):
        assert sliders, f"{page.name} should have a pre-rendered slider"
    for slider_id in sliders:
        changed = browser.execute_script("""
            const slider = document.getElementById(arguments[0]);
            const img = document.getElementById(arguments[0].replace('_anim_slider', '_anim_img'));
            const before = img.src;
            slider.value = slider.max;
            slider.dispatchEvent(new Event('input', {bubbles: true}));
            return [slider.max, before !== img.src];""", slider_id)
        assert int(changed[0]) > 0, f"slider {slider_id} on {page.name} has a single frame"
        assert changed[1], f"moving slider {slider_id} on {page.name} did not change its figure"

    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.execute_script("window.scrollTo(0, 0);")
    browser.save_screenshot(str(SHOTS / f"{notebook.stem}.png"))


def _has_figures(notebook: Path) -> bool:
    cells = json.loads(notebook.read_text())["cells"]
    return any("image/png" in out.get("data", {}) for c in cells if c["cell_type"] == "code"
               for out in c.get("outputs", []))

