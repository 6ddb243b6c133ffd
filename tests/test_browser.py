"""Open every page of the built book in headless Chromium, as a reader would, with the network blocked.

At 1280 px (a laptop) and at 390 px (a phone), on every page of the table of contents:

* no JavaScript error, and no script or figure fetched from another site (the book works offline);
* every formula typeset by MathJax from the book's own copy: no raw ``$$``, ``\\(`` or ``\\[`` is left in the text;
* nothing cut off: an output, table, figure or formula wider than the column scrolls on its own (and shows
  the edge shadow that says so), and nothing runs past the column unless inside such a scrolling box;
* no scaffolding in a code cell the page shows, collapsed solutions included: no ``assert``, timer, cache
  bookkeeping or ``#@title`` line;
* every image has at least 1.5 pixels per CSS pixel at the size the page shows it (vector images pass);
* every pre-rendered static slider changes the figure it shows when moved.

Each page is saved as a screenshot under ``_build/screenshots/`` (``<page>-1280.png``, ``<page>-390.png``: the
whole page at 1280 px, the first screens at 390 px) for a person to look at. Separately, without a browser:
a page is at most 400 KB of HTML, 2 MB if it carries static slider frames.

Needs `make book` first (`_build/html`) and Debian's `chromium` and `chromium-driver`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("SSMAX_BROWSER_HTML", ROOT / "_build" / "html"))  # another build may be tested
SHOTS = ROOT / "_build" / "screenshots"
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
OTHER_PAGES = ["book/intro", "book/notation", "book/bibliography"]
PAGES = OTHER_PAGES + [f"notebooks/{nb.stem}" for nb in CHAPTERS]
WIDTHS = (1280, 390)

PAGE_LIMIT = 400_000          # bytes of HTML, a page without slider frames
SLIDER_PAGE_LIMIT = 2_000_000  # bytes of HTML, a page that carries pre-rendered slider frames
SHARPNESS = 1.5               # image pixels per CSS pixel shown

# Chapters not yet moved to the reader's view (their code may hold scaffolding, their figures predate the book's
# style), with the reason (kept by the lead session).
NOT_YET: dict[str, str] = {}

pytestmark = pytest.mark.browser


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
                 "--disable-dev-shm-usage", "--hide-scrollbars=false", "--allow-file-access-from-files",
                 "--force-device-scale-factor=1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(120)
    # the network is blocked: whatever the book needs must come with it
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
    yield driver
    driver.quit()


def _path(page: str) -> Path:
    return HTML / (page + ".html")


def _uses_static_slider(page: str) -> bool:
    notebook = ROOT / (page + ".ipynb")
    if not notebook.exists():
        return False
    cells = json.loads(notebook.read_text())["cells"]
    return any("static_slider(" in "".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_every_page_was_built():
    assert CHAPTERS, "no chapter notebooks found"
    missing = [page for page in PAGES if not _path(page).exists()]
    assert not missing, f"pages missing from the build: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_page_weight(page):
    size = _path(page).stat().st_size
    limit = SLIDER_PAGE_LIMIT if _uses_static_slider(page) else PAGE_LIMIT
    assert size <= limit, f"{page}.html is {size:,} bytes of HTML, over {limit:,}"


# Everything the page checks run in the browser, in one script: it returns a dict of findings.
CHECKS = r"""
const art = document.querySelector('article.bd-article') || document.querySelector('main');
const column = art.getBoundingClientRect();
const describe = el => (el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ?
    '.' + el.className.trim().split(/\s+/).slice(0, 2).join('.') : '') + ': ' +
    (el.innerText || el.getAttribute('src') || el.getAttribute('alt') || '').trim().slice(0, 50));
const scrolls = el => /(auto|scroll)/.test(getComputedStyle(el).overflowX);
const shown = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';

// 1. nothing cut off
const cut = [], noCue = [];
const blocks = art.querySelectorAll('div.cell_output, div.cell_output pre, div.cell_input pre, table, img, ' +
                                    'div.ssmax-table, mjx-container, div.math, .animation, div.highlight pre');
for (const el of blocks) {
  if (!shown(el)) continue;
  const style = getComputedStyle(el);
  if (el.scrollWidth > el.clientWidth + 1 && /(hidden|clip)/.test(style.overflowX)) cut.push('clipped ' + describe(el));
  if (el.scrollWidth > el.clientWidth + 1 && scrolls(el) && !/gradient/.test(style.backgroundImage)
      && el.tagName !== 'MJX-CONTAINER' && !el.classList.contains('math')) noCue.push(describe(el));
  const r = el.getBoundingClientRect();
  if (r.right > column.right + 1 || r.left < column.left - 1) {
    let a = el.parentElement, inside = false;
    while (a && a !== art) {
      if (scrolls(a) && a.getBoundingClientRect().right <= column.right + 1) { inside = true; break; }
      a = a.parentElement;
    }
    if (!inside && !scrolls(el)) cut.push('past the column ' + describe(el));
  }
}
if (document.documentElement.scrollWidth > window.innerWidth + 1) cut.push('the page scrolls sideways');

// 2. raw TeX left after MathJax (code is left out: it may hold $ and backslashes)
const copy = art.cloneNode(true);
copy.querySelectorAll('pre, code, script, style, .highlight').forEach(n => n.remove());
const text = copy.textContent;
const rawTex = ['$$', '\\(', '\\)', '\\[', '\\]'].filter(d => text.includes(d));

