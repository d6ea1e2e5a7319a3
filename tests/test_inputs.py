"""Good and bad inputs, one at a time and in batches, driven through `sketchify convert` and `sketchify sample`."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_no_part_files, convert, deadline, digests, files, sample, size_of
from corpus import (
    BAD,
    GIF_COLOURS,
    GOOD,
    SIZE,
    alpha_png,
    animated_gif,
    cmyk_jpg,
    exif_jpg,
    grey16_png,
    grey_alpha_png,
    odd_name,
    palette_transparent_png,
    picture,
)
from PIL import Image

from sketchify.errors import SketchifyError
from sketchify.images import load_photo

# ---------------------------------------------------------------- one input at a time


@pytest.mark.parametrize("case", GOOD)
def test_convert_good_input(case, photos, tmp_path, tiny_model_dir):
    make, size = GOOD[case]
    src = make(photos)
    out = tmp_path / "out"
    run = convert(tiny_model_dir, src, "-o", out)
    assert run.code == 0, run.text
    assert run.counts() == (1, 0, 0)
    dst = out / f"{src.stem}.png"
    assert files(out) == {dst.name}
    with Image.open(dst) as sketch:
        assert sketch.size == size
        assert sketch.mode == "L"
    assert_no_part_files(out)


@pytest.mark.parametrize("case", GOOD)
def test_sample_good_input(case, photos, tmp_path, tiny_model_dir):
    make, size = GOOD[case]
    src = make(photos)
    out = tmp_path / "samples"
    run = sample(tiny_model_dir, src, "-n", 2, "-o", out, "--seed", 0)
    assert run.code == 0, run.text
    assert files(out) == {f"{src.stem}_0.png", f"{src.stem}_1.png", f"{src.stem}_sheet.png"}
    assert size_of(out / f"{src.stem}_0.png") == size
    assert size_of(out / f"{src.stem}_1.png") == size
    assert_no_part_files(out)


@pytest.mark.parametrize("case", BAD)
def test_convert_bad_input(case, photos, tmp_path, tiny_model_dir):
    make, says = BAD[case]
    src = make(photos)
    out = tmp_path / "out"
    run = convert(tiny_model_dir, src, "-o", out)
    assert run.code == 1, run.text
    assert run.counts() == (0, 0, 1)
    lines = run.lines_naming(src.name)
    assert len(lines) == 1, run.text
    assert lines[0].startswith("failed: ") and str(src) in lines[0], lines
    assert re.search(says, lines[0]), lines[0]
    assert files(out) == set()


@pytest.mark.parametrize("case", BAD)
def test_sample_bad_input(case, photos, tmp_path, tiny_model_dir):
    make, says = BAD[case]
    src = make(photos)
    out = tmp_path / "samples"
    run = sample(tiny_model_dir, src, "-o", out)
    assert run.code == 2, run.text
    assert len(run.lines) == 1, run.text
    assert run.lines[0].startswith("error: ") and str(src) in run.lines[0], run.text
    assert re.search(says, run.lines[0]), run.text
    assert files(out) == set()


# ---------------------------------------------------------------- what the odd inputs must look like


@pytest.fixture
def see_through(monkeypatch):
    """A stand-in model whose 'sketch' is the photo's grey, so tests can see what reached the model."""
    from sketchify.fast import FastSketch  # what Sketcher draws with

    monkeypatch.setattr(FastSketch, "forward", lambda self, photo, temperature=1.0, eps=None:
                        photo.mean(1, keepdim=True))


def grey(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float32).mean(2)


def test_transparent_areas_are_white_paper(photos, tmp_path, tiny_model_dir, see_through):
    sources = [alpha_png(photos), grey_alpha_png(photos), palette_transparent_png(photos)]
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out, "--size", "0")  # at its own size: no resampling at the edge
    assert run.code == 0 and run.counts() == (3, 0, 0), run.text
    for src in sources:
        sketch = np.asarray(Image.open(out / f"{src.stem}.png"))
        assert sketch.shape == (SIZE[1], SIZE[0])
        see_through_part = sketch[-1:, -1:] if src.stem == "palette_transparent" else sketch[:, : SIZE[0] // 2]
        assert see_through_part.min() >= 250, f"{src.name}: transparent area is not white paper"
        assert sketch.min() < 150, f"{src.name}: the opaque part is lost"


def test_exif_orientation_is_applied(photos, tmp_path, tiny_model_dir, see_through):
    sources = {o: exif_jpg(o)(photos) for o in range(1, 9)}
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out)
    assert run.code == 0 and run.counts() == (8, 0, 0), run.text
    upright = grey(picture())
    for o, src in sources.items():
        sketch = np.asarray(Image.open(out / f"{src.stem}.png"), dtype=np.float32)
        assert sketch.shape == upright.shape, f"orientation {o}: {sketch.shape[::-1]} is not upright"
        assert np.abs(sketch - upright).mean() < 6, f"orientation {o}: turned or mirrored"


