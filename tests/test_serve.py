"""``colorize serve``'s HTTP API on real tiny photos and the bundled models (FastAPI's TestClient,
and a real uvicorn for what only a socket shows)."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from skimage.color import rgb2lab

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
uvicorn = pytest.importorskip("uvicorn")
from conftest import SAFETY_TIMEOUT, sample_rgb  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from colorize.experts.hints import colour_ab  # noqa: E402
from colorize.pipelines.inference import Pipeline  # noqa: E402
from colorize.pipelines.serve import create_app, listening_socket, remove_stale_workspaces  # noqa: E402

MAX_UPLOAD = 256 * 1024
MAX_PIXELS = 200_000
ARTIST = 0x013B


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    # An empty model folder: only the bundled experts, whatever the machine's user has trained.
    return Pipeline.from_config(home=tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def app(pipeline):
    return create_app(pipeline, max_upload_bytes=MAX_UPLOAD, max_pixels=MAX_PIXELS)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as client:
        yield client


def gray_photo(name="astronaut", size=96) -> np.ndarray:
    return np.asarray(Image.fromarray(sample_rgb(name, size)).convert("L"))


def encoded(array: np.ndarray, fmt: str, **params) -> bytes:
    """A file made from ``array``: uint8 (H, W) gray, (H, W, 2) gray + alpha, (H, W, 3) RGB; uint16 gray."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **params)
    return buffer.getvalue()


def post(client, data: bytes, **fields):
    return client.post("/api/colorize", files={"file": ("photo", data)}, data=fields)


BOUNDARY = "b0undary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
FILE_PART_HEAD = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="photo"\r\n\r\n'.encode()


