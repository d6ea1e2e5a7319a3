"""A sketch enlarged to its photo's size so that it holds at 100% zoom, and its line weight.

The model draws a big photo at a moderate scale (DrawSettings.work_size); the sketch is then enlarged f times. A plain
bicubic enlargement makes every stroke f times wider with edges f pixels soft, and turns the model's pixel grain
into blobs. Instead, three cheap steps:

1. smooth along the strokes at the drawing's scale (the direction from the structure tensor): the grain joins into
   lines, and nothing widens across them;
2. enlarge (bicubic);
3. an ink curve as steep as the enlargement is large: each edge goes from paper to ink in about a pixel again, as it
   did in the drawing, and the strokes come out thinner than the smooth enlargement's blur.

Line weight then thickens or thins every stroke by a number of pixels at the output's size (a grey min or max
filter). Steps 2 and 3 run in bands of output rows, so a 12 MP sketch needs a few bands' memory, not a 12 MP
float image for every step. All of it is numpy and Pillow: convert runs it in writer threads beside the model,
where torch's own threads would oversubscribe the cores.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from .tensors import to_image

PLAIN = 1.25  # enlarged less than this (a drawing's stride rounding, a small step up): plain bicubic blurs nothing
BAND = 256  # output rows enlarged at once: 4000 x 256 float32 is 4 MB a buffer
MAX_REACH = 3.0  # drawing pixels averaged either side along a stroke, at most: the model's grain is 2-3 px
MAX_GAIN = 2.5  # steepest ink curve: steeper makes the lightest strokes and shading flat black or white
# how far the steepest curve's middle moves into the ink (darkness 0.5 + this): the enlargement's blur spread each
# stroke's edges outwards, so its middle grey lies outside the stroke the model drew
THINNING = 0.2
# A sketch whose darkest strokes (the 99.8th percentile of darkness) reach this is steepened as it is; a fainter one
# (contour's lines reach about 0.5) is steepened relative to its own darkest strokes, and keeps its tone: on absolute
# darkness the curve would push all of its lines to paper
INK_LEVEL = 0.8

# helpers


def blur_1d(x: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """Convolve (..., H, W) along axis -1 or -2 with an odd symmetric kernel, edges replicated."""
    r = len(kernel) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    p = np.pad(x, pad, mode="edge")
    n = x.shape[axis]
    out = np.zeros_like(x)
    for i, k in enumerate(kernel):
        out += k * p.take(np.arange(i, i + n), axis=axis)
    return out


def gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the last two axes, edges replicated."""
    r = max(1, math.ceil(3 * sigma))
    t = np.arange(-r, r + 1, dtype=np.float32)
    k = np.exp(-t * t / (2 * sigma * sigma))
    k /= k.sum()
    return blur_1d(blur_1d(x, k, -1), k, -2)


