"""The local web page and HTTP API behind ``colorize serve`` (FastAPI; the ``web`` extra).

``POST /api/colorize`` takes one photo (multipart field ``file``) and answers with the
colorized photo in the upload's format, written by the same ``images.encode`` as
``colorize auto`` (bit depth, alpha, ICC, EXIF kept), the route in ``X-Colorize-*`` headers.
An optional ``hints`` field carries colour hints for the photo: the JSON list of points that
``colorize auto --hints`` reads (experts/hints.py), in the pixels of the photo as decoded
upright; every expert follows them. ``GET /api/experts`` lists what the page's menu offers;
``GET /`` is the one static page.

Only this page may make the server work: a POST whose ``Origin`` or ``Sec-Fetch-Site`` says
another site sent it is refused (403) unless that origin is allowed. A few uploads at a time
are taken (more get 503 at once), and one that stalls is dropped, so clients cannot make the
server hold more than that many uploads' worth of memory.

Nothing of a photo is kept or logged, and on Linux nothing touches the disk. Each request
gets a private folder (mode 0700) in ``/dev/shm``, which is memory: the upload streams into
it, ``images.decode`` reads it as the command line reads any file, ``images.encode``
writes the result beside it, and the folder is removed before the response is sent (on
errors too). A file rather than a buffer, because ``decode`` and ``encode`` take paths (and
tifffile, which reads 16-bit RGB TIFFs, resolves its path, so an anonymous memfd will not
do); a second copy of their format and metadata rules for buffers would drift from the
CLI's. Where ``/dev/shm`` is missing or too small (macOS, Windows, a small container) the
system's temporary folder stands in. Folders that a killed server left are removed when
the next one starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import ipaddress
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from colorize.core.color import is_colour_photo
from colorize.core.errors import ColorizeError
from colorize.core.files import NoSpaceError, process_alive
from colorize.core.images import DEFAULT_MAX_PIXELS, FORMAT_NAMED, ImageError, decode, encode, output_bits, to_8bit
from colorize.core.modelfile import ModelFileError
from colorize.experts.hints import Hint, HintError, hints_from_json
from colorize.pipelines.inference import Pipeline, Prediction, provenance_note
from colorize.router import NoFallbackExpertError

if TYPE_CHECKING:  # python-multipart defines its callback table for checkers alone
    from python_multipart.multipart import MultipartCallbacks

DEFAULT_MAX_UPLOAD_BYTES = 50 * 2**20
# Uploads taken at once, from the first byte until the answer: each holds up to
# max_upload_bytes in /dev/shm (memory), so this bounds what clients can make the server hold.
# The page sends one photo at a time, so this is also how many pages can work at once.
DEFAULT_MAX_UPLOADS = 4
# Seconds an upload may send nothing before it is dropped: else a client that stalls keeps
# its share of that memory, and its place among the uploads, until it closes.
DEFAULT_READ_TIMEOUT = 30.0
MAX_SATURATION = 4.0
FIELDS = ("file", "expert", "saturation", "force", "preview", "hints")
# Room for the multipart framing and the small fields around the photo itself.
_FORM_OVERHEAD = 64 * 1024
_MAX_FIELD_BYTES = 1024
# Hints are a list of points, some 50 bytes each: room for hundreds, within _FORM_OVERHEAD.
_MAX_HINTS_BYTES = 32 * 1024
# Photos decoded or composed at once: two let one decode while the other is in the model,
# and bound memory however many browsers post at the same time.
_PHOTOS_IN_FLIGHT = 2
# The page may talk only to this server: a browser then refuses any other request outright.
_PAGE_POLICY = (
    "default-src 'none'; img-src 'self' blob: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_log = logging.getLogger("colorize.serve")


class Refused(Exception):
    """A request the API turns down: HTTP ``status``, a one-line ``detail`` and a short ``code``."""

    def __init__(self, status: int, detail: str, code: str, body_left: bool = False):
        super().__init__(detail)
        self.status, self.detail, self.code = status, detail, code
        self.body_left = body_left  # refused before the whole request body was read

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store"}
        if self.body_left:
            # Else the server keeps the connection and reads (and drops) the rest of the
            # upload, however large; closing it stops the client sending.
            headers["Connection"] = "close"
        return JSONResponse({"detail": self.detail, "code": self.code}, self.status, headers=headers)


@dataclass
class Options:
    """The form fields of one ``POST /api/colorize``, checked."""

    expert: str | None  # None: the pipeline's own routing
    saturation: float
    force: bool
    preview: bool
    hints: list[Hint]  # empty: none


@dataclass
class Output:
    body: bytes
    media_type: str
    route_headers: dict[str, str]


def create_app(
    pipeline: Pipeline,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    default_saturation: float = 1.0,
    allowed_hosts: list[str] | None = None,
    allowed_origins: Sequence[str] = (),
    max_uploads: int = DEFAULT_MAX_UPLOADS,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
) -> FastAPI:
    """The FastAPI app serving ``pipeline``.

    ``max_upload_bytes``: larger uploads get 413 before more than that is read.
    ``max_pixels``: larger photos get 422, checked from the header before decoding.
    ``default_saturation``: a request's ``saturation`` when it sends none; it scales the
    chroma the pipeline gives (whose own ``saturation`` applies beneath it).
    ``allowed_hosts``: Host header values served (None: any); a page on another site that a
    DNS record points at 127.0.0.1 then cannot read this server's answers.
    ``allowed_origins``: origins (``http://localhost:3000``) of other sites whose pages may
    POST, and read the answers; any other site's POST gets 403. ValueError for a bad one.
    ``max_uploads``: uploads taken at once; more get 503 before their body is read.
    ``read_timeout``: seconds an upload may send nothing before it gets 408 and is closed.
    """
    remove_stale_workspaces()
    service = _Service(pipeline, max_pixels, default_saturation)
    page = files("colorize.pipelines").joinpath("web/index.html").read_bytes()
    app = FastAPI(title="colorize", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.state.uploads = uploads = _Slots(max_uploads)
    origins = {normalised_origin(origin) for origin in allowed_origins}
    # The last added runs first: the Host check, then the origin check, then CORS.
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=sorted(origins),
            allow_methods=["GET", "POST"],
            expose_headers=[*_ROUTE_HEADERS, "Server-Timing"],
            # Chrome asks before a public site's page may reach a loopback server.
            allow_private_network=True,
        )
    app.add_middleware(_SameOriginPosts, allowed_origins=origins)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts, www_redirect=False)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> Response:
        # Async and from memory: the page loads while photos hold every worker thread.
        return HTMLResponse(
            page,
            headers={
                "Content-Security-Policy": _PAGE_POLICY,
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-cache",
            },
        )

    @app.get("/api/experts")
    async def experts() -> JSONResponse:
        return JSONResponse(service.describe(max_upload_bytes))

    @app.post("/api/colorize")
    async def colorize(request: Request) -> Response:
        workspace = None
        try:
            with uploads.take():
                workspace, fields = await _read_form(request, max_upload_bytes, read_timeout)
                options = service.options(fields)
                output = await run_in_threadpool(service.colorize, workspace, options)
        except Refused as refusal:
            return refusal.response()
        except Exception as error:  # one photo's bug must not take the page down with a bare 500
            _log.exception("cannot colorize an upload")
            detail = " ".join(f"{type(error).__name__}: {error}".split())
            return Refused(500, f"cannot colorize this photo ({detail})", "internal").response()
        finally:
            if workspace is not None:
                workspace.close()
        return Response(
            output.body,
            media_type=output.media_type,
            headers={**output.route_headers, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )

    return app


class _Slots:
    """At most ``size`` uploads at once. Counted on the event loop, which runs one thing at a
    time, so a plain counter needs no lock."""

    def __init__(self, size: int):
        self.size = size
        self.used = 0

    @contextlib.contextmanager
    def take(self):
        if self.used >= self.size:
            raise Refused(503, f"busy with {self.size} uploads; try again in a moment", "busy", body_left=True)
        self.used += 1
        try:
            yield
        finally:
            self.used -= 1


class _SameOriginPosts:
    """ASGI middleware: a POST (or any method that is not a read) sent by a page of another site
    is refused with 403 before its body is read, so no web page can make this server work.

    Browsers say who sends: ``Origin`` on every POST, ``Sec-Fetch-Site`` on newer ones. A tool
    such as curl sends neither, and is served.
    """

    def __init__(self, app, allowed_origins: set[str]):
        self.app = app
        self.allowed_origins = allowed_origins

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            origin = _foreign_origin(Headers(scope=scope), scope.get("scheme", "http"), self.allowed_origins)
            if origin is not None:
                detail = f"refused: a page of another site ({origin}) sent this; allow it with --allow-origin"
                await Refused(403, detail, "cross_origin", body_left=True).response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _foreign_origin(headers: Headers, scheme: str, allowed: set[str]) -> str | None:
    """The site that sent a request when it is neither this server nor an allowed one, else None."""
    origin = headers.get("origin")
    if origin is not None and origin.lower() in allowed:
        return None
    site = headers.get("sec-fetch-site", "same-origin")
    own = f"{scheme}://{headers.get('host', '')}".lower()
    if (origin is None or origin.lower() == own) and site in ("same-origin", "none"):
        return None
    return origin or site


def normalised_origin(text: str) -> str:
    """``text`` as a browser writes it in ``Origin`` (``http://localhost:3000``); ValueError if it is not one."""
    parts = urlsplit(text.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == -1
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise ValueError(f"{text!r} is not an origin: scheme, host and port only, like http://localhost:3000")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default_port = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default_port) else "")


class _Service:
    """The pipeline and the rules around one request; the model runs one photo at a time."""

    def __init__(self, pipeline: Pipeline, max_pixels: int, default_saturation: float):
        self.pipeline = pipeline
        self.max_pixels = max_pixels
        self.default_saturation = default_saturation
        # A Pipeline is not thread-safe: it loads experts and makes its thread pool lazily.
        self.model_lock = threading.Lock()
        self._in_flight = threading.BoundedSemaphore(_PHOTOS_IN_FLIGHT)

    def describe(self, max_upload_bytes: int) -> dict:
        sources = self.pipeline.store.sources()
        return {
            "experts": [
                {"name": name, "source": sources[name].source if name in sources else "file"}
                for name in sorted(self.pipeline.available)
            ],
            "default_saturation": self.default_saturation,
            "max_saturation": MAX_SATURATION,
            "max_upload_bytes": max_upload_bytes,
            "max_pixels": self.max_pixels,
        }

    def options(self, fields: dict[str, str]) -> Options:
        expert = fields.get("expert", "").strip() or None
        if expert == "auto":
            expert = None
        if expert is not None and expert not in self.pipeline.available:
            known = ", ".join(["auto", *sorted(self.pipeline.available)])
            raise Refused(422, f"unknown expert {expert!r}; choose one of: {known}", "unknown_expert")
        text = fields.get("saturation", "").strip()
        try:
            saturation = float(text) if text else self.default_saturation
        except ValueError:
            saturation = math.nan
        if not 0 <= saturation <= MAX_SATURATION:
            raise Refused(422, f"saturation must be a number from 0 to {MAX_SATURATION:g}, got {text!r}", "bad_field")
        hints = _hints(fields.get("hints", ""))
        return Options(expert, saturation, _flag(fields, "force"), _flag(fields, "preview"), hints)

    def colorize(self, workspace: _Workspace, options: Options) -> Output:
        with self._in_flight:
            return self._colorize(workspace, options)

    def _colorize(self, workspace: _Workspace, options: Options) -> Output:
        timings = {}
        started = time.perf_counter()
        try:
            decoded = decode(workspace.upload, self.max_pixels)
        except ImageError as error:
            raise Refused(422, str(error), "bad_image") from None
        if not options.force and is_colour_photo(decoded.data):
            raise Refused(
                422, "already a colour photo; send force=1 to colorize its luminance anyway", "already_colour"
            )
        lightness = decoded.lightness()  # outside the lock: full-resolution work another photo need not wait for
        timings["decode"] = time.perf_counter() - started
        height, width = lightness.shape[-2:]
        for number, hint in enumerate(options.hints, 1):
            try:
                hint.check_inside(height, width)
            except HintError as error:
                raise Refused(422, f"hints, point {number}: {error}", "bad_hints") from None
        eight_bit = options.preview or output_bits(decoded) == 8
        started = time.perf_counter()
        try:
            with self.model_lock:
                timings["queue"] = time.perf_counter() - started
                started = time.perf_counter()
                prediction = self._predict(lightness, options)
                # In the lock too: the pipeline makes its thread pool on first use.
                rgb = prediction.compose(self.pipeline.map_bands, dtype=np.uint8 if eight_bit else np.float32)
        except (ModelFileError, NoFallbackExpertError) as error:
            raise Refused(500, str(error), "model") from None
        chosen = prediction.route
        timings["model"] = time.perf_counter() - started
        started = time.perf_counter()
        if options.preview:
            # Only for showing a format the browser cannot (TIFF): 8-bit PNG, no metadata.
            buffer = io.BytesIO()
            Image.fromarray(to_8bit(rgb), "RGB").save(buffer, "PNG", compress_level=1)
            body, media_type = buffer.getvalue(), "image/png"
        else:
            try:
                body = _encoded(rgb, decoded, provenance_note(chosen), workspace.folder)
            except NoSpaceError:
                raise Refused(507, "no space left in memory or the temporary folder to write the result", "no_space")
            media_type = FORMAT_NAMED[decoded.format].media_type
        timings["encode"] = time.perf_counter() - started
        return Output(body, media_type, _route_headers(chosen, timings))

    def _predict(self, lightness: np.ndarray, options: Options) -> Prediction:
        """The pipeline's prediction for one L (1, H, W), with the request's expert, hints and
        saturation: the page chooses them per photo, the pipeline once for all."""
        hints = [options.hints] if options.hints else None
        return self.pipeline.predict([lightness], hints, expert=options.expert, saturation=options.saturation)[0]


def _hints(text: str) -> list[Hint]:
    """The ``hints`` field: a JSON list of points (experts/hints.py); empty for none."""
    if not text.strip():
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise Refused(422, f"hints: not JSON ({error.msg}, character {error.pos}): {shown!r}", "bad_hints") from None
    if not isinstance(value, list):
        shown = json.dumps(value)[:60]
        raise Refused(
            422,
            f'hints: expected a list of points like [{{"x": 120, "y": 80, "color": "red"}}], got {shown}',
            "bad_hints",
        )
    try:
        return hints_from_json(value, "hints")
    except HintError as error:
        raise Refused(422, str(error), "bad_hints") from None


def _flag(fields: dict[str, str], name: str) -> bool:
    value = fields.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise Refused(422, f"{name} must be 1 or 0, got {value!r}", "bad_field")


_ROUTE_HEADERS = ("X-Colorize-Expert", "X-Colorize-Confidence", "X-Colorize-Reason", "X-Colorize-Probabilities")


def _route_headers(chosen, timings: dict[str, float]) -> dict[str, str]:
    headers = {
        "X-Colorize-Expert": _header_text(chosen.expert),
        "X-Colorize-Reason": _header_text(chosen.ascii_reason),  # plain ASCII for curl -D
        "X-Colorize-Probabilities": json.dumps({k: round(float(v), 4) for k, v in chosen.probabilities.items()}),
        "Server-Timing": ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in timings.items()),
    }
    if chosen.confidence is not None:
        headers["X-Colorize-Confidence"] = f"{chosen.confidence:.4f}"
    return headers