def post_over_http(port: int, data: bytes) -> http.client.HTTPResponse:
    """``data`` as the ``file`` of a POST to a real server on 127.0.0.1:``port``; the response, body read."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=SAFETY_TIMEOUT)
    body = FILE_PART_HEAD + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    connection.request("POST", "/api/colorize", body, MULTIPART)
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def lightness(rgb: np.ndarray) -> np.ndarray:
    """L of an 8-bit or 16-bit gray or RGB array."""
    scale = 65535.0 if rgb.dtype == np.uint16 else 255.0
    rgb = rgb.astype(np.float64) / scale
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, -1)
    return rgb2lab(rgb)[..., 0]


def mean_chroma(rgb: np.ndarray) -> float:
    scale = 65535.0 if rgb.dtype == np.uint16 else 255.0
    return float(np.hypot(*np.moveaxis(rgb2lab(rgb[..., :3] / scale)[..., 1:], -1, 0)).mean())


def assert_good_request_works(client) -> None:
    response = post(client, encoded(gray_photo(), "JPEG", quality=95))
    assert response.status_code == 200, response.text


def test_a_gray_jpeg_comes_back_coloured_with_its_size_luminance_and_route(client):
    gray = gray_photo()
    upload = encoded(gray, "JPEG", quality=95)
    sent = np.asarray(Image.open(io.BytesIO(upload)))
    response = post(client, upload)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    out = Image.open(io.BytesIO(response.content))
    assert out.format == "JPEG" and out.mode == "RGB" and out.size == (gray.shape[1], gray.shape[0])
    rgb = np.asarray(out)
    difference = np.abs(lightness(rgb) - lightness(sent))
    assert difference.mean() < 1.0 and np.percentile(difference, 99) < 4, (difference.mean(), difference.max())
    assert mean_chroma(rgb) > 3, f"mean chroma {mean_chroma(rgb):.2f}: the result is still gray"
    assert response.headers["x-colorize-expert"] in ("general", "landscape", "people")
    assert response.headers["x-colorize-reason"].startswith(("classified", "low confidence", "missing expert"))
    assert 0 <= float(response.headers["x-colorize-confidence"]) <= 1
    assert "no-store" in response.headers["cache-control"]


def test_the_result_is_byte_for_byte_what_the_cli_writer_makes_with_exif_and_icc_kept(client, pipeline, tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[ARTIST] = "A. Photographer"
    upload = encoded(gray_photo("rocket"), "JPEG", quality=90, icc_profile=icc, exif=exif)
    response = post(client, upload)
    assert response.status_code == 200, response.text
    source = tmp_path / "photo.jpg"
    source.write_bytes(upload)
    written = pipeline.colorize(source).save(tmp_path / "out" / "photo.jpg").read_bytes()
    assert response.content == written, "the API must write what Result.save / colorize auto writes"
    out = Image.open(io.BytesIO(response.content))
    assert out.info.get("icc_profile") == icc
    assert out.getexif()[ARTIST] == "A. Photographer"
    assert str(out.getexif()[0x0131]).startswith("colorize")  # the provenance marker


def test_png_in_png_out(client):
    response = post(client, encoded(gray_photo("chelsea"), "PNG"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    out = Image.open(io.BytesIO(response.content))
    assert out.format == "PNG" and out.mode == "RGB"
    assert out.text.get("colorize", "").startswith("colorized by expert")


def test_a_16_bit_png_stays_16_bit_with_its_luminance(client):
    import png

    # Values an 8-bit file cannot hold, so a result cut to 8 bits would show.
    noise = np.random.default_rng(0).integers(-128, 128, (64, 96))
    gray16 = np.clip(gray_photo("chelsea").astype(np.int64) * 257 + noise, 0, 65535).astype(np.uint16)
    response = post(client, encoded(gray16, "PNG"))
    assert response.status_code == 200, response.text
    width, height, rows, info = png.Reader(bytes=response.content).asDirect()
    assert (info["bitdepth"], info["planes"], (width, height)) == (16, 3, gray16.shape[::-1])
    rgb = np.vstack([np.asarray(row, np.uint16) for row in rows]).reshape(height, width, 3)
    difference = np.abs(lightness(rgb) - lightness(gray16))
    assert difference.mean() < 0.05 and difference.max() < 2, (difference.mean(), difference.max())
    assert mean_chroma(rgb) > 3


def test_a_16_bit_rgb_tiff_stays_16_bit(client):
    import tifffile

    gray16 = gray_photo("rocket").astype(np.uint16) * 257
    sent = io.BytesIO()
    tifffile.imwrite(sent, np.dstack([gray16] * 3), photometric="rgb")
    response = post(client, sent.getvalue())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/tiff"
    rgb = tifffile.imread(io.BytesIO(response.content))
    assert rgb.dtype == np.uint16 and rgb.shape == (*gray16.shape, 3)
    difference = np.abs(lightness(rgb) - lightness(gray16))
    # Not exact where a predicted colour lies outside sRGB and is clipped (the general expert's
    # calibration shift adds chroma near white and black too: 0.064 here); the same output
    # rounded through 8 bits is off by 0.12 on average, which this still refuses.
    assert difference.mean() < 0.09 and difference.max() < 2, (difference.mean(), difference.max())
    assert mean_chroma(rgb) > 3


def test_alpha_is_kept(client):
    gray = gray_photo("coffee")
    alpha = np.tile(np.linspace(0, 255, gray.shape[1]).astype(np.uint8), (gray.shape[0], 1))
    response = post(client, encoded(np.dstack([gray, alpha]), "PNG"))
    assert response.status_code == 200, response.text
    out = Image.open(io.BytesIO(response.content))
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out)[..., 3], alpha)


def test_expert_and_saturation_choose_the_route_and_the_amount_of_colour(client):
    upload = encoded(gray_photo(), "PNG")
    forced = post(client, upload, expert="landscape", saturation="1")
    assert forced.status_code == 200, forced.text
    assert (forced.headers["x-colorize-expert"], forced.headers["x-colorize-reason"]) == ("landscape", "forced")
    gray = post(client, upload, expert="landscape", saturation="0")
    strong = post(client, upload, expert="landscape", saturation="2")
    chroma = [mean_chroma(np.asarray(Image.open(io.BytesIO(r.content)))) for r in (gray, forced, strong)]
    assert chroma[0] < 0.5 < chroma[1] < chroma[2], chroma


def test_a_fallback_says_so_in_the_reason_header_with_every_probability(pipeline):
    from dataclasses import replace

    unsure = Pipeline(pipeline.classifier, pipeline.store, replace(pipeline.policy, threshold=1.0))
    with TestClient(create_app(unsure)) as client:
        response = post(client, encoded(gray_photo(), "PNG"))
    assert response.status_code == 200, response.text
    probabilities = json.loads(response.headers["x-colorize-probabilities"])
    assert set(probabilities) == {"general", "landscape", "people"}
    assert abs(sum(probabilities.values()) - 1) < 1e-3
    # Unsure whatever it sees: a photo most like another class falls back, and says so.
    top = max(probabilities, key=probabilities.get)
    expected = "classified" if top == "general" else "low confidence -> general"
    assert (response.headers["x-colorize-expert"], response.headers["x-colorize-reason"]) == ("general", expected)


@pytest.mark.parametrize(
    "case",
    ["not an image", "truncated", "colour photo", "over max pixels", "upload over the limit", "unknown expert", "bad"],
)
def test_bad_input_is_a_4xx_json_error_and_the_next_request_still_works(client, case):
    jpeg = encoded(gray_photo(), "JPEG", quality=95)
    fields = {}
    if case == "not an image":
        data, status, words = b"%PDF-1.4 not a photo at all", 422, "not an image"
    elif case == "truncated":
        data, status, words = jpeg[: len(jpeg) // 3], 422, "truncated"
    elif case == "colour photo":
        data, status, words = encoded(sample_rgb("coffee"), "JPEG", quality=95), 422, "force=1"
    elif case == "over max pixels":
        data, status, words = encoded(np.full((500, 600), 128, np.uint8), "PNG"), 422, "too large"
    elif case == "upload over the limit":
        data, status, words = os.urandom(MAX_UPLOAD + 1), 413, "over the limit"
    elif case == "unknown expert":
        data, status, words, fields = jpeg, 422, "general, landscape, people", {"expert": "sepia-1900"}
    else:
        data, status, words, fields = jpeg, 422, "saturation", {"saturation": "lots"}
    response = post(client, data, **fields)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"], response.json()
    assert_good_request_works(client)


def test_a_colour_photo_is_colorized_from_its_luminance_with_force(client):
    rgb = sample_rgb("coffee")
    response = post(client, encoded(rgb, "PNG"), force="1")
    assert response.status_code == 200, response.text
    out = np.asarray(Image.open(io.BytesIO(response.content)))
    assert np.abs(lightness(out) - lightness(rgb)).mean() < 1.0


def test_a_request_without_a_file_or_with_a_stray_field_is_refused(client):
    assert client.post("/api/colorize", data={"expert": "general"}).status_code in (415, 422)
    response = client.post("/api/colorize", files={"file": ("photo", b"x"), "comment": ("", b"hello")})
    assert response.status_code == 422 and "comment" in response.json()["detail"]
    assert client.post("/api/colorize", content=b"raw bytes", headers={"content-type": "image/jpeg"}).status_code == 415


def test_experts_lists_the_bundled_experts_and_the_limits(client):
    response = client.get("/api/experts")
    assert response.status_code == 200
    body = response.json()
    assert {"general", "people", "landscape"} <= {e["name"] for e in body["experts"]}
    assert all(set(e) == {"name", "source"} for e in body["experts"])
    assert body["max_upload_bytes"] == MAX_UPLOAD and body["max_pixels"] == MAX_PIXELS
    assert "path" not in str(body), "the API does not tell where the user's files are"


def test_the_page_requests_nothing_from_another_host(client):
    response = client.get("/")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    page = response.text
    hosts = set(re.findall(r"(?:https?:)?//([A-Za-z0-9.\-\[\]:]+)", page))
    assert hosts <= {"127.0.0.1", "localhost"}, f"the page names other hosts: {hosts}"
    assert not re.search(r"@import|@font-face|<link[^>]+stylesheet", page, re.IGNORECASE)
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy


def test_another_host_name_is_refused_when_hosts_are_restricted(pipeline):
    guarded = create_app(pipeline, allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(guarded, base_url="http://127.0.0.1") as local:
        assert local.get("/api/experts").status_code == 200
        assert local.get("/api/experts", headers={"host": "attacker.example"}).status_code == 400


def test_nothing_of_a_request_is_left_in_temporary_folders(client):
    folders = [tempfile.gettempdir()] + (["/dev/shm"] if os.path.isdir("/dev/shm") else [])

    def ours() -> set[str]:
        return {f"{folder}/{name}" for folder in folders for name in os.listdir(folder) if "colorize-serve" in name}

    before = ours()
    assert post(client, encoded(gray_photo(), "PNG")).status_code == 200
    assert post(client, b"not an image").status_code == 422
    assert ours() == before


def test_folders_left_by_a_killed_server_are_removed_and_a_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    parent = tempfile.gettempdir()
    stale = tempfile.mkdtemp(prefix=f"colorize-serve-{dead.pid}-", dir=parent)
    live = tempfile.mkdtemp(prefix=f"colorize-serve-{os.getpid()}-", dir=parent)
    try:
        (Path(stale) / "upload").write_bytes(b"a photo")
        assert remove_stale_workspaces() >= 1
        assert not os.path.exists(stale) and os.path.isdir(live)
    finally:
        shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(live, ignore_errors=True)


@contextmanager
def serving(app):
    """``app`` on a real uvicorn in a thread, on a free port of 127.0.0.1; yields the port."""
    sock = listening_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + SAFETY_TIMEOUT
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started serving"
        assert time.monotonic() < deadline, f"uvicorn had not started in {SAFETY_TIMEOUT} s"
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def live_server(app):
    with serving(app) as port:
        yield port


class WatchedLock:
    """A lock that tells when a thread comes to take it (``reached``), as the model's lock is
    taken: ``with lock:``."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reached = threading.Event()

    def acquire(self) -> bool:
        return self._lock.acquire()

    def release(self) -> None:
        self._lock.release()

    def __enter__(self):
        self.reached.set()
        self._lock.acquire()
        return self

    def __exit__(self, *exception) -> None:
        self._lock.release()


