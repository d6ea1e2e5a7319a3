"""`sketchify serve`: the web page and its HTTP API, on the standard library's ThreadingHTTPServer.

One Sketcher serves every request. Drawing holds a lock, so requests queue for the one model in memory, while
reading, decoding and encoding run in each request's own thread.

    GET  /                  the page (sketchify/web/index.html)
    GET  /api/styles        {"styles": [...], "default": ..., "sample_temperature": ..., "max_body": ..., ...}
    GET  /api/thumbnail     ?style=S: a small sketch of a bundled photo in that style (PNG)
    POST /api/sketch        ?style=S&seed=N&t=T&line_weight=PX&format=png|svg, the photo's bytes as the body: its
                            sketch at its size, PNG (default) or SVG (vector paths; needs the svg extra)
    POST /api/samples       ?n=K&style=S&seed=N&t=T&line_weight=PX: {"width", "height", "samples": [K base64
                            PNGs], ...}
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import math
import re
import socket
import socketserver
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from .errors import SketchifyError, one_line
from .images import DEFAULT_MAX_PIXELS, encode, format_name, load_photo
from .settings import MAX_LINE_WEIGHT, MAX_SEED, DrawSettings

MAX_BODY = 50 * 2**20  # bytes of one uploaded photo: more than any camera's JPEG, little enough to hold in memory
MAX_SAMPLES = 8  # samples per request: each is a full drawing, and others wait for the model meanwhile
DRAIN = 64 * 2**20  # an oversized body up to this is read and dropped, so the client reads the 413, not a reset
IDLE_TIMEOUT = 60  # seconds a connection may stall mid-request before its thread gives up on it
JSON = "application/json"
PNG = "image/png"
FORMATS = {"png": PNG, "svg": "image/svg+xml"}  # what /api/sketch answers in


class ApiError(Exception):
    """A request the client can fix: answered with its status and {"error": message}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Gone(Exception):
    """The client left (disconnected mid-upload): nothing to answer."""


# the server


class SketchServer(ThreadingHTTPServer):
    daemon_threads = True  # a stalled client never keeps the process alive after Ctrl-C
    request_queue_size = 64  # a burst of uploads connects at once instead of waiting on a backlog of 5

    def __init__(self, address: tuple[str, int], sketcher=None, *, max_body: int = MAX_BODY,
                 max_pixels: int = DEFAULT_MAX_PIXELS, log=None):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)
        self.sketcher = sketcher  # may be set after binding: a taken port fails before the model loads
        self.max_body = max_body
        self.max_pixels = max_pixels
        self.log = log
        self.model_lock = threading.Lock()
        self.thumbnails: dict[str, bytes] = {}

    def server_bind(self):
        # HTTPServer's own looks up the host's full DNS name, which can stall for seconds on an offline machine
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        """A client that drops its connection is not the server's problem; anything else gets one line."""
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)) and self.log:
            self.log(f"error with {client_address[0]}: {type(error).__name__}: {one_line(error)}")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(load_sketcher, *, host: str, port: int, log=print) -> None:
    """Listen, load the model, print the address, answer until Ctrl-C."""
    try:
        server = SketchServer((host, port), log=log)
    except OSError as e:
        raise SketchifyError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    with server:
        server.sketcher = load_sketcher()
        log(f"sketchify serve: open {server.url} in a browser (Ctrl-C stops)")
        if not is_loopback(host):
            log(f"note: {host} is not a loopback address; anyone who can reach this machine can use the page")
        server.serve_forever()


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


