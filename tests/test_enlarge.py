"""Enlarging a sketch to its photo's size (sketchify.enlarge) and the scale photos are drawn at."""

import numpy as np
import pytest
import torch
from conftest import tiny_config
from PIL import Image

from sketchify.enlarge import enlarge, flow_smooth
from sketchify.settings import MAX_DRAW_SCALE, DrawSettings, drawn_short_side
from sketchify.tensors import to_image

INK = 166  # grey at or below: darkness >= 0.35, the ink of the stroke-width measure


def stroke_sketch(h: int = 40, w: int = 30, sigma: float = 1.5) -> torch.Tensor:
    """(1, h, w): paper with one soft vertical stroke down the middle, as the model draws one."""
    x = np.arange(w, dtype=np.float32) - (w - 1) / 2
    row = 1 - 0.9 * np.exp(-x * x / (2 * sigma * sigma))
    return torch.from_numpy(np.tile(row, (h, 1)))[None]


def ink_width(img: Image.Image) -> int:
    """Ink pixels across the middle row."""
    a = np.asarray(img)
    return int((a[a.shape[0] // 2] <= INK).sum())


def ink_sum(img: Image.Image) -> float:
    """Darkness summed across the middle row: grows with every fraction of a pixel a stroke widens."""
    return float((1 - np.asarray(img)[img.height // 2] / 255).sum())


def soft_pixels(img: Image.Image) -> int:
    """Pixels of the middle row that are neither near paper nor near ink: the blur of the stroke's edges."""
    row = np.asarray(img)[img.height // 2].astype(int)
    return int(((row > 40) & (row < 215)).sum())


def test_enlarge_gives_the_asked_size_in_grey():
    for size in [(120, 160), (121, 157), (30, 40), (20, 25)]:
        out = enlarge(stroke_sketch(), size)
        assert out.size == size and out.mode == "L"


def test_no_real_enlargement_is_the_plain_resize():
    sketch = torch.rand(1, 40, 30)
    for size in [(30, 40), (15, 20), (33, 44)]:  # the same size, smaller, a little larger (stride rounding)
        assert np.array_equal(np.asarray(enlarge(sketch, size)), np.asarray(to_image(sketch, size)))


def test_enlarging_thins_and_sharpens_a_soft_stroke():
    sketch, size = stroke_sketch(), (120, 160)
    ours, bicubic = enlarge(sketch, size), to_image(sketch, size)
    assert ink_width(ours) < ink_width(bicubic)
    assert soft_pixels(ours) < soft_pixels(bicubic) / 2
    assert np.asarray(ours)[80, 60] < 40  # the stroke's core is still ink


def test_a_faint_sketch_keeps_its_strokes_and_its_tone():
    # contour draws lines about half dark: steepened on absolute darkness they went to paper at 1600 px
    faint = 1 - (1 - stroke_sketch()) * 0.5  # the stroke's core is 0.45 dark
    ours, bicubic = enlarge(faint, (120, 160)), to_image(faint, (120, 160))
    core = 1 - np.asarray(ours)[80, 60] / 255
    assert 0.3 < core <= 0.46, core  # still there, and no darker than drawn
    assert soft_pixels(ours) < soft_pixels(bicubic)  # and sharpened as a bold one is
    bold = stroke_sketch()  # a bold sketch is steepened on absolute darkness, as before
    assert np.asarray(enlarge(bold, (120, 160)))[80, 60] < 40


def test_line_weight_grows_the_ink_monotonically():
    sketch, size = stroke_sketch(), (120, 160)
    weights = (-4, -2, -1, -0.5, 0, 0.5, 1, 2, 4, 8)
    ink = [ink_sum(enlarge(sketch, size, line_weight=lw)) for lw in weights]
    assert all(a < b for a, b in zip(ink, ink[1:])), ink
    wider = ink_width(enlarge(sketch, size, line_weight=8)) - ink_width(enlarge(sketch, size))
    assert abs(wider - 8) <= 2  # about the asked pixels wider


def test_line_weight_applies_at_the_photos_own_size():
    sketch = stroke_sketch()
    assert ink_width(enlarge(sketch, (30, 40), line_weight=4)) > ink_width(enlarge(sketch, (30, 40)))


@pytest.mark.parametrize("line_weight", [0.0, 3.5, -2.0])
def test_bands_give_the_whole_image(line_weight):
    sketch = torch.rand(1, 23, 31)
    whole = np.asarray(enlarge(sketch, (97, 71), line_weight=line_weight, band=1000)).astype(int)
    banded = np.asarray(enlarge(sketch, (97, 71), line_weight=line_weight, band=8)).astype(int)
    assert np.abs(whole - banded).max() <= 1  # float rounding of Pillow's band boxes


def test_flow_smoothing_joins_a_beaded_line_without_widening_it():
    x = np.ones((21, 40), np.float32)
    x[10, ::3] = 0.0  # a dotted horizontal line
    out = flow_smooth(x, reach=3.0)
    assert out[10, 3:-3].std() < x[10, 3:-3].std() / 3  # the beads merge
    assert out[10, 3:-3].max() < 0.8  # into one dark line
    assert out[7, :].min() > 0.95  # and nothing spreads 3 px across it


def test_the_drawing_scale_rule():
    assert drawn_short_side(100, 240, 720) == 240  # thumbnails are drawn at the scale the model learned
    assert drawn_short_side(321, 240, 720) == 321  # moderate photos at their own size
    assert drawn_short_side(3000, 240, 720) == 720  # big ones at most up_to, then enlarged
    config = tiny_config()
    s, d = config.stride, config.draw_size
    default = DrawSettings.build(config)
    assert (default.size, default.up_to) == (d, MAX_DRAW_SCALE * d)
    w, h = default.work_size((40 * d, 30 * d), s)
    assert abs(h - MAX_DRAW_SCALE * d) <= s / 2 and w / h == pytest.approx(4 / 3, rel=0.05)
    assert default.work_size((d // 2, d // 2), s) == (d, d)
    assert DrawSettings.build(config, size=0).work_size((64, 48), s) == (64, 48)  # a size given is drawn as given
    assert DrawSettings.build(config, size=d).up_to == 0
