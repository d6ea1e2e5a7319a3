"""`sketchify serve`: the HTTP API on a free loopback port with a tiny model, and the page in headless Chromium."""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import cli, lively, photo, tiny_config
from PIL import Image

from sketchify.inference import Sketcher
from sketchify.model import SketchModel
from sketchify.serve import SketchServer

MAX_BODY = 200_000
MAX_PIXELS = 20_000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny model whose sketches depend on photo, style and noise (an untrained one draws blank paper)."""
    folder = tmp_path_factory.mktemp("serve") / "lively_model"
    lively(SketchModel(tiny_config())).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def sketcher(model_dir):
    return Sketcher.from_pretrained(model_dir, device="cpu")


@pytest.fixture(scope="module")
def server(sketcher):
    """One server for these tests, in a thread on a free port; its log kept, to show that nothing went wrong
    inside. Each test's requests stand alone, and each checks that the server is still well."""
    log: list[str] = []
    srv = SketchServer(("127.0.0.1", 0), sketcher, max_body=MAX_BODY, max_pixels=MAX_PIXELS, log=log.append)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.lines = log
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(10)


def jpeg(img: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=95, **options)
    return buffer.getvalue()


def call(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, content type, body) of one request; bounded, so a hung server fails the test."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def png(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def error_of(data: bytes) -> str:
    text = data.decode()
    assert "Traceback" not in text and 'File "' not in text, text
    return json.loads(text)["error"]


def assert_healthy(server):
    """Still answering, and nothing inside failed (a client leaving is not a failure)."""
    assert call(server, "GET", "/api/styles")[0] == 200
    assert not [line for line in server.lines if "internal error" in line or "error with" in line], server.lines


# the API


def test_styles_lists_every_style_of_the_model(server, sketcher):
    status, kind, body = call(server, "GET", "/api/styles")
    assert (status, kind) == (200, "application/json")
    info = json.loads(body)
    assert info["styles"] == list(sketcher.styles) and info["default"] == sketcher.config.default_style
    assert info["max_body"] == MAX_BODY


def test_thumbnail_of_each_style(server, sketcher):
    thumbs = set()
    for style in sketcher.styles:
        status, kind, body = call(server, "GET", f"/api/thumbnail?style={style}")
        assert (status, kind) == (200, "image/png")
        thumbs.add(png(body).tobytes())
    assert len(thumbs) == len(sketcher.styles)  # each style draws its own


def test_sketch_is_a_png_of_the_photos_size_drawn_as_the_library_draws_it(server, sketcher):
    img = photo(1, size=(37, 23))
    status, kind, body = call(server, "POST", "/api/sketch?style=contour&seed=5&t=1.5", jpeg(img))
    assert (status, kind) == (200, "image/png")
    sketch = png(body)
    assert sketch.size == (37, 23)
    expected = sketcher.sketch(Image.open(io.BytesIO(jpeg(img))), style="contour", seed=5, temperature=1.5)
    assert sketch.tobytes() == expected.tobytes()
    other = png(call(server, "POST", "/api/sketch?style=bold-ink&seed=5&t=1.5", jpeg(img))[2])
    assert other.tobytes() != sketch.tobytes()


def test_line_weight_thickens_strokes_as_the_library_does(server, sketcher):
    img = photo(5, size=(48, 40))
    plain = png(call(server, "POST", "/api/sketch?style=bold-ink", jpeg(img))[2])
    status, _, body = call(server, "POST", "/api/sketch?style=bold-ink&line_weight=3", jpeg(img))
    bold = png(body)
    assert status == 200 and bold.tobytes() == sketcher.sketch(Image.open(io.BytesIO(jpeg(img))), style="bold-ink",
                                                               line_weight=3).tobytes()
    assert np.asarray(bold, float).mean() < np.asarray(plain, float).mean()  # more ink
    thin = json.loads(call(server, "POST", "/api/samples?n=2&seed=1&line_weight=-2", jpeg(img))[2])["samples"]
    drawn = json.loads(call(server, "POST", "/api/samples?n=2&seed=1", jpeg(img))[2])["samples"]
    assert np.asarray(png(base64.b64decode(thin[0])), float).mean() > np.asarray(png(base64.b64decode(drawn[0])),
                                                                                 float).mean()