def test_animated_gif_gives_first_frame(photos, tmp_path, tiny_model_dir, see_through):
    src = animated_gif(photos)
    out = tmp_path / "out"
    assert convert(tiny_model_dir, src, "-o", out).code == 0
    corner = np.asarray(Image.open(out / "animated.png"))[0, 0]
    assert abs(int(corner) - sum(GIF_COLOURS[0]) / 3) <= 1


def test_16_bit_grey_keeps_its_tones(photos, tmp_path, tiny_model_dir, see_through):
    """65535 is white and 0 black: not everything above 255 clipped to white."""
    src = grey16_png(photos)
    out = tmp_path / "out"
    assert convert(tiny_model_dir, src, "-o", out).code == 0
    sketch = np.asarray(Image.open(out / "grey16.png"), dtype=np.float32)
    ramp = np.linspace(0, 65535, SIZE[0] * SIZE[1]).reshape(SIZE[1], SIZE[0]) / 257
    assert np.abs(sketch - ramp).max() <= 1.5


# ---------------------------------------------------------------- decompression bombs


def bomb(folder: Path, size=(300, 300)) -> Path:
    path = folder / "bomb.png"
    Image.new("RGB", size, (120, 130, 140)).save(path)  # compresses to almost nothing, like a real bomb
    return path


@pytest.mark.parametrize("size", [(300, 300), (101, 100)], ids=["far_above", "just_above"])
def test_decompression_bomb_is_refused(size, photos, tmp_path, tiny_model_dir):
    """(101, 100) is below Pillow's own error threshold (twice the limit): only its warning stands guard there."""
    src = bomb(photos, size)
    out = tmp_path / "out"
    run = convert(tiny_model_dir, src, "-o", out, "--max-pixels", 10_000)
    assert run.code == 1, run.text
    assert run.counts() == (0, 0, 1)
    lines = run.lines_naming(src.name)
    assert len(lines) == 1 and "--max-pixels" in lines[0] and lines[0].startswith("failed: "), run.text
    assert files(out) == set()

    run = sample(tiny_model_dir, src, "-n", 1, "-o", tmp_path / "samples", "--max-pixels", 10_000)
    assert run.code == 2, run.text
    assert len(run.lines) == 1 and str(src) in run.lines[0] and "--max-pixels" in run.lines[0], run.text
    assert files(tmp_path / "samples") == set()

    run = convert(tiny_model_dir, src, "-o", out, "--max-pixels", 100_000)
    assert run.code == 0, run.text
    assert size_of(out / "bomb.png") == size
    run = sample(tiny_model_dir, src, "-n", 1, "-o", tmp_path / "samples", "--max-pixels", 100_000)
    assert run.code == 0, run.text
    assert size_of(tmp_path / "samples" / "bomb_0.png") == size


