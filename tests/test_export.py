"""`sketchify export`: onnxruntime draws what `convert --size` draws, at sizes other than the traced one; the
export never writes over a file that is not its own."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import cli, convert, drawing_model_dir
from corpus import picture
from PIL import Image

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TOLERANCE = 2 / 255  # mean absolute difference the issue allows; rounding alone is 0.5/255 at most


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return drawing_model_dir(tmp_path_factory.mktemp("lively") / "model", generator_scale=0.8)


@pytest.fixture(scope="module")
def exports(model_dir, tmp_path_factory):
    """Two styles' exports, made once for the module."""
    folder = tmp_path_factory.mktemp("exports")
    for style in ("bold-ink", "shaded-pencil"):
        run = export(model_dir, folder / f"{style}.onnx", "--style", style)
        assert run.code == 0, run.text
    return folder


def export(model_dir, out, *args):
    return cli("export", "-o", out, "--weights", model_dir, *args)


def run_onnx(path, photo: Image.Image) -> np.ndarray:
    x = np.asarray(photo, np.float32).transpose(2, 0, 1)[None] / 255
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"photo": x})[0]


def test_onnxruntime_draws_what_convert_draws_at_any_multiple_of_16(model_dir, exports, tmp_path):
    drawn = {}
    for style, size in (("bold-ink", (48, 32)), ("bold-ink", (80, 96)), ("shaded-pencil", (80, 96))):
        photos = tmp_path / f"photos{size}"  # the trace saw 64 x 64
        photos.mkdir(exist_ok=True)
        picture(size, seed=3).save(photos / "p.png")
        out = tmp_path / f"{style}{size}"
        assert convert(model_dir, photos, "-o", out, "--size", min(size), "--style", style).code == 0
        want = np.asarray(Image.open(out / "p.png"), np.float32) / 255
        got = run_onnx(exports / f"{style}.onnx", Image.open(photos / "p.png"))
        assert got.shape == (1, 1, size[1], size[0])
        assert np.abs(got[0, 0] - want).mean() <= TOLERANCE, (style, size)
        drawn[style, size] = got[0, 0]
    # the comparison has teeth: the sketches are drawings, not blank or saturated pages, and the style is in
    assert all(d.std() > 0.05 and ((d > 0.02) & (d < 0.98)).mean() > 0.25 for d in drawn.values())
    assert np.abs(drawn["bold-ink", (80, 96)] - drawn["shaded-pencil", (80, 96)]).mean() > 0.02


def test_export_replaces_its_own_file_but_never_a_users(model_dir, exports, tmp_path):
    own = tmp_path / "sketch.onnx"
    own.write_bytes((exports / "bold-ink.onnx").read_bytes())
    run = export(model_dir, own, "--style", "contour")  # a previous export: replaced without asking
    assert run.code == 0 and own.read_bytes() != (exports / "bold-ink.onnx").read_bytes(), run.text

    users = tmp_path / "mine.onnx"
    users.write_bytes(b"a user's file")
    run = export(model_dir, users)
    assert run.code == 2 and "--overwrite" in run.text and users.read_bytes() == b"a user's file", run.text
    assert export(model_dir, users, "--overwrite").code == 0 and users.read_bytes()[:4] != b"a us"

    weights = model_dir / "model.safetensors"
    before = weights.read_bytes()
    run = export(model_dir, weights, "--overwrite")  # the model's own file: never, whatever the flags
    assert run.code == 2 and "model's own file" in run.text and weights.read_bytes() == before, run.text
    assert not [p for p in tmp_path.rglob("*.part")] and not [p for p in model_dir.rglob("*.part")]


def test_an_unwritable_output_is_one_line(model_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    run = export(model_dir, tmp_path / "notes.txt" / "sketch.onnx")
    assert run.code == 2 and len(run.lines) == 1 and "cannot write" in run.text and "notes.txt" in run.text, run.text
    assert (tmp_path / "notes.txt").read_text() == "a file, not a folder"


def test_a_missing_onnx_is_one_line(model_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    run = export(model_dir, tmp_path / "a.onnx")
    assert run.code == 2 and len(run.lines) == 1 and "sketchify[export]" in run.text, run.text
    assert not (tmp_path / "a.onnx").exists()
