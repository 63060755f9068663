"""The Space in a real browser: Debian's Chromium driven by Playwright (never a downloaded browser).

Uploads a photo, drags the age slider, waits for the edit, and checks that the before/after slider
shows the input on one side and a different (edited) image on the other, read back from the page.
Screenshots of each tab go to tmp_path (kept by pytest under its basetemp).
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "space" / "examples" / "astronaut.jpg"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 120_000


# .ci/run sets this so that CI fails, rather than skips, when its browser is missing
BROWSER_REQUIRED = os.environ.get("GANIME_AGE_REQUIRE_BROWSER") == "1"


def _without_browser(reason: str) -> None:
    """Skip (a fresh install has no Chromium: the README's test command does not install one), or fail in CI."""
    (pytest.fail if BROWSER_REQUIRED else pytest.skip)(reason)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        _without_browser(
            f"no Chromium at {CHROMIUM}: apt-get install -y chromium chromium-driver to run the browser tests "
            "(.ci/run does)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _without_browser("playwright is not installed: pip install -e '.[dev]'")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, space_url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(space_url, wait_until="load")  # not "networkidle": gradio keeps a heartbeat request open
    page.wait_for_selector("#age-photo")
    try:
        yield page
    finally:
        context.close()


def _image_at(page, src: str) -> np.ndarray:
    """The pixels of an image the page shows, fetched by the page itself (works for http and blob URLs)."""
    encoded = page.evaluate(
        """async (src) => {
            const bytes = new Uint8Array(await (await fetch(src)).arrayBuffer());
            let text = "";
            for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
            return btoa(text);
        }""",
        src,
    )
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"), dtype=np.int16)


def _slider_images(page, elem_id: str) -> list[str]:
    return page.eval_on_selector_all(f"#{elem_id} img", "imgs => imgs.map(i => i.currentSrc || i.src)")


def _wait_images_loaded(page, elem_id: str) -> None:
    page.wait_for_function(
        "(id) => [...document.querySelectorAll(`#${id} img`)].every(i => i.complete && i.naturalWidth > 0)", arg=elem_id
    )


def _drag_slider_to(page, elem_id: str, fraction: float) -> int:
    """Press and release the mouse on the range input like a visitor (fires gradio's `release`)."""
    track = page.locator(f"#{elem_id} input[type=range]")
    track.scroll_into_view_if_needed()
    box = track.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * fraction, y, steps=8)
    page.mouse.up()
    return int(float(track.input_value()))


def _upload(page, elem_id: str, path: Path) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))


def test_age_slider_edits_the_uploaded_photo(page, tmp_path: Path) -> None:
    _upload(page, "age-photo", ASTRONAUT)
    # the upload alone runs the analysis and a first edit (at the default target age)
    page.wait_for_function("() => document.querySelectorAll('#age-result img').length >= 2", timeout=TIMEOUT_MS)
    page.locator("#age-summary").get_by_text(re.compile("face 1")).wait_for()
    first = _slider_images(page, "age-result")

    target = _drag_slider_to(page, "age-target", 0.05)
    assert target <= 10
    page.locator("#age-summary").get_by_text(re.compile(rf"→ \*?\*?{target}\b|→ {target} ")).wait_for()
    page.wait_for_function(
        "(old) => { const s = [...document.querySelectorAll('#age-result img')].map(i => i.currentSrc || i.src);"
        " return s.length >= 2 && s.join() !== old; }",
        arg=",".join(first),
    )
    _wait_images_loaded(page, "age-result")
    before, after = (_image_at(page, src) for src in _slider_images(page, "age-result")[:2])

    original = np.asarray(Image.open(ASTRONAUT).convert("RGB"), dtype=np.int16)
    assert before.shape == after.shape == original.shape
    assert np.abs(before - original).mean() < 1.0, "the left side of the slider is not the uploaded photo"
    changed = np.abs(after - before).max(axis=2) > 8
    assert changed.mean() > 0.005, "the displayed result does not differ from the input"
    page.locator("#age-result").screenshot(path=str(tmp_path / "age-result.png"))

    page.locator("#age-strip-run").click()
    page.wait_for_function("() => document.querySelectorAll('#age-strip img').length >= 10")
    _wait_images_loaded(page, "age-strip")
    page.screenshot(path=str(tmp_path / "tab-age.png"), full_page=True)


def test_expression_tab_presets_and_attention(page, tmp_path: Path) -> None:
    page.get_by_role("tab", name=re.compile("Expression")).click()
    _upload(page, "expr-photo", ASTRONAUT)
    page.wait_for_function("() => document.querySelectorAll('#expr-result img').length >= 2")
    page.locator("#expr-info").get_by_text(re.compile("measured on face 1")).wait_for()
    measured = float(page.locator("#au-AU12 input[type=number]").input_value())

    page.locator("#preset-surprise").click()
    page.locator("#expr-summary").get_by_text(re.compile("AU26=3.0")).wait_for()
    assert float(page.locator("#au-AU26 input[type=number]").input_value()) == 3.0
    assert float(page.locator("#au-AU12 input[type=number]").input_value()) == 0.0  # a full expression
    assert page.locator("#expr-attention img").count() == 1
    _wait_images_loaded(page, "expr-result")
    _wait_images_loaded(page, "expr-attention")
    page.screenshot(path=str(tmp_path / "tab-expression.png"), full_page=True)

    page.locator("#expr-reset").click()
    page.wait_for_function(
        "(v) => Number(document.querySelector('#au-AU12 input[type=number]').value) === v", arg=measured
    )
