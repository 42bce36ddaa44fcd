"""Colour points on ``colorize serve``'s page: the real server process and headless Chromium.

The bundled experts follow the points: each point's colour holds at its place and spreads
over what lies around it, so the result must turn each point's colour there.

COLORIZE_HINTS_SCREENSHOT=PATH writes the screenshot with points placed there; otherwise it
goes to the test's temporary folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from conftest import sample_rgb
from PIL import Image
from scipy.ndimage import uniform_filter
from skimage.color import rgb2lab

# Importing test_browser also skips this module without the web extra or Chromium.
from test_browser import CHROMIUM, PAGE_TIMEOUT_MS, serving, sync_api

from colorize.experts.hints import colour_ab

BLUE, RED = "#1060d0", "#c82020"
PHOTO_NAME = "pier-1948.png"

# Reads the result as shown (its own pixels, not the page's scaling): the mean RGB of a small
# square around (x, y). The result is a blob: URL of this page, so the canvas may be read.
READ_PIXELS = """async ([x, y, r]) => {
  const image = document.querySelector(".card .after");
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const data = context.getImageData(x - r, y - r, 2 * r + 1, 2 * r + 1).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += data[i + c];
  return sum.map((s) => s / (data.length / 4));
}"""


def ab_at(page, place) -> np.ndarray:
    rgb = np.array(page.evaluate(READ_PIXELS, [*place, 1]), np.float64) / 255
    return rgb2lab(rgb[None, None])[0, 0, 1:]


def mid_gray_places(lightness: np.ndarray) -> list[tuple[int, int]]:
    """One place in the left and one in the right third of the photo where it is mid-gray and
    even: a hint's colour there is not clipped away by black or white, nor blurred by an edge."""
    height, width = lightness.shape
    mean = uniform_filter(lightness, 15)
    spread = np.sqrt(np.maximum(uniform_filter(lightness**2, 15) - mean**2, 0))
    badness = np.abs(mean - 55) + 2 * spread
    margin = 30
    places = []
    for left, right in ((margin, width // 3), (2 * width // 3, width - margin)):
        window = badness[margin : height - margin, left:right]
        row, col = np.unravel_index(np.argmin(window), window.shape)
        places.append((int(col + left), int(row + margin)))
    return places


def point_place(page, place, size) -> tuple[float, float]:
    """Where on the page the photo's pixel ``place`` is."""
    box = page.locator(".card .points").bounding_box()
    return (
        box["x"] + (place[0] + 0.5) / size[0] * box["width"],
        box["y"] + (place[1] + 0.5) / size[1] * box["height"],
    )


def points_shown(page) -> list[tuple[str, str]]:
    """Each point's place and colour as the page's list shows them."""
    items = page.locator(".card .hint-list li")
    return [
        (items.nth(i).locator(".where").inner_text(), items.nth(i).locator(".colour").input_value())
        for i in range(items.count())
    ]


def wait_rendered(page, points: int) -> None:
    """Until the result of the latest change is shown (the card is busy from a change until then),
    and it was made with ``points`` colour points."""
    page.wait_for_selector('.card:not([aria-busy="true"]) .status:text-matches("^done")', timeout=PAGE_TIMEOUT_MS)
    line = page.inner_text(".card .status")
    if points:
        assert line.endswith(f"· {points} colour points"), line
    else:
        assert "colour point" not in line, line


def test_colour_points_steer_the_result_and_travel_as_a_hints_file(tmp_path):
    home = tmp_path / "home"
    gray = Image.fromarray(sample_rgb("astronaut", 480)).convert("L")
    photo = tmp_path / PHOTO_NAME
    gray.save(photo)
    size = gray.size
    lightness = rgb2lab(np.repeat(np.asarray(gray, np.float64)[..., None] / 255, 3, -1))[..., 0]
    places = mid_gray_places(lightness)
    colours = (BLUE, RED)
    requests: list[str] = []
    errors: list[str] = []
    screenshot = Path(os.environ.get("COLORIZE_HINTS_SCREENSHOT") or tmp_path / "hints.png")

    with serving(tmp_path, home) as (url, process, log, _), sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_context(viewport={"width": 1000, "height": 1000}).new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            page.set_input_files("#pick", [str(photo)])
            page.wait_for_selector('.download[aria-disabled="false"]', timeout=PAGE_TIMEOUT_MS)

            # Points are offered for whichever expert colours the photo.
            assert page.is_visible(".card .hints")
            page.select_option(".card .expert", "general")
            page.wait_for_selector(".card .route:has-text('expert: general')", timeout=PAGE_TIMEOUT_MS)
            wait_rendered(page, 0)
            before = [ab_at(page, place) for place in places]

            # Two points, each with its own colour.
            page.click(".card .hint-mode")
            assert page.get_attribute(".card .hint-mode", "aria-pressed") == "true"
            for number, (place, colour) in enumerate(zip(places, colours), 1):
                page.mouse.click(*point_place(page, place, size))
                page.wait_for_selector(f".card .hint-list li:nth-child({number})")
                page.fill(f".card .hint-list li:nth-child({number}) .colour", colour)
            wait_rendered(page, 2)
            assert page.locator(".card .points .point").count() == 2
            after = [ab_at(page, place) for place in places]
            for place, colour, old, new in zip(places, colours, before, after):
                hint = np.array(colour_ab(colour))
                moved = np.linalg.norm(old - hint) - np.linalg.norm(new - hint)
                assert moved > 20, f"at {place} the colour went from ab {old} to {new}, hint {colour} is ab {hint}"
            assert after[0][1] < -25 < 25 < after[1][0], f"blue then red expected at {places}: ab {after}"
            page.screenshot(path=str(screenshot), full_page=True)

            # Drag the second point; add a third and remove it (right-click), and a fourth by the
            # keyboard, removed with Delete.
            moved_to = (places[1][0] - 40, places[1][1] + 25)
            page.mouse.move(*point_place(page, places[1], size))
            page.mouse.down()
            page.mouse.move(*point_place(page, moved_to, size), steps=5)
            page.mouse.up()
            wait_rendered(page, 2)
            page.mouse.click(*point_place(page, (size[0] // 2, 20), size))
            page.wait_for_selector(".card .hint-list li:nth-child(3)")
            page.click(".card .points .point:nth-child(3)", button="right")
            page.focus(".card .points")
            page.keyboard.press("Enter")
            assert page.locator(".card .points .point").count() == 3
            assert page.evaluate("document.activeElement.textContent") == "3"
            page.keyboard.press("Delete")
            wait_rendered(page, 2)
            shown = points_shown(page)
            assert len(shown) == 2 and shown[0] == (f"at {places[0][0]}, {places[0][1]}", BLUE), shown
            dragged = tuple(int(n) for n in shown[1][0].removeprefix("at ").split(", "))
            assert abs(dragged[0] - moved_to[0]) <= 1 and abs(dragged[1] - moved_to[1]) <= 1, (dragged, moved_to)

            # The points as the hints file colorize auto --hints reads.
            with page.expect_download() as download:
                page.click(".card .hints-save")
            assert download.value.suggested_filename == "pier-1948_hints.json"
            saved = json.loads(Path(download.value.path()).read_text())
            radius = round(max(size) / 100)
            assert saved == [
                {"x": places[0][0], "y": places[0][1], "color": BLUE, "radius": radius},
                {"x": dragged[0], "y": dragged[1], "color": RED, "radius": radius},
            ]
            hints_file = tmp_path / "pier-1948_hints.json"
            hints_file.write_text(json.dumps(saved))

            # Cleared, then loaded back: the same points, and the result follows them again.
            page.click(".card .hints-clear")
            wait_rendered(page, 0)
            assert points_shown(page) == [] and page.locator(".card .points .point").count() == 0
            page.set_input_files(".card .hints-file", [str(hints_file)])
            page.wait_for_selector(".card .hint-list li:nth-child(2)")  # read: the change is made
            wait_rendered(page, 2)
            assert points_shown(page) == shown
            assert page.locator(".card .points .point").count() == 2
            assert ab_at(page, places[0])[1] < -25 and ab_at(page, dragged)[0] > 25

            # A bad file says what is wrong with it, in one line, and keeps the points.
            bad = tmp_path / "bad.json"
            bad.write_text(json.dumps([{"x": 10, "y": 10, "color": "bleu"}]))
            page.set_input_files(".card .hints-file", [str(bad)])
            error = page.wait_for_selector(".card .status.error", timeout=PAGE_TIMEOUT_MS).inner_text()
            assert error == 'bad.json, point 1: "bleu" is not a colour', error
            assert points_shown(page) == shown
        finally:
            browser.close()

    assert not errors, f"the page's script failed: {errors}"
    outside = [r for r in requests if not r.startswith((url, "blob:", "data:"))]
    assert not outside, f"the page made requests beyond {url}: {outside}"
    assert "Traceback" not in log.read_text() and PHOTO_NAME not in log.read_text()