# requests


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for the page, and a 100 Continue (or a 413) for curl's big uploads
    server_version = "sketchify"
    timeout = IDLE_TIMEOUT
    server: SketchServer

    def do_GET(self):
        self.answer("GET")

    def do_POST(self):
        self.answer("POST")

    def answer(self, method: str) -> None:
        """Route, then send one response: the result, or one clear message; never a traceback."""
        url = urlsplit(self.path)
        try:
            route = ROUTES.get((method, url.path))
            if route is None:
                raise route_error(method, url.path)
            status, kind, body = HTTPStatus.OK, *route(self, url.query)
        except ApiError as e:
            status, kind, body = e.status, JSON, error_body(e)
        except SketchifyError as e:
            status, kind, body = HTTPStatus.BAD_REQUEST, JSON, error_body(e)
        except (Gone, ConnectionError, TimeoutError):
            self.close_connection = True
            return
        except Exception as e:  # noqa: BLE001 - a bug: the client gets words, the console the details
            self.log_message("internal error on %s: %s: %s", url.path, type(e).__name__, one_line(e))
            status, kind = HTTPStatus.INTERNAL_SERVER_ERROR, JSON
            body = error_body(f"internal error ({type(e).__name__})")
        try:
            self.send(status, kind, body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if status >= 400:  # a refused request may have left part of its body unread: start afresh
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code, message=None, explain=None):
        """The standard library's own refusals (a bad request line, an unknown method) as JSON too."""
        self.send(code, JSON, error_body(message or HTTPStatus(code).phrase))

    def handle_expect_100(self):
        """curl asks before sending a body over 1 MiB: refuse an oversized one before it is sent."""
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.server.max_body:
            self.send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, JSON, error_body(too_large(self.server.max_body)))
            return False
        return super().handle_expect_100()

    def log_message(self, format, *args):
        if self.server.log:
            self.server.log(one_line(f"{self.client_address[0]} {format % args}"))

    def read_body(self) -> bytes:
        """The request's body, whole: refused when it is chunked, missing or too large."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "send the photo with a Content-Length (not chunked)")
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "send the photo's bytes as the body, with a Content-Length")
        n = int(length)
        if n > self.server.max_body:
            self.drain(n)
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, too_large(self.server.max_body))
        if n == 0:
            raise ApiError(HTTPStatus.BAD_REQUEST, "empty body: send the photo's bytes as the request body")
        data = self.rfile.read(n)
        if len(data) < n:
            raise Gone
        return data

    def drain(self, n: int) -> None:
        """Read and drop a body that will be refused: closing on unread bytes resets the connection, and the
        client would see that instead of the 413."""
        left = min(n, DRAIN)
        while left > 0:
            chunk = self.rfile.read(min(left, 2**20))
            if not chunk:
                return
            left -= len(chunk)

    def photo(self) -> Image.Image:
        """The uploaded photo, upright RGB, as `convert` reads a file: the pixel guard first, then load_photo."""
        data = self.read_body()
        check_pixels(data, self.server.max_pixels)
        source = io.BytesIO(data)
        source.name = "photo"  # load_photo's messages name the file
        return load_photo(source, max_pixels=self.server.max_pixels)

    # routes: each returns (content type, body)

    def page(self, query: str):
        return "text/html; charset=utf-8", (resources.files("sketchify") / "web" / "index.html").read_bytes()

    def styles(self, query: str):
        params(query, set())
        config = self.server.sketcher.config
        return JSON, json.dumps({
            "styles": list(config.styles), "default": config.default_style,
            "sample_temperature": config.sample_temperature, "max_samples": MAX_SAMPLES,
            "max_body": self.server.max_body, "max_pixels": self.server.max_pixels,
        }).encode()

    def thumbnail(self, query: str):
        """A small sketch of the bundled photo in one style, drawn on first request and kept."""
        settings = self.drawing(params(query, {"style"}))
        if settings.style not in self.server.thumbnails:
            photo = load_photo(resources.files("sketchify") / "web" / "thumbnail.jpg")
            with self.server.model_lock:
                sketch = self.server.sketcher.sketch(photo, settings)
            self.server.thumbnails[settings.style] = encode(sketch, "png")
        return PNG, self.server.thumbnails[settings.style]

    def sketch(self, query: str):
        photo = self.photo()  # the body first: a refusal after reading it leaves the connection clean
        given = params(query, {"style", "seed", "t", "line_weight", "format"})
        fmt = given.get("format") or "png"
        if fmt not in FORMATS:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"format={fmt!r}: use png or svg")
        format_name(fmt)  # svg needs the extra: said before the drawing, not after
        settings = self.drawing(given)
        with self.server.model_lock:
            sketch = self.server.sketcher.sketch(photo, settings)
        return FORMATS[fmt], encode(sketch, fmt, description=settings.record(self.server.sketcher.model_id))

    def samples(self, query: str):
        photo = self.photo()
        given = params(query, {"n", "style", "seed", "t", "line_weight"})
        n = whole("n", given.get("n", "4"), 1, MAX_SAMPLES)
        settings = self.drawing(given, for_samples=True)
        with self.server.model_lock:
            sketches = self.server.sketcher.samples(photo, n, settings)
        pngs = [base64.b64encode(encode(s, "png")).decode() for s in sketches]
        drawn = {"style": settings.style, "seed": settings.seed, "temperature": settings.temperature}
        return JSON, json.dumps({"width": photo.width, "height": photo.height, **drawn, "samples": pngs}).encode()

    # query parameters

    def drawing(self, given: dict[str, str], *, for_samples: bool = False) -> DrawSettings:
        """The query's settings, checked once (Sketcher.settings), at the server's size and max_side."""
        seed = whole("seed", given["seed"], 0, MAX_SEED) if given.get("seed") else None
        temperature = number("t", given["t"]) if given.get("t") else None
        lw = given.get("line_weight")
        line_weight = number("line_weight", lw, -MAX_LINE_WEIGHT, MAX_LINE_WEIGHT) if lw else None
        return self.server.sketcher.settings(style=given.get("style") or None, seed=seed, temperature=temperature,
                                             line_weight=line_weight, for_samples=for_samples)


ROUTES = {
    ("GET", "/"): Handler.page,
    ("GET", "/index.html"): Handler.page,
    ("GET", "/api/styles"): Handler.styles,
    ("GET", "/api/thumbnail"): Handler.thumbnail,
    ("POST", "/api/sketch"): Handler.sketch,
    ("POST", "/api/samples"): Handler.samples,
}


# helpers


def route_error(method: str, path: str) -> ApiError:
    allowed = [m for m, p in ROUTES if p == path]
    if allowed:
        return ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} {path}: use {' or '.join(allowed)}")
    return ApiError(HTTPStatus.NOT_FOUND, f"no such address {path}; the page is at /, the API under "
                                          "/api/styles, /api/sketch and /api/samples")


def params(query: str, allowed: set[str]) -> dict[str, str]:
    """The query's parameters (the last of repeats); an unknown one is refused, so a typo is not ignored."""
    given = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(given) - allowed)
    if unknown:
        takes = f"it takes {', '.join(sorted(allowed))}" if allowed else "it takes none"
        raise ApiError(HTTPStatus.BAD_REQUEST, f"unknown parameter {unknown[0]!r}; {takes}")
    return {k: v[-1] for k, v in given.items()}