_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def _header_text(text: str) -> str:
    """Header values are Latin-1 on the wire, and an expert's name is any Unicode: what is not
    printable ASCII is percent-encoded UTF-8 (as decodeURIComponent reads it)."""
    return quote(text, safe=_HEADER_SAFE)


def _encoded(rgb: np.ndarray, decoded, note: str, folder: Path) -> bytes:
    """The bytes ``colorize auto`` would write for this photo, through a file in ``folder`` removed at once."""
    target = folder / f"result{FORMAT_NAMED[decoded.format].extensions[0]}"
    try:
        return encode(rgb, decoded, target, note=note).read_bytes()
    except NoSpaceError:
        if not target.parent.is_relative_to(_MEMORY):
            raise
    finally:
        target.unlink(missing_ok=True)
    # /dev/shm filled up while the result was written: the ordinary temporary folder then.
    with tempfile.TemporaryDirectory(prefix=_prefix()) as private:
        return encode(rgb, decoded, Path(private) / target.name, note=note).read_bytes()


_MEMORY = Path("/dev/shm")


_PREFIX = "colorize-serve-"


def _prefix() -> str:
    """Names of our private folders: the process id tells a live server's from a killed one's."""
    return f"{_PREFIX}{os.getpid()}-"


def _workspace_parent(expected_bytes: int) -> Path | None:
    """/dev/shm when it is there and has room for the upload, its result and some margin."""
    if not sys.platform.startswith("linux") or not os.access(_MEMORY, os.W_OK | os.X_OK):
        return None
    try:
        return _MEMORY if shutil.disk_usage(_MEMORY).free > 4 * expected_bytes else None
    except OSError:
        return None