// 3. scaffolding in code cells (collapsed ones included)
const scaffolding = [];
for (const pre of art.querySelectorAll('div.cell_input pre')) {
  for (const line of pre.textContent.split('\n')) {
    if (/^\s*assert\b/.test(line) || /perf_counter|process_time|\[time:|\btime\.time\(|^\s*%%?time|\btimeit\b/.test(line) ||
        /\b(np|numpy|torch)\.testing\b|\bpytest\b/.test(line) ||
        /cache_dir|default_cache_dir|\bCACHE\b/.test(line) || /^\s*#@(title|markdown|param)/.test(line))
      scaffolding.push(line.trim().slice(0, 70));
  }
}

// 4. sharpness of every image shown (vector images pass)
const blurry = [];
for (const img of art.querySelectorAll('img')) {
  if (!shown(img) || !img.complete || img.naturalWidth === 0) continue;
  const src = img.currentSrc || img.src;
  if (/\.svg(\?|$)/.test(src) || src.startsWith('data:image/svg')) continue;
  const ratio = img.naturalWidth / img.getBoundingClientRect().width;
  if (ratio < SHARPNESS - 0.01) blurry.push(src.slice(-40) + ' at ' + ratio.toFixed(2) + ' px/px');
}

// 5. what came from elsewhere
const remote = Array.from(document.querySelectorAll('script[src], img[src], link[rel=stylesheet]'))
  .map(n => n.getAttribute('src') || n.getAttribute('href'))
  .filter(u => /^(https?:)?\/\//.test(u));
const broken = Array.from(art.querySelectorAll('img')).filter(i => i.complete && i.naturalWidth === 0)
  .map(i => (i.currentSrc || i.src).slice(-60));
return {cut, noCue, rawTex, scaffolding, blurry, remote, broken};
""".replace("SHARPNESS", str(SHARPNESS))


def _wait_for_mathjax(browser, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        done = browser.execute_script(
            "return !window.MathJax || !MathJax.startup || !MathJax.startup.promise ? 'none' : "
            "(window.__mj_done ? 'done' : (MathJax.startup.promise.then(() => { window.__mj_done = true; }), 'wait'));")
        if done in ("done", "none"):
            return done
        time.sleep(0.25)
    return "timeout"


def _screenshot(browser, path: Path, full: bool):
    metrics = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    height = min(int(size["height"]), 16000) if full else int(browser.execute_script("return window.innerHeight"))
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": full,
        "clip": {"x": 0, "y": 0, "width": int(size["width"]), "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", PAGES)
def test_page_as_a_reader_sees_it(browser, page, width):
    # the page at exactly this width (a window cannot be made this narrow), as a phone shows it at 390 px
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": width < 600})
    browser.get_log("browser")  # drop messages of earlier pages
    browser.get(_path(page).as_uri())
    # open every collapsed block (solutions), and let lazy content and MathJax finish
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true);"
                           "window.scrollTo(0, document.body.scrollHeight);")
    mathjax = _wait_for_mathjax(browser)
    time.sleep(0.5)
    found = browser.execute_script(CHECKS)
    name = page.replace("/", "_")

    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = false); window.scrollTo(0, 0);")
    _screenshot(browser, SHOTS / f"{name}-{width}.png", full=width == WIDTHS[0])
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
              and "net::ERR_BLOCKED_BY_CLIENT" not in entry["message"]]
    assert not found["remote"], f"{page} loads from other sites (breaks offline): {found['remote']}"
    assert not errors, f"JavaScript errors on {page}: {errors}"
    assert mathjax != "timeout", f"MathJax did not finish on {page}"
    assert not found["rawTex"], f"{page} at {width} px shows raw TeX {found['rawTex']}: MathJax did not typeset it"
    assert not found["broken"], f"figures that did not load on {page}: {found['broken']}"
    assert not found["cut"], f"{page} at {width} px cuts off: {found['cut']}"
    assert not found["noCue"], f"{page} at {width} px scrolls without the edge shadow: {found['noCue']}"
    if page not in NOT_YET:
        assert not found["blurry"], f"{page} at {width} px shows images below {SHARPNESS} px/px: {found['blurry']}"
        assert not found["scaffolding"], f"{page} shows scaffolding in its code: {found['scaffolding']}"


@pytest.mark.parametrize("page", [p for p in PAGES if _uses_static_slider(p)])
def test_static_sliders_change_their_figure(browser, page):
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": WIDTHS[0], "height": 1000, "deviceScaleFactor": 1, "mobile": False})
    browser.get(_path(page).as_uri())
    sliders = browser.execute_script(
        "return Array.from(document.querySelectorAll('input.anim-slider')).map(s => s.id);")
    assert sliders, f"{page} should have a pre-rendered slider"
    for slider_id in sliders:
        changed = browser.execute_script("""
            const slider = document.getElementById(arguments[0]);
            const img = document.getElementById(arguments[0].replace('_anim_slider', '_anim_img'));
            const before = img.src;
            slider.value = slider.max;
            slider.dispatchEvent(new Event('input', {bubbles: true}));
            return [slider.max, before !== img.src];""", slider_id)
        assert int(changed[0]) > 0, f"slider {slider_id} on {page} has a single frame"
        assert changed[1], f"moving slider {slider_id} on {page} did not change its figure"


def test_exemptions_name_chapters():
    assert set(NOT_YET) <= set(PAGES)
    assert all(re.match(r"notebooks/\d\d", page) for page in NOT_YET)