def whole(name: str, text: str, low: int, high: int) -> int:
    if not re.fullmatch(r"\d{1,20}", text) or not low <= int(text) <= high:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name}={text!r}: use a whole number from {low} to {high}")
    return int(text)


def number(name: str, text: str, low: float = 0.0, high: float = math.inf) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        wanted = f"from {low:g} to {high:g}" if math.isfinite(high) else f"of {low:g} or more"
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name}={text!r}: use a finite number {wanted}, e.g. {name}=0.5")
    return value


def check_pixels(data: bytes, max_pixels: int) -> None:
    """Refuse a decompression bomb from its header, in a server's words (load_photo's name a CLI flag)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            pixels = im.width * im.height
    except Image.DecompressionBombError:  # Pillow's own guard, twice its limit, fired first
        pixels = None
    except Exception:  # noqa: BLE001 - not an image: load_photo says so in its own words
        return
    if pixels is None or pixels > max_pixels:
        raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                       f"photo: too many pixels ({f'{pixels:,}' if pixels else 'far too many'}; "
                       f"this server takes at most {max_pixels:,})")


def too_large(limit: int) -> str:
    return f"the photo is larger than this server takes ({limit:,} bytes at most)"


def error_body(error) -> bytes:
    return json.dumps({"error": one_line(error)}).encode()