def stroke_tangents(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) -> the (x, y) components of the unit direction along the strokes at each pixel: across the
    neighbourhood's dominant gradient (the structure tensor's minor eigenvector)."""
    p = np.pad(gaussian(x, 0.7), 1, mode="edge")
    gx = (p[1:-1, 2:] - p[1:-1, :-2]) / 2
    gy = (p[2:, 1:-1] - p[:-2, 1:-1]) / 2
    jxx, jxy, jyy = gaussian(np.stack([gx * gx, gx * gy, gy * gy]), 2.0)
    across = 0.5 * np.arctan2(2 * jxy, jxx - jyy)  # the gradient's angle, halved from the doubled-angle form
    return -np.sin(across), np.cos(across)


def bilinear(x: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """x (H, W) read at fractional coordinates, clamped to its edges."""
    h, w = x.shape
    xs, ys = np.clip(xs, 0, w - 1), np.clip(ys, 0, h - 1)
    x0 = np.minimum(xs.astype(np.intp), max(w - 2, 0))  # the last column and row interpolate from their left
    y0 = np.minimum(ys.astype(np.intp), max(h - 2, 0))
    fx, fy = xs - x0, ys - y0
    flat = x.ravel()
    i = y0 * w + x0
    dx, dy = int(w > 1), w * int(h > 1)
    top = flat.take(i) * (1 - fx) + flat.take(i + dx) * fx
    bottom = flat.take(i + dy) * (1 - fx) + flat.take(i + dy + dx) * fx
    return top * (1 - fy) + bottom * fy


def flow_smooth(x: np.ndarray, reach: float, taps: int = 7) -> np.ndarray:
    """(H, W) sketch averaged along its strokes over +-reach pixels (Gaussian weights): beads on a line become
    the line, and the line keeps its width."""
    if reach <= 0:
        return x
    tx, ty = stroke_tangents(x)
    ys, xs = np.mgrid[0:x.shape[0], 0:x.shape[1]].astype(np.float32)
    out, total = np.zeros_like(x), 0.0
    for s in np.linspace(-reach, reach, taps):
        weight = math.exp(-2 * (s / reach) ** 2)
        out += weight * bilinear(x, xs + s * tx, ys + s * ty)
        total += weight
    return out / total


def ink_curve(grey: np.ndarray, gain: float, ink: float = 1.0) -> np.ndarray:
    """Steepen (H, W) grey in place: slope `gain` through mid-grey, clipped to [0, 1], the middle moved towards the
    ink as the curve steepens (THINNING at MAX_GAIN). Gain 1 changes nothing. ink: the darkness the curve takes as
    full ink (1: black); darkness is measured in it, and the result never gets darker than it."""
    middle = 0.5 - THINNING * (gain - 1) / (MAX_GAIN - 1)
    grey -= 1 - ink + ink * middle  # darkness over ink, steepened, times ink again, in three passes
    grey *= gain
    grey += ink * 0.5 + 1 - ink
    return np.clip(grey, 1 - ink, 1.0, out=grey)


def ink_level(sketch: np.ndarray) -> float:
    """The darkness ink_curve takes as full ink for this (H, W) sketch: 1, or less for a faint one (INK_LEVEL)."""
    darkest = float(np.percentile(1 - sketch[::2, ::2], 99.8))
    return min(1.0, max(darkest / INK_LEVEL, 0.25))


def grey_max(x: np.ndarray, radius: int) -> np.ndarray:
    """Largest value within a (2 radius + 1)-pixel square of each pixel of (H, W): a row pass, then a column pass."""
    for axis in (1, 0):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        p = np.pad(x, pad, mode="edge")
        n = x.shape[axis]
        x = p.take(np.arange(0, n), axis=axis)
        for i in range(1, 2 * radius + 1):
            np.maximum(x, p.take(np.arange(i, i + n), axis=axis), out=x)
    return x


def weigh(grey: np.ndarray, line_weight: float) -> np.ndarray:
    """Strokes of (H, W) grey made about line_weight pixels wider (negative: narrower; a stroke thinner than that
    goes). A grey min filter (max for thinning) of radius |line_weight| / 2, a fractional radius blended between
    the two whole ones, so that the weight grows smoothly with the number."""
    if line_weight == 0:
        return grey
    sign = -1.0 if line_weight > 0 else 1.0
    x = grey * sign  # ink is dark: a min filter is the max filter of the negation
    radius = abs(line_weight) / 2
    low, frac = int(radius), radius - int(radius)
    out = grey_max(x, low)
    if frac > 0:
        out = (1 - frac) * out + frac * grey_max(x, low + 1)
    return out * sign


# the entry point


def scale_of(sketch_size: tuple[int, int], size: tuple[int, int]) -> float:
    """How many times larger the output is than the drawing (the mean of both sides; they differ by the stride's
    rounding only)."""
    return (size[0] / sketch_size[0] + size[1] / sketch_size[1]) / 2


def enlarge(sketch: torch.Tensor, size: tuple[int, int], *, line_weight: float = 0.0, band: int = BAND) -> Image.Image:
    """(1, h, w) sketch in [0, 1] -> greyscale PIL image of size (width, height) with crisp strokes.

    A sketch enlarged less than PLAIN times, with line_weight 0, is resized plainly (bicubic)."""
    _, h, w = sketch.shape
    f = scale_of((w, h), size)
    if f < PLAIN and line_weight == 0:
        return to_image(sketch, size)
    reach = min(f - 1, MAX_REACH) if f >= PLAIN else 0.0  # the grain matters as much as it is enlarged
    smooth = np.clip(flow_smooth(sketch[0].numpy().astype(np.float32), reach), 0, 1)
    src = Image.fromarray(smooth, "F")
    gain = min(f, MAX_GAIN) if f >= PLAIN else 1.0
    ink = ink_level(smooth) if gain > 1 else 1.0  # gain 1 (line weight alone) leaves the tones as drawn
    width, height = size
    halo = math.ceil(abs(line_weight) / 2)  # rows a band's line weight reads beyond it
    out = np.empty((height, width), np.uint8)
    for top in range(0, height, band):
        bottom = min(top + band, height)
        t0, t1 = max(top - halo, 0), min(bottom + halo, height)
        # box: the band's rows in the drawing's coordinates; Pillow reads the rows around it too, so bands equal
        # the whole image's enlargement
        rows = src.resize((width, t1 - t0), Image.BICUBIC, box=(0, t0 * h / height, w, t1 * h / height))
        grey = weigh(ink_curve(np.array(rows), gain, ink), line_weight)[top - t0:bottom - t0]
        out[top:bottom] = np.rint(grey * 255)
    return Image.fromarray(out, "L")
