"""Bad and odd inputs, made on the fly, driven through `sketchify convert` and `sketchify sample`.

Every run goes through typer's CliRunner on sketchify.cli.app with the tiny model from conftest.py.
Exit codes: 0 all good, 1 the batch had failures, 2 a usage/user error printed as `error: ...`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from sketchify.cli import app
from sketchify.errors import SketchifyError
from sketchify.images import load_photo

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SIZE = (48, 30)  # (width, height) of most test photos: small, and not square so that rotations show


# ---------------------------------------------------------------- running the CLI


class Run:
    """A finished CLI run: exit code and everything it printed (stdout and stderr)."""

    def __init__(self, result):
        self.code = result.exit_code
        text = result.output
        try:  # Click >= 8.2 keeps stderr apart as well as in output; older Click mixes it in or refuses
            err = result.stderr
        except ValueError:
            err = ""
        if err and err not in text:
            text += err
        self.text = ANSI.sub("", text)
        self.lines = [line for line in self.text.splitlines() if line.strip()]

    def lines_naming(self, name: str) -> list[str]:
        return [line for line in self.lines if name in line]

    def counts(self) -> tuple[int, int, int]:
        m = re.search(r"(\d+) converted, (\d+) skipped, (\d+) failed", self.text)
        assert m, f"no summary line in:\n{self.text}"
        return int(m[1]), int(m[2]), int(m[3])


def cli(*args) -> Run:
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"uncaught exception (the user would see a traceback):\n{tb}\noutput:\n{result.output}")
    run = Run(result)
    assert "Traceback" not in run.text, run.text
    return run


def convert(model: Path, *args) -> Run:
    return cli("convert", *args, "--weights", model, "--device", "cpu")


def sample(model: Path, *args) -> Run:
    return cli("sample", *args, "--weights", model, "--device", "cpu")


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging (CliRunner runs in this process, so a hang would stall the whole suite)."""
    def timeout(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def files(folder: Path) -> set[str]:
    """Relative paths of the plain files under folder."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_no_part_files(folder: Path):
    leftovers = [str(p) for p in folder.rglob("*") if p.name.endswith(".part")] if folder.exists() else []
    assert not leftovers, leftovers


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


# ---------------------------------------------------------------- the corpus


def picture(size=SIZE, seed=0) -> Image.Image:
    """A photo-like RGB image with edges; a red block marks its top-left corner, so rotations show."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(120, 230, 3)))
    draw = ImageDraw.Draw(img)
    draw.ellipse([w // 3, h // 3, w - 2, h - 2], fill=tuple(int(v) for v in rng.integers(0, 100, 3)))
    draw.rectangle([0, 0, max(0, w // 4 - 1), max(0, h // 4 - 1)], fill=(230, 20, 20))
    return img


def alpha_png(folder: Path) -> Path:
    """Left half fully transparent over black RGB: flattened right it is white paper, wrong it is black."""
    rgba = picture().convert("RGBA")
    a = np.asarray(rgba).copy()
    a[:, : SIZE[0] // 2] = (0, 0, 0, 0)
    path = folder / "alpha.png"
    Image.fromarray(a, "RGBA").save(path)
    return path


def grey_alpha_png(folder: Path) -> Path:
    la = picture().convert("LA")
    a = np.asarray(la).copy()
    a[:, : SIZE[0] // 2] = (0, 0)
    path = folder / "grey_alpha.png"
    Image.fromarray(a, "LA").save(path)
    return path


def palette_png(folder: Path) -> Path:
    path = folder / "palette.png"
    picture().quantize(16).save(path)
    with Image.open(path) as im:
        assert im.mode == "P"
    return path


def palette_transparent_png(folder: Path) -> Path:
    img = picture().quantize(16)
    path = folder / "palette_transparent.png"
    img.save(path, transparency=int(np.asarray(img)[0, -1]))  # the background colour is see-through
    with Image.open(path) as im:
        assert im.mode == "P" and "transparency" in im.info
    return path


def grey16_png(folder: Path) -> Path:
    ramp = np.linspace(0, 65535, SIZE[0] * SIZE[1]).astype(np.uint16).reshape(SIZE[1], SIZE[0])
    path = folder / "grey16.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as im:
        assert im.mode == "I;16", im.mode
    return path


def cmyk_jpg(folder: Path) -> Path:
    path = folder / "cmyk.jpg"
    picture().convert("CMYK").save(path, quality=95)
    with Image.open(path) as im:
        assert im.mode == "CMYK"
    return path


def progressive_jpg(folder: Path) -> Path:
    path = folder / "progressive.jpg"
    picture().save(path, progressive=True, quality=90)
    with Image.open(path) as im:
        assert im.info.get("progressive") or im.info.get("progression")
    return path


GIF_COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def animated_gif(folder: Path) -> Path:
    frames = []
    for colour in GIF_COLOURS:
        f = Image.new("RGB", SIZE, colour)
        ImageDraw.Draw(f).ellipse([10, 5, 40, 25], fill=(250, 250, 250))
        frames.append(f)
    path = folder / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as im:
        assert im.n_frames == 3
    return path


def webp(folder: Path) -> Path:
    path = folder / "photo.webp"
    picture().save(path, quality=90)
    return path


def tiff(folder: Path) -> Path:
    path = folder / "photo.tiff"
    picture().save(path)
    return path


def one_pixel(folder: Path) -> Path:
    path = folder / "dot.png"
    Image.new("RGB", (1, 1), (90, 120, 200)).save(path)
    return path


def strip(folder: Path) -> Path:
    path = folder / "strip.png"
    picture((3, 20000)).save(path)
    return path


def odd_name(folder: Path) -> Path:
    path = folder / "my holiday é 写真 ü.jpg"
    picture().save(path)
    return path


# Pillow's exif_transpose: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 cw, 7 transverse, 8 rotate 90 ccw.
# To store an upright photo under orientation o, apply the inverse of what a viewer applies.
STORE = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
         5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
         8: Image.Transpose.ROTATE_270}


def exif_jpg(orientation: int):
    def make(folder: Path) -> Path:
        upright = picture()
        stored = upright if STORE[orientation] is None else upright.transpose(STORE[orientation])
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = folder / f"exif{orientation}.jpg"
        stored.save(path, exif=exif.tobytes(), quality=95)
        with Image.open(path) as im:
            assert im.getexif()[0x0112] == orientation
            assert im.size == (SIZE if orientation <= 4 else SIZE[::-1])  # as stored: 5-8 lie on their side
        return path

    make.__name__ = f"exif{orientation}"
    return make


# good inputs: builder, and the upright (width, height) the sketch must have
GOOD = {
    "alpha_png": (alpha_png, SIZE),
    "grey_alpha_png": (grey_alpha_png, SIZE),
    "palette_png": (palette_png, SIZE),
    "palette_transparent_png": (palette_transparent_png, SIZE),
    "grey16_png": (grey16_png, SIZE),
    "cmyk_jpg": (cmyk_jpg, SIZE),
    "progressive_jpg": (progressive_jpg, SIZE),
    "animated_gif": (animated_gif, SIZE),
    "webp": (webp, SIZE),
    "tiff": (tiff, SIZE),
    "one_pixel": (one_pixel, (1, 1)),
    "strip_3x20000": (strip, (3, 20000)),
    "spaces_and_non_ascii_name": (odd_name, SIZE),
    **{f"exif_orientation_{o}": (exif_jpg(o), SIZE) for o in range(1, 9)},
}


def truncated_jpg(folder: Path) -> Path:
    noise = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    buf = folder / "whole.tmp"
    Image.fromarray(noise).save(buf, format="JPEG", quality=95)
    data = buf.read_bytes()
    buf.unlink()
    path = folder / "truncated.jpg"
    path.write_bytes(data[: len(data) * 6 // 10])
    return path


def empty_jpg(folder: Path) -> Path:
    path = folder / "empty.jpg"
    path.write_bytes(b"")
    return path


def text_as_jpg(folder: Path) -> Path:
    path = folder / "notes.jpg"
    path.write_text("shopping list: eggs, milk, pencils\n")
    return path


def text_odd_name(folder: Path) -> Path:
    path = folder / "bad café 写真.jpg"
    path.write_text("not a photo either\n")
    return path


def isobmff(brand: bytes, compatible: list[bytes]) -> bytes:
    """An ISO base media file as HEIC/HEIF photos start: ftyp box, then a (truncated) meta box."""
    ftyp = brand + b"\x00\x00\x00\x00" + b"".join(compatible)
    box = (8 + len(ftyp)).to_bytes(4, "big") + b"ftyp" + ftyp
    meta = (64).to_bytes(4, "big") + b"meta" + b"\x00" * 24
    return box + meta


def heic(folder: Path) -> Path:
    path = folder / "IMG_0001.heic"
    path.write_bytes(isobmff(b"heic", [b"mif1", b"heic"]))
    return path


def heif_mif1(folder: Path) -> Path:
    """HEIF whose major brand is mif1: Pillow's AVIF plugin accepts the brand, then must give up cleanly."""
    path = folder / "IMG_0002.heif"
    path.write_bytes(isobmff(b"mif1", [b"mif1", b"heic"]))
    return path


# bad inputs: builder, and what the one line about the file must say
BAD = {
    "truncated_jpeg": (truncated_jpg, r"cannot decode|truncated"),
    "zero_byte_file": (empty_jpg, r"empty file"),
    "text_file_named_jpg": (text_as_jpg, r"not an image"),
    "text_file_non_ascii_name": (text_odd_name, r"not an image"),
    "heic": (heic, r"not an image|cannot read|cannot decode"),
    "heif_mif1_brand": (heif_mif1, r"not an image|cannot read|cannot decode"),
}


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    return folder


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
    from sketchify.model import SketchModel

    monkeypatch.setattr(SketchModel, "forward", lambda self, photo, style, temperature=1.0, eps=None:
                        photo.mean(1, keepdim=True))


def grey(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float32).mean(2)


def test_transparent_areas_are_white_paper(photos, tmp_path, tiny_model_dir, see_through):
    sources = [alpha_png(photos), grey_alpha_png(photos), palette_transparent_png(photos)]
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out)
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


# ---------------------------------------------------------------- outputs


def test_output_folder_equal_to_input_is_refused(photos, tmp_path, tiny_model_dir):
    for i in range(2):
        picture(seed=i).save(photos / f"img{i}.png")  # PNG: the very names a sketch would take
    before = digests(photos)
    for args in ((photos,), (photos / "img0.png",), (photos, "--overwrite"), (photos, "--recursive")):
        run = convert(tiny_model_dir, *args, "-o", photos)
        assert run.code == 2, (args, run.text)
        assert run.lines[0].startswith("error: ") and "--suffix" in run.text, run.text
        assert digests(photos) == before


def test_output_folder_equal_to_input_with_suffix(photos, tmp_path, tiny_model_dir):
    for i in range(2):
        picture(seed=i).save(photos / f"img{i}.png")
    picture(seed=5).save(photos / "img0.jpg")  # same stem, other type: both get a sketch
    before = digests(photos)
    run = convert(tiny_model_dir, photos, "-o", photos, "--suffix", "_sketch")
    assert run.code == 0, run.text
    assert run.counts() == (3, 0, 0)
    assert set(digests(photos)) == set(before) | {"img0_sketch.png", "img1_sketch.png", "img0-png_sketch.png"}
    assert {k: v for k, v in digests(photos).items() if k in before} == before
    assert_no_part_files(photos)

    after_first = digests(photos)
    run = convert(tiny_model_dir, photos, "-o", photos, "--suffix", "_sketch")  # the sketches are not new photos
    assert run.code == 0, run.text
    assert run.counts() == (0, 3, 0)
    assert digests(photos) == after_first


def test_rerun_skips_and_overwrite_redoes(photos, tmp_path, tiny_model_dir):
    for i in range(3):
        picture(seed=i).save(photos / f"img{i}.jpg")
    out = tmp_path / "out"
    assert convert(tiny_model_dir, photos, "-o", out).code == 0
    inodes = {p.name: p.stat().st_ino for p in out.iterdir()}
    (out / "img1.png").unlink()

    run = convert(tiny_model_dir, photos, "-o", out)
    assert run.code == 0 and run.counts() == (1, 2, 0), run.text
    assert (out / "img0.png").stat().st_ino == inodes["img0.png"]  # left alone

    run = convert(tiny_model_dir, photos, "-o", out, "--overwrite")
    assert run.code == 0 and run.counts() == (3, 0, 0), run.text
    assert (out / "img0.png").stat().st_ino != inodes["img0.png"]  # written anew
    assert files(out) == {"img0.png", "img1.png", "img2.png"}
    assert_no_part_files(out)

    run = sample(tiny_model_dir, photos / "img0.jpg", "-n", 1, "-o", out)
    assert run.code == 0, run.text
    run = sample(tiny_model_dir, photos / "img0.jpg", "-n", 1, "-o", out)
    assert run.code == 2 and "--overwrite" in run.text, run.text
    assert sample(tiny_model_dir, photos / "img0.jpg", "-n", 1, "-o", out, "--overwrite").code == 0
    assert_no_part_files(out)


def writable_by_us(folder: Path) -> bool:
    try:
        (folder / ".probe").touch()
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


def test_read_only_output_folder(photos, tmp_path, tiny_model_dir):
    for i in range(3):
        picture(seed=i).save(photos / f"img{i}.jpg")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        if writable_by_us(out):
            pytest.skip("running as root: chmod 555 does not stop writing")
        run = convert(tiny_model_dir, photos, "-o", out)
        assert run.code != 0, run.text
        errors = [line for line in run.lines if line.startswith("error: ")]
        assert len(errors) == 1 and str(out) in errors[0], run.text
        assert not run.lines_naming("failed:"), run.text  # one error, not one per photo
        assert files(out) == set()

        run = convert(tiny_model_dir, photos, "-o", out / "sub")  # a folder that cannot be created
        assert run.code != 0 and len([ln for ln in run.lines if ln.startswith("error: ")]) == 1, run.text

        run = sample(tiny_model_dir, photos / "img0.jpg", "-n", 1, "-o", out)
        assert run.code == 2 and len(run.lines) == 1 and run.lines[0].startswith("error: "), run.text
        assert files(out) == set()
    finally:
        out.chmod(0o755)


def test_full_disk_stops_the_batch_with_one_error(photos, tmp_path, tiny_model_dir, monkeypatch):
    """Runs as root too: the disk is full from the third sketch on (ENOSPC from the real write path).

    Saves run in a thread pool, so which sketches besides img0 and img1 got written before the stop depends on
    timing; what must hold is one error, and every file on disk whole and accounted for.
    """
    import errno

    import sketchify.convert as conv

    for i in range(5):
        picture(seed=i).save(photos / f"img{i}.jpg")
    real_save, written, full = conv.save_atomic, [], []

    def filling_up(img, path, fmt):
        if full or path.name == "img2.png":
            full.append(path.name)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(img, path, fmt)
        written.append(path.name)

    monkeypatch.setattr(conv, "save_atomic", filling_up)
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out, "--batch-size", "1")
    assert run.code == 2, run.text
    errors = [line for line in run.lines if line.startswith("error: ")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "stopped" in errors[0], run.text
    assert not run.lines_naming("failed:"), run.text
    assert files(out) == set(written) and {"img0.png", "img1.png"} <= set(written)  # what was written stays, whole
    assert "img2.png" not in written


# ---------------------------------------------------------------- folders


@pytest.fixture
def tree(photos) -> set[str]:
    """photos/a.jpg, photos/trip/b.jpg, photos/trip/day 2/c.png, photos/trip/day 2/notes.txt"""
    picture(seed=1).save(photos / "a.jpg")
    (photos / "trip" / "day 2").mkdir(parents=True)
    picture(seed=2).save(photos / "trip" / "b.jpg")
    picture(seed=3).save(photos / "trip" / "day 2" / "c.png")
    (photos / "trip" / "day 2" / "notes.txt").write_text("not a photo, and not named like one")
    return {"a.png", "trip/b.png", "trip/day 2/c.png"}


def test_recursive_keeps_folder_structure(tree, photos, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out, "--recursive")
    assert run.code == 0 and run.counts() == (3, 0, 0), run.text
    assert files(out) == tree


def test_without_recursive_subfolders_are_ignored(tree, photos, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out)
    assert run.code == 0 and run.counts() == (1, 0, 0), run.text
    assert files(out) == {"a.png"}

    run = convert(tiny_model_dir, photos / "trip" / "day 2", photos / "trip", "-o", tmp_path / "out2")
    assert run.code == 0 and run.counts() == (2, 0, 0), run.text

    (photos / "a.jpg").unlink()
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "out3")
    assert run.code == 2 and "--recursive" in run.text, run.text
    assert files(tmp_path / "out3") == set()


def test_output_inside_input_tree_is_not_reconverted(tree, photos, tmp_path, tiny_model_dir):
    out = photos / "sketches"
    run = convert(tiny_model_dir, photos, "-o", out, "--recursive")
    assert run.code == 0 and run.counts() == (3, 0, 0), run.text
    assert files(out) == tree

    run = convert(tiny_model_dir, photos, "-o", out, "--recursive")
    assert run.code == 0 and run.counts() == (0, 3, 0), run.text
    assert files(out) == tree

    shutil.rmtree(out)  # else its sketches are photos like any other for a different -o
    nested = photos / "trip" / "sketches"  # deeper in the tree, and given as a relative path
    cwd = os.getcwd()
    os.chdir(photos)
    try:
        for _ in range(2):
            run = convert(tiny_model_dir, ".", "-o", Path("trip") / "sketches", "--recursive")
            assert run.code == 0, run.text
    finally:
        os.chdir(cwd)
    assert run.counts() == (0, 3, 0), run.text
    assert files(nested) == tree


# ---------------------------------------------------------------- shards


def test_shards_cover_every_file_once(tree, photos, tmp_path, tiny_model_dir):
    for i in range(5):
        picture(seed=10 + i).save(photos / "trip" / f"extra{i}.jpg")
    everything = tree | {f"trip/extra{i}.png" for i in range(5)}
    n = 3
    shards = []
    for k in range(n):
        out = tmp_path / f"shard{k}"
        run = convert(tiny_model_dir, photos, "-o", out, "--recursive", "--shard", f"{k}/{n}")
        assert run.code == 0, run.text
        shards.append(files(out))
        assert run.counts() == (len(shards[-1]), 0, 0)
    assert set().union(*shards) == everything
    assert sum(len(s) for s in shards) == len(everything)  # disjoint
    assert all(shards)

    shared = tmp_path / "shared"  # N jobs into one folder: nothing converted twice
    converted = 0
    for k in range(n):
        run = convert(tiny_model_dir, photos, "-o", shared, "--recursive", "--shard", f"{k}/{n}")
        converted += run.counts()[0]
        assert run.counts()[1] == 0, run.text
    assert converted == len(everything) and files(shared) == everything


@pytest.mark.parametrize("spec", ["3/2", "x", "2/2", "-1/2", "1/0", "1/2/3", "1", ""])
def test_bad_shard_spec(spec, photos, tmp_path, tiny_model_dir):
    picture().save(photos / "a.jpg")
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out, "--shard", spec)
    assert run.code == 2, run.text
    assert len(run.lines) == 1 and run.lines[0].startswith("error: ") and "--shard" in run.lines[0], run.text
    assert files(out) == set()


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(tmp_path, tiny_model_dir):
    import signal
    import subprocess
    import sys
    import time

    photos = tmp_path / "many"
    photos.mkdir()
    for i in range(40):
        picture(seed=i).resize((400, 300)).save(photos / f"p{i:02d}.jpg")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sketchify", "convert", str(photos), "-o", str(out), "--weights", str(tiny_model_dir),
           "--batch-size", "1", "--max-side", "0", "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and any(out.glob("*.png"))):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted" in stderr and "converted before Ctrl-C" in stderr and "Traceback" not in stderr
    assert not list(out.glob("*.part")) and not list(out.glob(".*"))
    done = len(list(out.glob("*.png")))
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{40 - done} converted, {done} skipped, 0 failed" in rerun.stdout
