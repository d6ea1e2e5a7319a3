"""The odd-input corpus: builders of good photos in unusual forms and of bad files, each made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = (48, 30)  # (width, height) of most test photos: small, and not square so that rotations show




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
