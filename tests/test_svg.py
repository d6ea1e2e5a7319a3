"""`convert -f svg` and `sample -f svg`: the ink traced into paths at the photo's size, drawn back close to the
PNG sketch; the settings recorded, so that re-runs know their own files."""

from __future__ import annotations

import io
import re
import sys

import numpy as np
import pytest
from conftest import convert, drawing_model_dir, files, sample
from corpus import picture
from PIL import Image, ImageDraw

from sketchify.convert import Output, stream
from sketchify.inference import Sketcher
from sketchify.vector import encode_svg, read_settings

resvg = pytest.importorskip("resvg_py")
pytest.importorskip("vtracer")

INK = 0.4  # darkness from which a pixel counts as ink


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return drawing_model_dir(tmp_path_factory.mktemp("lively") / "model")


def darkness(image: Image.Image) -> np.ndarray:
    return 1 - np.asarray(image.convert("L"), np.float32) / 255


def rendered(svg: bytes) -> np.ndarray:
    """The SVG drawn by resvg at its own size (on white: transparency would read as black)."""
    png = resvg.svg_to_bytes(svg_string=svg.decode(), background="#ffffff")
    return darkness(Image.open(io.BytesIO(bytes(png))))


def ink_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a >= INK, b >= INK
    return (a & b).sum() / max((a | b).sum(), 1)


def test_svg_draws_the_png_sketch_at_the_photos_size(model_dir, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    picture((160, 120), seed=1).save(photos / "wide.jpg")
    picture((90, 130), seed=2).save(photos / "tall.png")
    for style in ("bold-ink", "shaded-pencil"):
        for fmt in ("png", "svg"):
            assert convert(model_dir, photos, "-o", tmp_path / style, "-f", fmt, "--style", style).code == 0
        for name, size in (("wide", (160, 120)), ("tall", (90, 130))):
            png = darkness(Image.open(tmp_path / style / f"{name}.png"))
            svg = (tmp_path / style / f"{name}.svg").read_bytes()
            drawn = rendered(svg)
            assert drawn.shape == png.shape == (size[1], size[0])
            assert 0.02 < (png >= INK).mean() < 0.9  # the test has teeth: there is ink, and paper
            assert ink_iou(drawn, png) >= 0.6, (style, name)
            bands = set(re.findall(rb'<g id="band-(\d)"', svg))
            # line styles: strokes and ink only; shaded styles: more tones
            assert bands <= {b"0", b"1"} if style == "bold-ink" else len(bands) >= 3, (style, bands)


def test_svg_records_its_settings_so_reruns_skip_and_name_changes(model_dir, photos, tmp_path):
    picture(seed=4).save(photos / "a.jpg")
    picture(seed=5).save(photos / "b.jpg")
    out = tmp_path / "out"
    out.mkdir()
    users = b'<svg xmlns="http://www.w3.org/2000/svg"/>'
    (out / "b.svg").write_bytes(users)  # the user's own file, where b's sketch would go
    run = convert(model_dir, photos, "-o", out, "-f", "svg", "--style", "contour")
    assert run.counts() == (2, 0, 0) and (out / "b.svg").read_bytes() == users, run.text  # b's is renamed
    assert '"style": "contour"' in read_settings(out / "a.svg") and read_settings(out / "b.svg") is None
    assert '"photo": "b.jpg"' in read_settings(out / "b-jpg.svg")
    run = convert(model_dir, photos, "-o", out, "-f", "svg", "--style", "contour")
    assert run.counts() == (0, 2, 0) and not run.lines_naming("other settings"), run.text
    run = convert(model_dir, photos, "-o", out, "-f", "svg", "--style", "portrait")
    notes = run.lines_naming("drawn with other settings")
    assert run.counts() == (0, 2, 0) and len(set(notes)) == 1 and "2 skipped" in notes[0] and "contour" in notes[0], \
        run.text
    whole = (out / "a.svg").read_bytes()
    (out / "a.svg").write_bytes(whole[:len(whole) * 2 // 3])  # cut short, its record kept: drawn again
    run = convert(model_dir, photos, "-o", out, "-f", "svg", "--style", "contour")
    assert run.counts() == (1, 1, 0) and (out / "a.svg").read_bytes() == whole, run.text


def test_a_ring_keeps_its_hole():
    ring = Image.new("L", (64, 64), 255)
    draw = ImageDraw.Draw(ring)
    draw.ellipse([4, 4, 60, 60], fill=0)
    draw.ellipse([20, 20, 44, 44], fill=255)
    drawn = rendered(encode_svg(ring, description='{"style": "bold-ink"}'))
    assert drawn[32, 32] < 0.1 and drawn[32, 10] > 0.9 and drawn[1, 1] < 0.1
    assert ink_iou(drawn, darkness(ring)) > 0.9


def test_sample_and_stream_write_svg(model_dir, tmp_path):
    picture(seed=6).save(tmp_path / "p.jpg")
    run = sample(model_dir, tmp_path / "p.jpg", "-n", 2, "-o", tmp_path / "s", "-f", "svg", "--seed", 1)
    assert run.code == 0 and files(tmp_path / "s") == {"p_0.svg", "p_1.svg", "p_sheet.png"}, run.text
    first, second = ((tmp_path / "s" / f"p_{i}.svg").read_bytes() for i in (0, 1))
    assert first != second and '"seed": 1' in read_settings(tmp_path / "s" / "p_0.svg")

    sketcher = Sketcher.from_pretrained(model_dir, device="cpu")
    svg = stream(sketcher, tmp_path / "p.jpg", output=Output("svg"))  # what convert - -o - -f svg prints
    assert svg.startswith(b"<svg") and rendered(svg).shape == darkness(picture()).shape


def test_svg_refusals_are_one_line(model_dir, photos, tmp_path, monkeypatch):
    picture().save(photos / "a.jpg")
    run = convert(model_dir, photos, "-o", tmp_path / "q", "-f", "svg", "--quality", 80)
    assert run.code == 2 and "--quality" in run.text and not (tmp_path / "q").exists(), run.text
    monkeypatch.setitem(sys.modules, "vtracer", None)  # import vtracer now raises ImportError
    run = convert(model_dir, photos, "-o", tmp_path / "out", "-f", "svg")
    assert run.code == 2 and len(run.lines) == 1 and "sketchify[svg]" in run.text, run.text
    assert not (tmp_path / "out").exists()