def test_the_page_and_experts_load_while_a_photo_holds_the_model(app, live_server, monkeypatch):
    lock = WatchedLock()
    monkeypatch.setattr(app.state.service, "model_lock", lock)
    answers = {}

    def post_photo():
        answers["photo"] = post_over_http(live_server, encoded(gray_photo(), "PNG")).status

    lock.acquire()
    try:
        photo = threading.Thread(target=post_photo)
        photo.start()
        deadline = time.monotonic() + SAFETY_TIMEOUT
        while not lock.reached.wait(0.01):  # until the photo is waiting for the model
            assert photo.is_alive(), f"the photo's request ended before it reached the model: {answers}"
            assert time.monotonic() < deadline, f"the photo had not reached the model in {SAFETY_TIMEOUT} s"
        for path in ("/", "/api/experts"):
            # Waiting behind the photo, a GET would wait for as long as the test holds the lock.
            connection = http.client.HTTPConnection("127.0.0.1", live_server, timeout=SAFETY_TIMEOUT)
            try:
                connection.request("GET", path)
                assert connection.getresponse().status == 200
            except TimeoutError:
                pytest.fail(f"GET {path} waited behind a photo")
        assert "photo" not in answers, "the photo should still be waiting for the model"
    finally:
        lock.release()
    photo.join(SAFETY_TIMEOUT)
    assert answers["photo"] == 200


