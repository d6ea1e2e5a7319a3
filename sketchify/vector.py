"""Sketches as SVG: the ink traced into filled vector paths (vtracer), for plotters, cutters and print at any size.

A sketch is cut into a few bands of darkness; each band's region (every pixel at least that dark) is traced as
one binary image and filled with the mean grey of the sketch's pixels in the band. Layers are stacked lightest
first, so a darker band sits on the lighter one around it, and each is a `<g>` of its own that a plotter user
can keep alone (the last one is the darkest ink).

- Line styles keep two bands, strokes and ink: their strokes are light (contour and light-pencil lines are
  mostly 0.15-0.4 dark), so ink alone would lose most of the drawing, and a single black layer would draw them
  far heavier than the PNG does. Paper stays white and faint grain below STROKE is left out.
- Shaded styles (and styles this module does not know, as a model trained on other data names them) keep the
  paper's own tone as the background and four bands, so that shading stays shading.

An SVG cannot carry EXIF: how the sketch was drawn (convert's settings JSON) goes into <metadata>, where
read_settings finds it again, so that a re-run recognises its own outputs.
"""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import SketchifyError
from .files import open_regular

LINE_STYLES = {"bold-ink", "light-pencil", "contour"}
STROKE, INK, DARK = 0.15, 0.4, 0.7  # darkness (1 - grey) where a band starts; INK is what the tests call ink
LINE_BANDS = (STROKE, INK)
SHADED_BANDS = (0.08, STROKE, INK, DARK)
# vtracer drops regions smaller than SPECKLE x SPECKLE pixels: 4 (its default) lost the thin line styles' ink
# (ink IoU 0.33-0.46 on light-pencil at 481x321), 2 keeps it (0.63-0.81) for 10-40% more bytes
SPECKLE = 2
SETTINGS_ID = "sketchify-settings"
HEAD_BYTES = 65_536  # read_settings looks this far: the metadata comes before any path


# helpers


def bands_for(style: str | None) -> tuple[float, ...]:
    return LINE_BANDS if style in LINE_STYLES else SHADED_BANDS


def style_of(description: str | None) -> str | None:
    """The style named in convert's settings JSON, if there is one."""
    try:
        return json.loads(description).get("style") if description else None
    except (ValueError, AttributeError):
        return None


def hex_grey(darkness: float) -> str:
    v = round(255 * (1 - darkness))
    return f"#{v:02x}{v:02x}{v:02x}"


def trace(mask: np.ndarray) -> list[str]:
    """A boolean mask's regions as SVG <path> elements (no fill: their layer gives it)."""
    import vtracer

    buffer = io.BytesIO()
    Image.fromarray(np.where(mask, 0, 255).astype(np.uint8), "L").save(buffer, "PNG", compress_level=1)
    svg = vtracer.convert_raw_image_to_svg(buffer.getvalue(), img_format="png", colormode="binary", mode="spline",
                                           filter_speckle=SPECKLE, path_precision=1)
    return [re.sub(r'\s*fill="[^"]*"', "", p) for p in re.findall(r"<path\b[^>]*/>", svg)]


def check_vtracer() -> None:
    """A missing extra is one line before any work, not an ImportError per file."""
    try:
        import vtracer  # noqa: F401
    except ImportError:
        raise SketchifyError("SVG output needs vtracer: pip install 'sketchify[svg]'") from None


# the format


def encode_svg(sketch: Image.Image, *, description: str | None = None) -> bytes:
    """A greyscale sketch (at the photo's size) as SVG bytes; description (settings JSON) goes into <metadata>,
    and its style chooses the bands."""
    w, h = sketch.size
    darkness = 1 - np.asarray(sketch.convert("L"), dtype=np.float32) / 255
    bands = bands_for(style_of(description))
    below = darkness[darkness < bands[0]]
    paper = float(below.mean()) if bands is not LINE_BANDS and below.size else 0.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}" height="{h}" '
             f'viewBox="0 0 {w} {h}">']
    if description is not None:
        parts.append(f'<metadata id="{SETTINGS_ID}">{html.escape(description, quote=False)}</metadata>')
    parts.append(f'<rect width="{w}" height="{h}" fill="{hex_grey(paper)}"/>')
    for i, start in enumerate(bands):
        region = darkness >= start
        in_band = region & (darkness < bands[i + 1]) if i + 1 < len(bands) else region
        if not in_band.any():
            continue
        paths = trace(region)
        if paths:
            parts.append(f'<g id="band-{i}" fill="{hex_grey(float(darkness[in_band].mean()))}" '
                         f'fill-rule="evenodd">\n' + "\n".join(paths) + "\n</g>")
    parts.append("</svg>\n")
    return "\n".join(parts).encode()


def read_settings(path: Path) -> str | None:
    """The settings JSON encode_svg wrote, or None (not ours, unreadable, or no such file)."""
    try:
        with open_regular(path) as f:
            head = f.read(HEAD_BYTES).decode("utf-8", "replace")
    except (SketchifyError, OSError):
        return None
    m = re.search(rf'<metadata id="{SETTINGS_ID}">([^<]*)</metadata>', head)
    return html.unescape(m[1]) if m else None
