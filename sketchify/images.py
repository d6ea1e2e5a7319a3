"""Reading photos and writing sketches: EXIF, alpha, odd modes, size limits, atomic writes."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageFile, ImageFilter, ImageOps, UnidentifiedImageError

from .errors import SketchifyError
from .files import atomic_write

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic", ".heif", ".avif"}
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb guard
DEFAULT_MAX_SIDE = 1024  # larger photos are drawn at this size, then scaled up: strokes keep a pencil's width
FORMATS = ("png", "jpg", "webp")  # what sketches can be saved as


def load_photo(path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image as upright RGB on white: EXIF orientation applied, alpha flattened, first frame only."""
    path = Path(path)
    Image.MAX_IMAGE_PIXELS = max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if max_pixels is not None and im.width * im.height > max_pixels:  # warnings filters are not thread-safe
                    raise Image.DecompressionBombError(f"{im.width * im.height} pixels")
                im.seek(0)
                im.load()
                img = ImageOps.exif_transpose(im)
                return to_rgb(img)
    except FileNotFoundError:
        raise SketchifyError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SketchifyError(f"{path}: is a folder, not an image") from None
    except PermissionError:
        raise SketchifyError(f"{path}: permission denied") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise SketchifyError(f"{path}: too many pixels (over {max_pixels:,}); raise --max-pixels if you trust it") from None
    except UnidentifiedImageError:
        kind = "empty file" if path.stat().st_size == 0 else "not an image, or a format this Pillow cannot read"
        raise SketchifyError(f"{path}: {kind}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise SketchifyError(f"{path}: cannot decode image ({str(e) or type(e).__name__})") from None


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


SAVE_OPTIONS = {"png": {"optimize": False}, "jpg": {"quality": 92}, "webp": {"quality": 90}}


def save_atomic(img: Image.Image, path: Path, fmt: str) -> None:
    """Write an image atomically: a killed run leaves no half image."""
    atomic_write(path, lambda tmp: img.save(tmp, format={"jpg": "JPEG"}.get(fmt, fmt.upper()), **SAVE_OPTIONS[fmt]))