def remove_stale_workspaces() -> int:
    """Remove the private folders of servers that were killed mid-request; returns how many."""
    removed = 0
    for parent in {_MEMORY, Path(tempfile.gettempdir())}:
        try:
            entries = list(os.scandir(parent))
        except OSError:
            continue
        for entry in entries:
            pid = entry.name.removeprefix(_PREFIX).split("-")[0]
            if entry.name.startswith(_PREFIX) and pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
    return removed


class _Workspace:
    """One request's private folder: the upload streams into ``upload``; ``close`` removes it all."""

    def __init__(self, expected_bytes: int):
        self.folder = Path(tempfile.mkdtemp(prefix=_prefix(), dir=_workspace_parent(expected_bytes)))
        self.upload = self.folder / "upload"
        self.size = 0
        self._fd = os.open(self.upload, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def write(self, data: bytes) -> None:
        # Called on the event loop, chunk by chunk as the body arrives: a write to tmpfs is a
        # memory copy; to the fallback folder it is a page-cache write, as short.
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise Refused(507, f"no space left in {self.folder.parent} for the upload", "no_space") from None
            raise
        self.size += len(data)

    def finish_upload(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        self.finish_upload()
        shutil.rmtree(self.folder, ignore_errors=True)


async def _read_form(request: Request, max_upload_bytes: int, read_timeout: float) -> tuple[_Workspace, dict[str, str]]:
    """Stream a multipart body: the ``file`` part into a ``_Workspace``, the other fields into a dict.

    Starlette's own form parser spools a file over 1 MB to a temporary file on disk, and
    learns the size only by reading it all; this stops at the limit instead.
    """
    try:
        form = await _parse(request, max_upload_bytes, read_timeout)
    except Refused as refusal:
        refusal.body_left = True
        raise
    if form.workspace is None:
        raise Refused(422, "no photo: send it in the multipart field 'file'", "no_file")
    return form.workspace, form.fields


async def _parse(request: Request, max_upload_bytes: int, read_timeout: float) -> _Form:
    kind, parameters = parse_options_header(request.headers.get("content-type"))
    if kind != b"multipart/form-data" or not parameters.get(b"boundary"):
        raise Refused(415, "send the photo as multipart/form-data, in the field 'file'", "not_multipart")
    limit = max_upload_bytes + _FORM_OVERHEAD
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _too_large(int(length), max_upload_bytes)
    form = _Form(int(length) if length.isdigit() else max_upload_bytes, max_upload_bytes)
    try:
        parser = MultipartParser(parameters[b"boundary"], form.callbacks())
        received = 0
        async for chunk in _body(request, read_timeout):
            received += len(chunk)
            if received > limit:
                raise _too_large(received, max_upload_bytes)
            parser.write(chunk)
        parser.finalize()
        if not form.ended:
            raise Refused(400, "the upload ended early (incomplete multipart body)", "bad_form")
        if form.workspace is not None:
            form.workspace.finish_upload()
    except Refused:
        form.discard()
        raise
    except Exception as error:  # the parser's errors, or a client gone mid-upload
        form.discard()
        raise Refused(400, f"not a valid multipart upload ({type(error).__name__})", "bad_form") from None
    return form


async def _body(request: Request, read_timeout: float):
    """The request body chunk by chunk; 408 when nothing arrives for ``read_timeout`` seconds."""
    chunks = request.stream()
    while True:
        try:
            async with asyncio.timeout(read_timeout):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise Refused(408, f"the upload stalled: nothing arrived for {read_timeout:g} s", "timeout") from None
        yield chunk


def _too_large(size: int, limit: int) -> Refused:
    return Refused(
        413,
        f"upload of {size / 2**20:.1f} MB is over the limit of {limit / 2**20:.3g} MB (--max-upload-mb)",
        "too_large",
    )


class _Form:
    """python-multipart callbacks that keep one ``file`` part (in a ``_Workspace``) and a few small text fields."""

    def __init__(self, expected_bytes: int, max_upload_bytes: int):
        self.expected_bytes = expected_bytes
        self.max_upload_bytes = max_upload_bytes
        self.workspace: _Workspace | None = None
        self.fields: dict[str, str] = {}
        self.ended = False
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._value = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._add_header_name(data[start:end]),
            "on_header_value": lambda data, start, end: self._add_header_value(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": lambda data, start, end: self._data(data[start:end]),
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def discard(self) -> None:
        if self.workspace is not None:
            self.workspace.close()
            self.workspace = None

    def _begin(self) -> None:
        self._disposition, self._name, self._value = b"", "", bytearray()

    def _add_header_name(self, data: bytes) -> None:
        self._header_name += data

    def _add_header_value(self, data: bytes) -> None:
        self._header_value += data

    def _header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        # The part's file name is never read: the server has no use for it, and so cannot leak it.
        _, parameters = parse_options_header(self._disposition)
        self._name = parameters.get(b"name", b"").decode("utf-8", "replace")
        if self._name not in FIELDS:
            raise Refused(422, f"unknown field {self._name!r}; the fields are: {', '.join(FIELDS)}", "bad_field")
        if self._name in self.fields or (self._name == "file" and self.workspace is not None):
            raise Refused(422, f"the field {self._name!r} is sent twice (one photo per request)", "bad_field")
        if self._name == "file":
            self.workspace = _Workspace(self.expected_bytes)

    def _data(self, data: bytes) -> None:
        if self._name == "file":
            assert self.workspace is not None  # made when this part's headers named it "file"
            if self.workspace.size + len(data) > self.max_upload_bytes:
                raise _too_large(self.workspace.size + len(data), self.max_upload_bytes)
            self.workspace.write(data)
            return
        self._value += data
        if len(self._value) > (_MAX_HINTS_BYTES if self._name == "hints" else _MAX_FIELD_BYTES):
            raise Refused(422, f"the field {self._name!r} is too long", "bad_field")

    def _part_end(self) -> None:
        if self._name != "file":
            self.fields[self._name] = self._value.decode("utf-8", "replace")

    def _end(self) -> None:
        self.ended = True


class ServeError(ColorizeError, RuntimeError):
    """The server cannot start (the address is taken, not this machine's, ...); one line."""


def listening_socket(host: str, port: int):
    """A socket bound and listening on ``host``:``port`` (0: any free port)."""
    import socket

    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise ServeError(f"cannot listen on {host}: {error.strerror}") from None
    sock = socket.socket(family, kind, protocol)
    try:
        if os.name == "posix":  # lets a restarted server take its port back at once
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port} ({error.strerror or error})") from None
    return sock


def loopback_host_names(sock, host: str) -> list[str] | None:
    """The ``Host`` names to serve when ``sock`` listens on a loopback address; None when it
    listens on the network, where any name may reach it.

    The socket's own address says whether it is loopback, as the system read ``host`` (the
    address as typed: ``127.1``, ``localhost``); its names are that, ``host``, and localhost.
    """
    address = sock.getsockname()[0]
    if not _is_loopback(address):
        return None
    return sorted({"localhost", "127.0.0.1", "[::1]", _host_header_name(address), _host_header_name(host)})


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    # ::ffff:127.0.0.1 is 127.0.0.1 on a dual-stack socket; older Pythons call it not loopback.
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


def _host_header_name(name: str) -> str:
    """``name`` as a Host header writes it: lower case, an IPv6 address in brackets."""
    name = name.strip("[]").lower()
    return f"[{name}]" if ":" in name else name


def url_of(sock) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run_server(app: FastAPI, sock) -> None:
    """Serve ``app`` on the listening socket ``sock`` until Ctrl-C or SIGTERM.

    uvicorn finishes the requests in flight, then raises the signal again (KeyboardInterrupt
    for Ctrl-C), for the caller to report. No access log: the page and its photos are private.
    """
    import uvicorn

    config = uvicorn.Config(
        app, log_level="warning", access_log=False, server_header=False, lifespan="off", timeout_graceful_shutdown=10
    )
    uvicorn.Server(config).run(sockets=[sock])