def test_sketch_as_svg_is_vector_paths_of_the_photos_size(server):
    pytest.importorskip("vtracer")
    status, kind, body = call(server, "POST", "/api/sketch?style=bold-ink&format=svg", jpeg(photo(1, size=(37, 23))))
    assert (status, kind) == (200, "image/svg+xml")
    text = body.decode()
    assert text.lstrip().startswith("<") and "<path" in text and 'width="37"' in text and 'height="23"' in text


def test_exif_orientation_is_applied(server):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: displayed rotated 90 degrees
    status, _, body = call(server, "POST", "/api/sketch", jpeg(photo(2, size=(48, 40)), exif=exif.tobytes()))
    assert status == 200 and png(body).size == (40, 48)


def test_samples_are_the_librarys_samples(server, sketcher):
    img = photo(3, size=(40, 32))
    status, kind, body = call(server, "POST", "/api/samples?n=3&seed=7&style=portrait", jpeg(img))
    assert (status, kind) == (200, "application/json")
    answer = json.loads(body)
    got = [png(base64.b64decode(s)) for s in answer["samples"]]
    expected = sketcher.samples(Image.open(io.BytesIO(jpeg(img))), 3, seed=7, style="portrait")
    assert [g.tobytes() for g in got] == [e.tobytes() for e in expected]
    assert (answer["width"], answer["height"]) == (40, 32) and all(g.size == (40, 32) for g in got)
    assert answer["temperature"] == sketcher.config.sample_temperature
    assert len({g.tobytes() for g in got}) == 3


@pytest.mark.parametrize("path, body, status, words", [
    ("/api/sketch", b"not a photo at all", 400, "not an image"),
    ("/api/sketch", b"", 400, "empty body"),
    ("/api/sketch?style=watercolour", None, 400, "choose one of: light-pencil"),
    ("/api/sketch?seed=-1", None, 400, "seed='-1': use a whole number"),
    ("/api/sketch?seed=1e3", None, 400, "seed='1e3'"),
    ("/api/sketch?t=nan", None, 400, "t='nan': use a finite number"),
    ("/api/sketch?t=-2", None, 400, "t='-2'"),
    ("/api/sketch?temperature=1", None, 400,
     "unknown parameter 'temperature'; it takes format, line_weight, seed, style, t"),
    ("/api/sketch?line_weight=99", None, 400, "line_weight='99': use a finite number from -32 to 32"),
    ("/api/samples?line_weight=inf", None, 400, "line_weight='inf'"),
    ("/api/sketch?format=gif", None, 400, "format='gif': use png or svg"),
    ("/api/samples?n=0", None, 400, "n='0': use a whole number from 1 to 8"),
    ("/api/samples?n=99", None, 400, "n='99'"),
    ("/api/styles", None, 405, "use GET"),
    ("/api/draw", None, 404, "no such address /api/draw"),
])
def test_bad_requests_get_one_clear_message(server, path, body, status, words):
    got, kind, answer = call(server, "POST", path, jpeg(photo(4)) if body is None else body)
    assert (got, kind) == (status, "application/json")
    assert words in error_of(answer)
    assert_healthy(server)


def test_oversized_body_and_too_many_pixels_are_refused(server):
    # 8 MB: more than the sockets buffer, so the server must read what it refuses for the client to hear why
    status, _, answer = call(server, "POST", "/api/sketch", b"\xff" * 8_000_000)
    assert status == 413 and "200,000 bytes at most" in error_of(answer)
    status, _, answer = call(server, "POST", "/api/sketch", jpeg(photo(5, size=(200, 101))))
    assert status == 413 and "too many pixels (20,200; this server takes at most 20,000)" in error_of(answer)
    # curl asks first for a large body: refused before it is sent
    with socket.create_connection(server.server_address[:2], timeout=30) as s:
        s.sendall(b"POST /api/sketch HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 413")
    assert_healthy(server)