def test_max_pixels_does_not_depend_on_warning_filters(photos, monkeypatch):
    """Photos decode in threads, and warnings filters are process-wide: another thread leaving its
    catch_warnings() block can drop this thread's "error" filter mid-load. Simulate that: the limit must hold."""
    src = bomb(photos, (101, 100))
    monkeypatch.setattr(warnings, "simplefilter", lambda *a, **k: None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        with pytest.raises(SketchifyError, match="--max-pixels"):
            load_photo(src, max_pixels=10_000)


def test_standard_input_is_read_up_to_a_limit(photos, tmp_path, tiny_model_dir, monkeypatch):
    import sketchify.images

    picture().save(photos / "a.png")
    data = (photos / "a.png").read_bytes()
    monkeypatch.setattr(sketchify.images, "MAX_PHOTO_BYTES", len(data))
    assert convert(tiny_model_dir, "-", "-o", "-", stdin=data).code == 0  # the limit itself is fine
    run = convert(tiny_model_dir, "-", "-o", "-", stdin=data + b"\0")
    assert run.code != 0 and len(run.lines) == 1 and "standard input" in run.lines[0], run.text
    assert f"{len(data):,} bytes" in run.lines[0]


# ---------------------------------------------------------------- batches


def test_mixed_batch(photos, tmp_path, tiny_model_dir):
    good = [make(photos) for make in (alpha_png, cmyk_jpg, grey16_png, odd_name, exif_jpg(6))]
    for i in range(3):
        picture(seed=i).save(photos / f"img{i}.jpg")
        good.append(photos / f"img{i}.jpg")
    bad = [make(photos) for make, _ in BAD.values()] + [bomb(photos)]
    missing = tmp_path / "no such folder"
    before = digests(photos)
    out = tmp_path / "out"

    run = convert(tiny_model_dir, photos, missing, "-o", out, "--max-pixels", 10_000, "--batch-size", 2)
    assert run.code == 1, run.text
    assert run.counts() == (len(good), 0, len(bad) + 1)
    assert files(out) == {f"{p.stem}.png" for p in good}
    assert size_of(out / "exif6.png") == SIZE
    for p in bad + [missing]:
        lines = run.lines_naming(p.name)
        assert len(lines) == 1 and lines[0].startswith("failed: "), (p.name, run.text)
    assert digests(photos) == before
    assert_no_part_files(out)

    for p in bad:  # once the bad files are gone, the same command succeeds and skips what is done
        p.unlink()
    run = convert(tiny_model_dir, photos, "-o", out, "--max-pixels", 10_000)
    assert run.code == 0, run.text
    assert run.counts() == (0, len(good), 0)


def test_missing_folder(photos, tmp_path, tiny_model_dir):
    missing = tmp_path / "holidays 2019"
    out = tmp_path / "out"
    run = convert(tiny_model_dir, missing, "-o", out)
    assert run.code == 1, run.text
    lines = run.lines_naming(str(missing))
    assert len(lines) == 1 and "no such file or folder" in lines[0], run.text
    assert files(out) == set()

    picture().save(photos / "a.jpg")
    run = convert(tiny_model_dir, missing, photos, "-o", out)
    assert run.code == 1, run.text
    assert run.counts() == (1, 0, 1)
    assert files(out) == {"a.png"}


def test_symlink_loop_in_recursive_folder(photos, tmp_path, tiny_model_dir):
    picture(seed=1).save(photos / "a.jpg")
    (photos / "sub").mkdir()
    picture(seed=2).save(photos / "sub" / "b.jpg")
    (photos / "sub" / "back to top").symlink_to("..", target_is_directory=True)
    (photos / "sub" / "itself").symlink_to(".", target_is_directory=True)
    out = tmp_path / "out"
    with deadline(60):
        run = convert(tiny_model_dir, photos, "-o", out, "--recursive")
    assert run.code == 0, run.text
    assert files(out) == {"a.png", "sub/b.png"}
    assert run.counts()[0] == 2
    assert_no_part_files(out)


def test_symlinked_file_loop(photos, tmp_path, tiny_model_dir):
    picture().save(photos / "a.jpg")
    (photos / "loop.jpg").symlink_to("loop.jpg")
    out = tmp_path / "out"
    with deadline(60):
        run = convert(tiny_model_dir, photos, "-o", out)
    assert run.code == 1, run.text
    assert run.counts() == (1, 0, 1)
    assert len(run.lines_naming("loop.jpg")) == 1, run.text
    assert files(out) == {"a.png"}


def test_unreadable_file(photos, tmp_path, tiny_model_dir):
    picture().save(photos / "a.jpg")
    locked = photos / "locked.jpg"
    picture(seed=3).save(locked)
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: chmod 000 does not stop reading")
        out = tmp_path / "out"
        run = convert(tiny_model_dir, photos, "-o", out)
        assert run.code == 1, run.text
        assert run.counts() == (1, 0, 1)
        lines = run.lines_naming("locked.jpg")
        assert len(lines) == 1 and "permission denied" in lines[0].lower(), run.text
        assert files(out) == {"a.png"}

        run = sample(tiny_model_dir, locked, "-o", tmp_path / "samples")
        assert run.code == 2 and len(run.lines_naming("locked.jpg")) == 1 and "permission denied" in run.text, run.text
        assert files(tmp_path / "samples") == set()
    finally:
        locked.chmod(0o644)


def test_file_name_with_brackets_is_printed_verbatim(photos, tmp_path, tiny_model_dir):
    src = photos / "holiday [edited].jpg"
    src.write_text("not an image")
    run = convert(tiny_model_dir, src, "-o", tmp_path / "out")
    assert run.code == 1
    assert len(run.lines_naming(src.name)) == 1, run.text