def test_an_upload_over_the_limit_is_refused_without_reading_it_all(live_server):
    # Chunked, so no Content-Length warns the server: it must count as it reads, and stop.
    total, chunk = 64 * 2**20, 64 * 1024
    sent = 0

    def body():
        nonlocal sent
        yield FILE_PART_HEAD
        while sent < total:
            sent += chunk
            yield b"\0" * chunk

    connection = http.client.HTTPConnection("127.0.0.1", live_server, timeout=SAFETY_TIMEOUT)
    try:
        connection.request(
            "POST",
            "/api/colorize",
            body=body(),
            headers=MULTIPART,
            encode_chunked=True,
        )
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed while the rest was still being sent
    response = connection.getresponse()
    assert response.status == 413, response.read()
    print(f"sent {sent / 2**20:.2f} MB before the server closed")
    assert sent < total / 4, f"the client could send {sent / 2**20:.0f} MB: the server read far past the limit"
    connection.close()
    second = http.client.HTTPConnection("127.0.0.1", live_server, timeout=SAFETY_TIMEOUT)
    second.request("GET", "/api/experts")
    assert second.getresponse().status == 200


def test_serving_photos_never_imports_torch(tmp_path):
    # A child process: this one has imported torch for other tests' sake. torch is installed
    # here, so a stray import anywhere on the path would show in sys.modules.
    code = """
import io, sys
from pathlib import Path
import numpy as np
from PIL import Image
from fastapi.testclient import TestClient
from colorize.pipelines.inference import Pipeline
from colorize.pipelines.serve import create_app

app = create_app(Pipeline.from_config(home=Path(sys.argv[1])))
photo = io.BytesIO()
Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56), np.uint8)).save(photo, "PNG")
with TestClient(app) as client:
    answers = [client.get("/").status_code, client.get("/api/experts").status_code]
    for fields in ({}, {"expert": "people", "saturation": "1.5"}, {"preview": "1"}):
        answers.append(client.post("/api/colorize", files={"file": ("p", photo.getvalue())}, data=fields).status_code)
print(answers, "torch" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=SAFETY_TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[200,", "200,", "200,", "200,", "200]", "False"], result.stdout


def test_a_forced_expert_is_byte_for_byte_what_a_pipeline_forced_to_it_writes(client, tmp_path):
    upload = encoded(gray_photo("rocket"), "PNG")
    response = post(client, upload, expert="people")
    assert response.status_code == 200, response.text
    source = tmp_path / "photo.png"
    source.write_bytes(upload)
    forced = Pipeline.from_config(home=tmp_path / "home", expert="people")
    result = forced.colorize(source)
    assert (result.route.expert, result.route.reason) == ("people", "forced")
    assert response.content == result.save(tmp_path / "out" / "photo.png").read_bytes()


def test_without_the_web_extra_serve_says_what_to_install():
    # The packages are installed here; the child process is made to see them missing.
    code = "import sys; sys.modules['fastapi'] = None; sys.argv = ['colorize', 'serve']; import colorize.__main__"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=SAFETY_TIMEOUT)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'colorize-experts[web]'" in lines[0], result.stderr


# Colour hints: every expert follows them (experts/hints.py, ``spread_hints``).


def unsure(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` routing every photo to the general expert: no class is ever sure enough."""
    from dataclasses import replace

    return Pipeline(pipeline.classifier, pipeline.store, replace(pipeline.policy, threshold=1.0))


