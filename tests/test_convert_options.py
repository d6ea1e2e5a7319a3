"""What a new user expects of convert's options, sample's sheet, eval and the Python API."""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pytest
from conftest import cli, convert, files, sample
from corpus import exif_jpg, picture
from PIL import Image

import sketchify.convert as conv
from sketchify.images import load_photo
from sketchify.sheet import contact_sheet

# formats


@pytest.mark.parametrize("flag, ext", [("jpeg", "jpg"), ("JPG", "jpg"), ("WebP", "webp"), ("PNG", "png")])
def test_format_names_any_case(flag, ext, photos, tmp_path, tiny_model_dir):
    picture().save(photos / "a.jpg")
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "out", "-f", flag)
    assert run.code == 0, run.text
    assert files(tmp_path / "out") == {f"a.{ext}"}


def test_every_format_is_grey_and_quality_applies(photos, tmp_path, tiny_model_dir):
    picture((96, 64)).save(photos / "a.jpg")
    sizes = {}
    for fmt, quality in (("png", None), ("jpg", None), ("jpg", 20), ("webp", None), ("webp", 20)):
        out = tmp_path / f"{fmt}{quality}"
        run = convert(tiny_model_dir, photos, "-o", out, "-f", fmt, *(("--quality", quality) if quality else ()))
        assert run.code == 0, run.text
        path = out / f"a.{fmt}"
        sizes[fmt, quality] = path.stat().st_size
        rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all(), (fmt, quality)
    assert sizes["jpg", 20] < sizes["jpg", None] and sizes["webp", 20] != sizes["webp", None]
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "q", "--quality", 50)  # png has no quality
    assert run.code == 2 and "--quality" in run.text, run.text


def test_dash_reads_standard_input_and_writes_standard_output(photos, tiny_model_dir):
    picture().save(photos / "a.jpg")
    result = convert(tiny_model_dir, "-", "-o", "-", stdin=(photos / "a.jpg").read_bytes())
    assert result.code == 0, result.text
    with Image.open(io.BytesIO(result.stdout_bytes)) as sketch:
        assert sketch.format == "PNG" and sketch.size == (48, 30)
    assert files(photos) == {"a.jpg"}


def test_outputs_follow_the_umask(photos, tmp_path, tiny_model_dir):
    picture().save(photos / "a.jpg")
    old = os.umask(0o007)
    try:
        assert convert(tiny_model_dir, photos, "-o", tmp_path / "out").code == 0
    finally:
        os.umask(old)
    assert (tmp_path / "out" / "a.png").stat().st_mode & 0o777 == 0o660



# photos in, memory bounded


def test_python_api_applies_exif_orientation_to_pil_images(photos, tiny_model_dir):
    from sketchify import Sketcher

    path = exif_jpg(6)(photos)
    sketcher = Sketcher.from_pretrained(tiny_model_dir, device="cpu")
    with Image.open(path) as im:
        assert sketcher.sketch(im).size == load_photo(path).size == (48, 30)


def test_load_photo_leaves_pillow_settings_alone(photos, monkeypatch):
    from PIL import ImageFile

    picture().save(photos / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10**9)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    load_photo(photos / "a.png", max_pixels=100_000)
    assert Image.MAX_IMAGE_PIXELS == 10**9 and ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_decoded_photos_waiting_are_bounded_by_pixels(photos, tmp_path, tiny_model_dir, monkeypatch):
    from sketchify import Sketcher

    for i in range(12):
        picture((80, 60), seed=i).save(photos / f"p{i:02d}.jpg")
    waiting, most = [0], [0]
    real_load = conv.load_photo

    def counting_load(*args, **kwargs):
        photo = real_load(*args, **kwargs)
        waiting[0] += 1
        most[0] = max(most[0], waiting[0])
        return photo

    sketcher = Sketcher.from_pretrained(tiny_model_dir, device="cpu")
    real_draw = sketcher.draw

    def drawing(photos, *args, **kwargs):
        waiting[0] -= len(photos)
        return real_draw(photos, *args, **kwargs)

    monkeypatch.setattr(conv, "load_photo", counting_load)
    monkeypatch.setattr(sketcher, "draw", drawing)
    plan = conv.plan_outputs([photos], tmp_path / "out")
    results = list(conv.run(sketcher, plan.jobs, batch_size=4, prefetch_pixels=2 * 80 * 60))
    assert [r.status for r in results] == ["converted"] * 12
    # the batch in hand (at most the two photos the bound let in) waits to be drawn while the next two decode,
    # by design; without the bound, eight would be decoding (2 x batch_size)
    assert most[0] <= 4



# sample's contact sheet


def test_contact_sheet_is_bounded():
    sheet = contact_sheet([Image.new("L", (50000, 1)), Image.new("L", (1, 3000)), Image.new("L", (40, 30))],
                          height=16, max_side=64)
    assert max(sheet.size) <= 64


def test_sample_sheet_of_a_thin_strip_is_bounded(photos, tmp_path, tiny_model_dir, monkeypatch):
    import sketchify.sheet

    monkeypatch.setattr(sketchify.sheet, "SHEET_MAX_SIDE", 64)  # the shipped bound is 8192; a tiny one shows it holds
    Image.new("RGB", (2000, 1), (120, 80, 40)).save(photos / "strip.png")
    run = sample(tiny_model_dir, photos / "strip.png", "-n", 2, "-o", tmp_path / "s")
    assert run.code == 0, run.text
    with Image.open(tmp_path / "s" / "strip_sheet.png") as sheet:
        assert max(sheet.size) <= 64



# eval and help


def test_eval_scores_every_pair_and_names_what_it_left_out(pair_dir, tiny_model_dir):
    picture(seed=40).save(pair_dir / "photos" / "lonely.jpg")  # no reference sketch
    (pair_dir / "sketches" / "p03.png").write_bytes(b"not a png")  # an unreadable reference
    run = cli("eval", pair_dir, "--weights", tiny_model_dir, "--device", "cpu", "--n", 2)
    assert run.code == 0, run.text
    assert re.search(r"\b11 all pairs", run.text), run.text  # every readable pair, not a validation slice
    assert len(run.lines_naming("lonely.jpg")) == 1 and len(run.lines_naming("p03.png")) == 1, run.text
    assert "1 photos without a reference, 1 unreadable" in run.text.replace("\n", " "), run.text


def test_version_and_help_without_type_annotations():
    from sketchify import __version__

    run = cli("--version")
    assert run.code == 0 and run.lines == [f"sketchify {__version__}"], run.text
    for command in ("convert", "sample", "train", "eval"):
        text = cli(command, "--help").text
        assert not re.search(r"<(bool|str|int|float|path|list\[\w+\]|\w+ range)>", text), text
