"""The inference path (sketchify.fast) draws what the plain model draws: every style, t = 0 and t = 1, odd
sizes (padded to the stride) and tiles."""

import pytest
import torch
import torch.nn.functional as F
from conftest import lively, tiny_config

from sketchify.fast import FastSketch
from sketchify.inference import Sketcher
from sketchify.model import SketchModel

TOLERANCE = 1e-4  # on [0, 1] sketches; float rounding differs, the function does not


@pytest.fixture(scope="module")
def model() -> SketchModel:
    """lively, with the generator's convolutions halved: lively alone drives the sigmoid to pre-activations of
    about 1e3, where float rounding alone reaches 1e-4 whichever way it is computed; a trained model's stay small."""
    model = lively(SketchModel(tiny_config())).eval()
    with torch.no_grad():
        for p in model.generator.parameters():
            if p.dim() == 4:
                p.mul_(0.5)
    return model


def plain(model: SketchModel, x: torch.Tensor, style: int, temperature: float, eps) -> torch.Tensor:
    """The reference: pad to the stride as Sketcher does, run SketchModel.forward, crop back."""
    n, _, h, w = x.shape
    s = model.config.stride
    padded = F.pad(x, (0, -w % s, 0, -h % s), mode="replicate")
    with torch.inference_mode():
        return model(padded, torch.full((n,), style), temperature, eps)[:, :, :h, :w]


def test_fast_path_equals_the_plain_forward_for_every_style_and_temperature(model):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 48, 80)
    eps = [torch.randn(2, k, 48 // f, 80 // f) for k, f in zip(model.config.latent_channels, (2, 4, 8, 16))]
    outputs = []
    for style in range(len(model.config.styles)):
        fast = FastSketch(model, style)
        for t in (0.0, 1.0):
            with torch.inference_mode():
                got = fast(x, t, eps)
            want = plain(model, x, style, t, eps)
            assert (got - want).abs().max() <= TOLERANCE, (style, t)
            outputs.append(want)
    # the comparison has teeth: styles and temperatures really change what is drawn
    assert min((a - b).abs().max() for i, a in enumerate(outputs) for b in outputs[i + 1:]) > 0.01


@pytest.mark.parametrize("tile", [1024, 32])
def test_sketcher_matches_the_plain_model_at_odd_sizes_whole_and_tiled(model, tile):
    sketcher = Sketcher(model, max_side=0, size=0, tile=tile)
    x = torch.rand(1, 3, 150, 133)  # neither side a multiple of the stride; tile 32 cuts it into 25 tiles
    eps = [sketcher._noise(x.shape, seed=3)]
    for style in range(len(model.config.styles)):
        for t in (0.0, 1.0):
            got = sketcher._draw(x, style, t, eps if t else None)
            want = plain(model, x, style, t, [e[None] for e in eps[0]] if t else None)
            assert got.shape == want.shape
            assert (got - want).abs().max() <= TOLERANCE, (style, t, tile)