def test_twelve_requests_at_once_all_succeed_one_drawing_at_a_time(server, sketcher, monkeypatch):
    bodies = [jpeg(photo(10 + i, size=(32 + i, 24))) for i in range(12)]
    start = threading.Barrier(12)
    drawing, most = [0], [0]
    draw = sketcher.sketch

    def counted(*args, **kwargs):  # how many requests are inside the model at once
        drawing[0] += 1
        most[0] = max(most[0], drawing[0])
        try:
            return draw(*args, **kwargs)
        finally:
            drawing[0] -= 1

    monkeypatch.setattr(sketcher, "sketch", counted)

    def one(i):
        start.wait(timeout=30)
        return call(server, "POST", f"/api/sketch?seed={i}&t=1", bodies[i])

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(one, range(12)))
    assert [r[0] for r in results] == [200] * 12
    assert [png(r[2]).size for r in results] == [(32 + i, 24) for i in range(12)]
    assert most[0] == 1  # they queued for the one model
    assert_healthy(server)


def test_clients_that_leave_do_not_hurt_the_server(server):
    # gone mid-upload: 100 of the 5000 bytes promised
    with socket.create_connection(server.server_address[:2], timeout=30) as s:
        s.sendall(b"POST /api/sketch HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + jpeg(photo(6))[:100])
    # gone before its sketch is sent back
    body = jpeg(photo(7))
    with socket.create_connection(server.server_address[:2], timeout=30) as s:
        s.sendall(b"POST /api/sketch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    # nonsense instead of HTTP
    with socket.create_connection(server.server_address[:2], timeout=30) as s:
        s.sendall(b"\x00\x01 hello\r\n\r\n")
        assert b"Traceback" not in s.recv(4096)
    assert call(server, "POST", "/api/sketch", jpeg(photo(8)))[0] == 200
    assert_healthy(server)


def test_the_page_is_one_self_contained_file(server):
    status, kind, body = call(server, "GET", "/")
    assert (status, kind) == (200, "text/html; charset=utf-8")
    html = body.decode()
    assert "/api/sketch" in html and "/api/samples" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page must load nothing from outside"


def test_serve_on_a_taken_port_says_so_before_loading_the_model(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = cli("serve", "--port", port, "--weights", tmp_path / "no-model-here", "--device", "cpu")
    assert run.code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in run.text


# the page in a real browser


def headless_chromium():
    """A headless Chromium under selenium, or a skip that says what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no chromium/chromedriver: apt-get install chromium chromium-driver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_the_page_draws_a_photo_and_its_samples_in_chromium(server, sketcher, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    good, bad, big = tmp_path / "cat.jpg", tmp_path / "notes.jpg", tmp_path / "big.jpg"
    photo(9, size=(64, 48)).save(good)
    bad.write_text("not a photo")
    big.write_bytes(b"\xff" * (MAX_BODY + 1))
    browser = headless_chromium()
    try:
        wait = WebDriverWait(browser, 30)
        browser.get(server.url)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "input[name=style]")) == len(sketcher.styles))
        browser.find_element(By.ID, "file").send_keys(f"{good}\n{bad}\n{big}")
        sketch = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "img[alt^='sketch of cat.jpg']"))[0]
        size = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", sketch)
        assert size == [64, 48]
        alerts = wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".status.bad")) == 2
                            and b.find_elements(By.CSS_SELECTOR, ".status.bad"))
        assert "Could not draw notes.jpg: photo: not an image" in alerts[0].text
        assert "Could not draw big.jpg: the photo is larger than this server takes (200,000 bytes" in alerts[1].text
        # the keyboard alone: the next style with an arrow key redraws; Samples is a real button
        browser.find_element(By.CSS_SELECTOR, "input[name=style]:checked").send_keys(Keys.ARROW_RIGHT)
        redrawn = "img[alt='sketch of cat.jpg in the shaded-pencil style']"
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, redrawn))
        samples = browser.find_element(By.CSS_SELECTOR, "button[aria-label='Draw several samples of cat.jpg']")
        samples.send_keys(Keys.ENTER)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "img[alt^='sample ']")) == 4)
        assert browser.find_element(By.ID, "download-all").is_enabled()
        browser.save_screenshot(str(tmp_path / "serve.png"))
    finally:
        browser.quit()
    shot = np.asarray(Image.open(tmp_path / "serve.png").convert("L"))
    assert shot.shape[1] >= 1000 and shot.std() > 10  # a drawn page, not a blank one