def mid_gray_places(gray: np.ndarray) -> list[tuple[int, int]]:
    """(x, y) in the left and in the right third where the photo is nearest mid-gray: a hint's
    colour there is neither clipped to black or white nor lost."""
    light = lightness(gray)
    height, width = light.shape
    band = slice(height // 4, 3 * height // 4)
    places = []
    for columns in (slice(8, width // 3), slice(2 * width // 3, width - 8)):
        row, col = np.unravel_index(np.argmin(np.abs(light[band, columns] - 55)), light[band, columns].shape)
        places.append((int(col + columns.start), int(row + band.start)))
    return places


def ab_of(response) -> np.ndarray:
    return rgb2lab(np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")) / 255)[..., 1:]


def test_hints_move_the_colour_at_their_points_and_no_hints_leave_the_expert_alone(client):
    gray = gray_photo("astronaut", 160)
    upload = encoded(gray, "PNG")
    own = post(client, upload, expert="general")
    assert own.status_code == 200, own.text
    for fields in ({"hints": "[]"}, {"hints": " "}):
        response = post(client, upload, expert="general", **fields)
        assert response.status_code == 200 and response.content == own.content, (fields, response.text)
    (x0, y0), (x1, y1) = mid_gray_places(gray)
    points = [
        {"x": x0, "y": y0, "color": "#1060d0", "radius": 4},
        # The same place as a fraction: the centre of pixel x1, y1.
        {"x": (x1 + 0.5) / 160, "y": (y1 + 0.5) / 160, "color": "red", "radius": 4, "relative": True},
    ]
    hinted = post(client, upload, expert="general", hints=json.dumps(points))
    assert hinted.status_code == 200, hinted.text
    assert (hinted.headers["x-colorize-expert"], hinted.headers["x-colorize-reason"]) == ("general", "forced")
    before, after = ab_of(own), ab_of(hinted)
    for (x, y), colour in (((x0, y0), "#1060d0"), ((x1, y1), "red")):
        hint = np.array(colour_ab(colour))
        moved = np.linalg.norm(before[y, x] - hint) - np.linalg.norm(after[y, x] - hint)
        assert moved > 20, f"at {x}, {y}: ab {before[y, x]} -> {after[y, x]}, the hint {colour} is {hint}"
    assert after[y0, x0, 1] < -25 and after[y1, x1, 0] > 25
    difference = np.abs(lightness(np.asarray(Image.open(io.BytesIO(hinted.content)))) - lightness(gray))
    assert difference.mean() < 1.0, "hints change the colour, never the photo's lightness"


def test_hints_follow_the_route_the_classifier_chose():
    upload = encoded(gray_photo(), "PNG")
    points = json.dumps([{"x": 10, "y": 20, "color": "teal"}])
    with TestClient(create_app(unsure(Pipeline.from_config()))) as client:
        plain, hinted = post(client, upload), post(client, upload, hints=points)
    assert hinted.status_code == 200, hinted.text
    assert hinted.headers["x-colorize-expert"] == "general" and hinted.headers["x-colorize-reason"] != "forced"
    assert hinted.headers["x-colorize-reason"] == plain.headers["x-colorize-reason"]  # routing reads the photo alone
    assert hinted.content != plain.content


def test_a_hint_keeps_its_colour_whatever_the_saturation(client):
    gray = gray_photo("astronaut", 160)
    (x, y), _ = mid_gray_places(gray)
    points = json.dumps([{"x": x, "y": y, "color": "#1060d0", "radius": 4}])
    upload = encoded(gray, "PNG")
    outputs = [post(client, upload, expert="general", saturation=s, hints=points) for s in ("0", "1", "2")]
    assert all(o.status_code == 200 for o in outputs), [o.text for o in outputs]
    for output in outputs:
        assert np.linalg.norm(ab_of(output)[y, x] - np.array(colour_ab("#1060d0"))) < 8
    # With saturation 0 the expert's own colour is gone: far from the point the photo stays gray.
    assert np.abs(ab_of(outputs[0])[:, -20:]).max() < 3


@pytest.mark.parametrize(
    "fields, code, detail",
    [
        (
            {"hints": "[{x: 1}]"},
            "bad_hints",
            "hints: not JSON (Expecting property name enclosed in double quotes, character 2): '[{x: 1}]'",
        ),
        (
            {"hints": '{"x": 1, "y": 2, "color": "red"}'},
            "bad_hints",
            "hints: expected a list of points like "
            '[{"x": 120, "y": 80, "color": "red"}], got {"x": 1, "y": 2, "color": "red"}',
        ),
        (
            {"hints": '[{"x": 1, "y": 2, "color": "bleu"}]'},
            "bad_hints",
            "hints, point 1: 'bleu' is not a colour (a CSS name such as 'red', or '#b22222')",
        ),
        (
            {"hints": '[{"x": 1, "y": 2, "color": "red"}, {"x": 96, "y": 2, "color": "red"}]'},
            "bad_hints",
            "hints, point 2: hint at 96, 2 lies outside the 96 x 96 photo",
        ),
        (
            {"hints": json.dumps([{"x": 1, "y": 2, "color": "red"}] * 1000)},
            "bad_field",
            "the field 'hints' is too long",
        ),
    ],
    ids=["not JSON", "not a list", "bad colour", "outside the photo", "too long"],
)
def test_bad_hints_are_a_one_line_422_naming_them_and_the_next_request_works(client, fields, code, detail):
    response = post(client, encoded(gray_photo(), "JPEG", quality=95), **fields)
    assert response.status_code == 422, response.text
    assert response.json() == {"detail": detail, "code": code}
    assert_good_request_works(client)
