"""The evaluation measures: ST-LPIPS, KID and contour F on tiny synthetic drawings."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from PIL import Image, ImageDraw

from sketchify.tensors import to_tensor

needs_stlpips = pytest.mark.skipif(importlib.util.find_spec("stlpips_pytorch") is None,
                                   reason="needs the train extra (stlpips-pytorch)")


def drawing(size: int = 64, seed: int = 0) -> torch.Tensor:
    """A line drawing: dark strokes on white paper, (1, 1, size, size) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0, x1, y1 = (torch.randint(4, size - 4, (4,), generator=g)).tolist()
        draw.line([x0, y0, x1, y1], fill=30, width=2)
    draw.ellipse([size // 4, size // 4, 3 * size // 4, 3 * size // 4], outline=0, width=2)
    return to_tensor(img)[None]


def shift_right(x: torch.Tensor, px: int) -> torch.Tensor:
    out = torch.ones_like(x)  # the page moves, white paper comes in
    out[..., px:] = x[..., :-px]
    return out


@pytest.fixture(scope="module")
def alex():
    from sketchify.perceptual import STLPIPS

    return STLPIPS("alex")


@needs_stlpips
def test_stlpips_ranks_a_small_shift_far_below_a_blank_page(alex):
    a = drawing()
    d = alex(torch.cat([a, shift_right(a, 2), torch.ones_like(a)]), torch.cat([a, a, a]))
    assert d[0] < 1e-6
    assert d[1] < 0.1 < d[2]
    assert d[1] * 5 < d[2]


@needs_stlpips
def test_stlpips_accepts_grey_against_colour_and_is_symmetric(alex):
    a, b = drawing(seed=1), drawing(seed=2)
    assert torch.allclose(alex(a, b.expand(-1, 3, -1, -1)), alex(b, a), atol=1e-5)


@needs_stlpips
def test_vgg_stlpips_loads_strictly_and_passes_gradients_to_the_image_only():
    from sketchify.perceptual import STLPIPS

    vgg = STLPIPS("vgg")  # strict load: a missing or unexpected key raises
    assert not any(p.requires_grad for p in vgg.parameters())
    target = drawing(32)
    x = torch.full_like(target, 0.5, requires_grad=True)
    vgg(x, target).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_stlpips_without_the_package_says_how_to_install(monkeypatch):
    from sketchify import perceptual
    from sketchify.errors import SketchifyError

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SketchifyError, match=r"pip install 'sketchify\[train\]'"):
        perceptual.STLPIPS("alex")


def test_kid_is_near_zero_for_one_distribution_and_large_for_another():
    from sketchify.metrics import kid

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 32, generator=g), torch.randn(200, 32, generator=g)
    moved = torch.randn(200, 32, generator=g) + 0.5
    assert kid(moved, a, subsets=20) > 0.05
    assert abs(kid(a, b, subsets=20)) < 0.1 * kid(moved, a, subsets=20)
    assert abs(kid(a, a, subsets=20)) < 0.1 * kid(moved, a, subsets=20)


def test_realism_features_treat_grey_as_rgb_and_any_size_alike():
    from sketchify.metrics import realism_features

    conv = torch.nn.Conv2d(3, 4, 3)
    a = drawing(40)
    f = realism_features([a, a.expand(-1, 3, -1, -1), drawing(56, seed=3)], conv, size=32)
    assert f.shape == (3, 4)
    assert torch.allclose(f[0], f[1]) and not torch.allclose(f[0], f[2])


def test_disc_max_marks_exactly_the_pixels_within_the_radius():
    from sketchify.metrics import disc_max

    mask = torch.rand(20, 24, generator=torch.Generator().manual_seed(1)) > 0.97
    ys, xs = torch.nonzero(mask, as_tuple=True)
    yy, xx = torch.meshgrid(torch.arange(20), torch.arange(24), indexing="ij")
    dist = ((yy[..., None] - ys) ** 2 + (xx[..., None] - xs) ** 2).float().sqrt().min(-1).values
    assert torch.equal(disc_max(mask.float(), 3.5) > 0, dist <= 3.5)


def contour_score(darkness: torch.Tensor, boundary: torch.Tensor) -> float:
    from sketchify.metrics import contour_counts, contour_f

    return contour_f(contour_counts(darkness, boundary))["f"]


def test_contour_f_forgives_a_shift_within_tolerance_but_not_beyond():
    boundary = 1 - drawing(200)[0, 0].round()  # 1-2 px lines; tolerance is 0.0075 x 283 = 2.1 px
    perfect = boundary * 255
    moved = lambda px: torch.cat([torch.zeros(200, px), perfect[:, :-px]], dim=1)
    assert contour_score(perfect, boundary) == pytest.approx(1.0)
    assert contour_score(moved(2), boundary) > 0.97
    assert contour_score(moved(6), boundary) < 0.5


@needs_stlpips
def test_the_perceptual_loss_is_the_measure_and_teaches_only_the_generated_sketch():
    from sketchify.losses import PerceptualLoss
    from sketchify.perceptual import STLPIPS

    torch.manual_seed(0)
    fake, real = torch.rand(2, 1, 48, 48, requires_grad=True), torch.rand(2, 1, 48, 48, requires_grad=True)
    loss = PerceptualLoss("alex")(fake, real)
    torch.testing.assert_close(loss, STLPIPS("alex")(fake, real).mean())
    loss.backward()
    assert fake.grad.abs().sum() > 0 and real.grad is None  # the reference's features carry no graph


@needs_stlpips
def test_the_sample_terms_score_both_samples_and_the_gap_between_them():
    from sketchify.losses import PerceptualLoss
    from sketchify.perceptual import STLPIPS

    torch.manual_seed(0)
    fakes, real = torch.rand(4, 1, 48, 48, requires_grad=True), torch.rand(2, 1, 48, 48)
    to_reference, between = PerceptualLoss("alex").samples(fakes, real)
    judge = STLPIPS("alex")
    torch.testing.assert_close(to_reference, judge(fakes, real.repeat(2, 1, 1, 1)).mean())
    torch.testing.assert_close(between, judge(fakes[:2], fakes[2:]))
    between.sum().backward()  # the diversity term moves both samples
    assert fakes.grad[:2].abs().sum() > 0 and fakes.grad[2:].abs().sum() > 0


@needs_stlpips
def test_the_gap_between_samples_can_be_measured_shrunk_so_grain_does_not_count():
    from sketchify.losses import PerceptualLoss
    from sketchify.perceptual import STLPIPS

    torch.manual_seed(0)
    stroke = torch.ones(1, 1, 64, 64)
    stroke[..., 20:44, 30:34] = 0.0
    grainy = (stroke + (torch.rand(1, 1, 64, 64) * 2 - 1) * 0.2).clamp(0, 1)  # the same drawing, 1-pixel grain
    more = stroke.clone()
    more[..., 10:14, 10:50] = 0.0  # the same drawing and one more stroke
    samples = torch.cat([stroke, stroke, grainy, more])  # [first; second]: (stroke, grainy), (stroke, more)
    loss = PerceptualLoss("alex")
    _, full = loss.samples(samples, stroke.repeat(2, 1, 1, 1))
    _, shrunk = loss.samples(samples, stroke.repeat(2, 1, 1, 1), pool=2)
    pooled = torch.nn.functional.avg_pool2d(samples, 2)
    torch.testing.assert_close(shrunk, STLPIPS("alex")(pooled[:2], pooled[2:]))
    assert full[0] > full[1]  # at full size, grain is the larger difference
    assert shrunk[0] < 0.25 * shrunk[1]  # shrunk, the stroke is
