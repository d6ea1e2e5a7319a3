"""Reading photos and writing sketches: EXIF, alpha, odd modes, size limits, atomic writes."""

from __future__ import annotations

import io
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from .errors import SketchifyError
from .files import atomic_write, is_regular, open_regular

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic", ".heif", ".avif"}
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb guard
READING = threading.local()  # the file this thread is decoding: Pillow's warnings do not name it
MAX_PHOTO_BYTES = 50 * 2**20  # one photo from a stream (standard input), as `sketchify serve` takes one upload
# Training holds every image scaled to the load size on its short side: at 16:1 that is already 240 x 3840 px;
# a longer, thinner image is a strip or a mistake, and at 1:80000 it would be 240 x 19.2 M px
MAX_TRAINING_ASPECT = 16


def load_photo(source: str | Path | BinaryIO, *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               max_aspect: float | None = None) -> Image.Image:
    """Open an image as upright RGB on white: EXIF orientation applied, alpha flattened, first frame only.

    source is a path (a regular file: a pipe or device is refused, never waited on) or an open binary file.
    Pillow's process-wide settings are left as the host application set them; max_pixels (and max_aspect, the
    long side over the short one) are checked here, from the header, before anything is decoded.
    """
    path = Path(source) if isinstance(source, (str, Path)) else Path(getattr(source, "name", "-"))
    try:
        with reading(path), (open_regular(path) if isinstance(source, (str, Path)) else nullcontext(source)) as f:
            with Image.open(f) as im:
                if max_pixels is not None and im.width * im.height > max_pixels:
                    raise Image.DecompressionBombError(f"{im.width * im.height} pixels")
                if max_aspect is not None and max(im.size) > max_aspect * min(im.size):
                    raise SketchifyError(f"{path}: {im.width}x{im.height} is too long and thin to train on (the "
                                         f"long side more than {max_aspect} times the short one)")
                im.seek(0)
                im.load()
                return to_rgb(ImageOps.exif_transpose(im))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = f"over {max_pixels:,}" if max_pixels is not None else "over Pillow's limit"
        raise SketchifyError(f"{path}: too many pixels ({limit}); raise --max-pixels if you trust it") from None
    except UnidentifiedImageError:
        kind = "empty file" if is_empty(path) else "not an image, or a format this Pillow cannot read"
        raise SketchifyError(f"{path}: {kind}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise SketchifyError(f"{path}: cannot decode image ({str(e) or type(e).__name__})") from None


@contextmanager
def reading(path: Path):
    """Name the file this thread reads, for warning_line."""
    READING.path = path
    try:
        yield
    finally:
        READING.path = None


def warning_line(message) -> str:
    """A warning Pillow gave while decoding (e.g. "Corrupt EXIF data"), as one line that names the file."""
    path = getattr(READING, "path", None)
    text = " ".join(str(message).split())
    return f"{path}: {text}" if path is not None else text


def read_stream(f: BinaryIO, name: str = "- (standard input)") -> io.BytesIO:
    """A photo from a stream that cannot seek (Pillow must), read into memory up to MAX_PHOTO_BYTES: an endless
    pipe is an error, not all the memory there is."""
    data = f.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise SketchifyError(f"{name}: more than {MAX_PHOTO_BYTES:,} bytes, larger than any photo this tool reads "
                             "from a stream; give the file's name instead")
    return io.BytesIO(data)


def is_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def pixel_count(path: Path) -> int:
    """Width x height from the file's header, without decoding; 0 if it cannot be read (loading will say why)."""
    try:
        with reading(path), open_regular(path) as f, Image.open(f) as im:
            return im.width * im.height
    except Exception:  # any unreadable file is reported when it is loaded
        return 0


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB, transparent parts on white paper."""
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v * (1 / 257)).convert("L")  # 16-bit -> 8-bit
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def pencil_filter(photo: Image.Image, sigma: float = 8.0) -> Image.Image:
    """The classical pencil sketch: greyscale colour-dodged by its inverted, blurred self."""
    import numpy as np

    grey = np.asarray(photo.convert("L"), dtype=np.float32)
    inv_blur = np.asarray(ImageOps.invert(photo.convert("L")).filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float32)
    dodge = np.minimum(255.0, grey * 255.0 / np.maximum(255.0 - inv_blur, 1.0))
    return Image.fromarray(dodge.round().astype(np.uint8), "L")


FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}  # the raster formats sketches are saved in, Pillow's names
FORMAT_NAMES = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp", "svg": "svg"}  # what -f accepts, any case
FORMAT_MAX_SIDE = {"jpg": 65_535, "webp": 16_383}  # the largest side each format can hold
DEFAULT_QUALITY = {"jpg": 92}  # webp without a quality is lossless: exact grey, as PNG (lossy webp is colour)


def format_name(text: str) -> str:
    """-f png / jpg / JPG / jpeg / webp / svg -> png, jpg, webp or svg."""
    fmt = FORMAT_NAMES.get(text.lower().lstrip("."))
    if fmt is None:
        raise SketchifyError(f"unknown format {text!r}; choose one of: png, jpg (or jpeg), webp, svg")
    if fmt == "svg":  # an optional extra: a missing one is said here, before any work
        from .vector import check_vtracer

        check_vtracer()
    return fmt


def check_quality(quality: int | None, fmt: str) -> None:
    if quality is not None and fmt in ("png", "svg"):
        raise SketchifyError(f"--quality applies to jpg and webp; {fmt} has none")


def check_fits(size: tuple[int, int], fmt: str, name: Path) -> None:
    """Refuse before drawing a sketch the format cannot hold."""
    limit = FORMAT_MAX_SIDE.get(fmt)
    if limit and max(size) > limit:
        raise SketchifyError(f"{name}: {size[0]}x{size[1]} is too large for {fmt} (at most {limit} px a side); "
                             "choose -f png")


def save_atomic(img: Image.Image, path: Path, fmt: str, *, quality: int | None = None,
                description: str | None = None) -> None:
    """Encode in memory (a format that cannot hold the image fails before any file), then write beside the
    target and rename: a killed run leaves no half image."""
    data = encode(img, fmt, quality=quality, description=description)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def encode(img: Image.Image, fmt: str, *, quality: int | None = None, description: str | None = None) -> bytes:
    """The image as a file's bytes; description (how the sketch was drawn) goes into EXIF ImageDescription,
    the same in every format (svg: in its <metadata>)."""
    if fmt == "svg":
        from .vector import encode_svg

        return encode_svg(img, description=description)
    options = {}
    if fmt == "png":
        # zlib's fastest level: a sketch's grain compresses little, so level 6 (Pillow's default) saves ~10% of
        # the bytes at 2-3x the time, and encoding is a third of convert's work besides the model
        options["compress_level"] = 1
    elif fmt == "webp" and quality is None:
        options["lossless"] = True
    else:
        options["quality"] = quality or DEFAULT_QUALITY[fmt]
    if description is not None:
        exif = Image.Exif()
        exif[0x010E] = description  # ImageDescription
        exif[0x0131] = "sketchify"  # Software
        options["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    img.save(buffer, format=FORMATS[fmt], **options)
    return buffer.getvalue()


def is_whole(path: Path) -> bool:
    """Whether an image file ends as its format says it must (PNG's IEND chunk, JPEG's end marker, WebP's RIFF
    length, SVG's closing tag): a sketch cut short, by a power cut before its data reached the disk, is drawn again."""
    try:
        with open_regular(path) as f:
            head = f.read(12)
            f.seek(0, 2)
            length = f.tell()
            f.seek(max(0, length - 12))
            tail = f.read()
    except (SketchifyError, OSError):
        return False
    kind = signature(head)
    if kind == "png":
        return tail.endswith(b"IEND\xaeB`\x82")
    if kind == "jpeg":
        return tail.rstrip(b"\x00").endswith(b"\xff\xd9")
    if kind == "webp":
        return int.from_bytes(head[4:8], "little") + 8 <= length
    if path.suffix.lower() == ".svg":
        return tail.rstrip().endswith(b"</svg>")
    return True  # a format this check does not know: trust it


def read_description(path: Path) -> str | None:
    """The ImageDescription save_atomic wrote, or None (not ours, unreadable, or no such file)."""
    if path.suffix.lower() == ".svg":
        from .vector import read_settings

        return read_settings(path)
    try:
        with reading(path), open_regular(path) as f, Image.open(f) as im:
            exif = im.getexif()
            if exif.get(0x0131) != "sketchify":
                return None
            text = exif.get(0x010E)
            return text if isinstance(text, str) else None
    except Exception:  # anything unreadable is simply not a sketch of ours
        return None


def on_disk(path: Path) -> tuple[str, str | None]:
    """What lies at an output's path, and its record: "free" (nothing), "ours" (a whole sketch of sketchify's),
    "broken" (empty, or an image cut short: drawn again) or "other" (a folder, someone's image, any other file,
    unreadable ones too: never written over)."""
    if not path.exists() and not path.is_symlink():
        return "free", None
    if not is_regular(path):
        return "other", None
    record = read_description(path)
    if record is not None:
        return ("ours" if is_whole(path) else "broken"), record
    if path.stat().st_size == 0 or (starts_as_image(path) and not pixel_count(path)):
        return "broken", None
    return "other", None


def signature(head: bytes) -> str | None:
    """"png", "jpeg" or "webp" from a file's first 12 bytes, else None: the formats whose ends is_whole checks."""
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    return None


def starts_as_image(path: Path) -> bool:
    """Whether the file begins with a PNG, JPEG or WebP signature (whatever follows)."""
    try:
        with open_regular(path) as f:
            return signature(f.read(12)) is not None
    except (SketchifyError, OSError):
        return False
