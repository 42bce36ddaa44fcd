"""``colorize serve`` end to end: the real server process and its page in headless Chromium.

COLORIZE_SCREENSHOT=1 writes the screenshot to docs/serve.png (the one in the README);
otherwise it goes to the test's temporary folder.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

CHROMIUM = Path("/usr/bin/chromium")
pytest.importorskip("fastapi", reason="colorize serve needs the web extra (fastapi)")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python (pip install playwright)")
if not CHROMIUM.exists():
    pytest.skip(f"needs a Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

from conftest import SAFETY_TIMEOUT, sample_rgb  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
PHOTO_NAME = "harbour-1952.jpg"  # must never appear in the server's output
# Playwright's waits (its own default is 30 s): only a guard against a hang, as SAFETY_TIMEOUT.
PAGE_TIMEOUT_MS = SAFETY_TIMEOUT * 1000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(tmp_path: Path, home: Path):
    """``colorize serve`` as its own process with the model folder ``home``; yields (base URL,
    process, log path, seconds to start)."""
    port = free_port()
    started = time.perf_counter()
    log = tmp_path / "server.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "colorize", "serve", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLORIZE_HOME": str(home), "COLUMNS": "200"},
            # Ctrl-C must reach it as a user's would (a shell's background job ignores SIGINT).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SAFETY_TIMEOUT
        while True:
            assert process.poll() is None, f"colorize serve exited early:\n{log.read_text()}"
            try:  # refused at once until it listens; once it does, answered however slowly
                with urllib.request.urlopen(url + "api/experts", timeout=SAFETY_TIMEOUT) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (
                f"colorize serve did not answer in {SAFETY_TIMEOUT} s:\n{log.read_text()}"
            )
            time.sleep(0.1)
        yield url, process, log, time.perf_counter() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def server(tmp_path):
    """``colorize serve`` with an empty model folder: the bundled models only."""
    with serving(tmp_path, tmp_path / "home") as running:
        yield running


def lightness(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float64) / 255
    return rgb2lab(np.repeat(rgb[..., None], 3, -1) if rgb.ndim == 2 else rgb)[..., 0]


def test_the_page_colorizes_an_uploaded_photo_without_any_outside_request(server, tmp_path):
    url, process, log, start_seconds = server
    timings = {"server start": start_seconds}
    gray = Image.fromarray(sample_rgb("astronaut", 480)).convert("L")
    photo = tmp_path / PHOTO_NAME
    gray.save(photo, quality=95)
    sent = np.asarray(Image.open(photo))
    second = tmp_path / "cat-1930.png"
    Image.fromarray(sample_rgb("chelsea", 256)).convert("L").save(second)
    colour = tmp_path / "coffee-2020.png"
    Image.fromarray(sample_rgb("coffee", 128)).save(colour)
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("shopping list: milk, film, fixer")
    requests: list[str] = []

    started = time.perf_counter()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            # Two browsers at once: separate contexts share nothing, as two people's would.
            pages = [browser.new_context(viewport={"width": 1000, "height": 900}).new_page() for _ in range(2)]
            for page in pages:
                page.set_default_timeout(PAGE_TIMEOUT_MS)
                page.on("request", lambda request: requests.append(request.url))
                page.goto(url)
            timings["page load"] = time.perf_counter() - started

            started = time.perf_counter()
            pages[1].set_input_files("#pick", [str(second)])
            pages[0].set_input_files("#pick", [str(photo)])
            for page in pages:
                page.wait_for_selector('.download[aria-disabled="false"]', timeout=PAGE_TIMEOUT_MS)
            timings["colorize (two browsers)"] = time.perf_counter() - started

            page = pages[0]
            assert not page.is_visible(".force"), "a black-and-white photo needs no force"
            # Colour points are offered, and none is placed until the user asks for them.
            assert page.is_visible(".hints") and page.locator(".points .point").count() == 0
            route = page.inner_text(".route")
            assert route.startswith("expert: ") and any(e in route for e in ("general", "landscape", "people")), route
            with page.expect_download() as download:
                page.click(".download")
            assert download.value.suggested_filename == "harbour-1952_color.jpg"
            result = Image.open(io.BytesIO(Path(download.value.path()).read_bytes()))
            assert result.format == "JPEG" and result.size == gray.size
            rgb = np.asarray(result.convert("RGB"))
            difference = np.abs(lightness(rgb) - lightness(sent))
            assert difference.mean() < 1.0 and np.percentile(difference, 99) < 4, (difference.mean(), difference.max())
            chroma = np.hypot(*np.moveaxis(rgb2lab(rgb / 255)[..., 1:], -1, 0)).mean()
            assert chroma > 1.5, f"mean chroma {chroma:.2f}: the downloaded result is still gray"

            screenshot = tmp_path / "serve.png"
            if os.environ.get("COLORIZE_SCREENSHOT") == "1":
                screenshot = REPOSITORY / "docs" / "serve.png"
            page.screenshot(path=str(screenshot), full_page=True)

            # A bad file gets a clear message on its own card, and the page goes on working.
            page.set_input_files("#pick", [str(not_a_photo)])
            error = page.wait_for_selector(".card:first-child .status.error", timeout=PAGE_TIMEOUT_MS)
            assert "not an image" in error.inner_text()
            # A colour photo is refused with a way to colorize its luminance anyway.
            pages[1].set_input_files("#pick", [str(colour)])
            refusal = pages[1].wait_for_selector(".card:first-child .status.error", timeout=PAGE_TIMEOUT_MS)
            assert "already in colour" in refusal.inner_text()
            pages[1].click(".card:first-child .force")
            pages[1].wait_for_selector('.card:first-child .download[aria-disabled="false"]', timeout=PAGE_TIMEOUT_MS)
            page.select_option(".card:nth-child(2) .expert", "landscape")
            page.wait_for_selector(".card:nth-child(2) .route:has-text('forced')", timeout=PAGE_TIMEOUT_MS)
        finally:
            browser.close()

    outside = [r for r in requests if not r.startswith((url, "blob:", "data:"))]
    assert not outside, f"the page made requests beyond {url}: {outside}"
    started = time.perf_counter()
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=SAFETY_TIMEOUT)
    timings["stop"] = time.perf_counter() - started
    output = log.read_text()
    assert code in (0, 130), output
    assert (
        "Traceback" not in output and PHOTO_NAME not in output and "cat-1930" not in output and "coffee" not in output
    ), output
    assert len([line for line in output.splitlines() if "stopped" in line]) == 1, output
    print("timings (s):", json.dumps({k: round(v, 2) for k, v in timings.items()}), "screenshot:", screenshot)
