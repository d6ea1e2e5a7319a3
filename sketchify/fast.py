"""The inference path: SketchModel's function for one style, computed with fewer operations.

The modules in model.py stay the reference (training runs them); `FastSketch` is built from a trained model
and one style, with the same weights rearranged, and draws the same sketch up to float rounding (tests hold
it within 1e-4). Sketcher draws with it. Each rewrite is exact algebra:

- FiLM with a fixed style is a per-channel affine map right after a convolution, so it folds into that
  convolution's weight and bias (a batch is drawn in one style).
- A nearest 2x upsample followed by a 3x3 convolution is, for each of the 4 output phases (even or odd row,
  even or odd column), a 2x2 convolution at the low resolution: 16 taps at a quarter of the pixels instead of
  9 at all of them, 2.25x fewer multiply-adds in the generator's most expensive layers.
- At t = 0 the latent is its mean: the heads compute mu only, not log sigma^2.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import LEAK, LOGVAR_RANGE, PAPER_BIAS, TAPS, SketchModel, reparameterize

# Which of the 3 kernel rows (or columns) of a 3x3 convolution over a nearest-2x upsampled map fall on each of
# the 2 low-resolution rows it reads: even output rows read rows i-1 and i, odd ones rows i and i+1.
PHASE_TAPS = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]],
                           [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])

# helpers


def folded(conv: nn.Conv2d, film: torch.Tensor | None = None, *,
           shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """conv's weight and bias with the FiLM parameters (scale, shift) of one style applied after it."""
    weight, bias = conv.weight, conv.bias + shift
    if film is not None:
        scale, film_shift = film.chunk(2)
        weight, bias = weight * (1 + scale).view(-1, 1, 1, 1), bias * (1 + scale) + film_shift
    return weight.contiguous(memory_format=torch.channels_last), bias.contiguous()


def phase_weight(weight: torch.Tensor) -> torch.Tensor:
    """(O, C, 3, 3) for a 3x3 convolution after a nearest 2x upsample -> (4 O, C, 2, 2): one 2x2 convolution
    per output phase (a, b) at the low resolution, phases in the order (0, 0), (0, 1), (1, 0), (1, 1)."""
    taps = PHASE_TAPS.to(weight)
    w = torch.einsum("aik,bjl,ockl->abocij", taps, taps, weight)
    return w.reshape(-1, *w.shape[3:]).contiguous(memory_format=torch.channels_last)


def add_phases(out: torch.Tensor, phases: torch.Tensor) -> torch.Tensor:
    """Interleave phase maps into out (N, O, 2H, 2W), in place.

    phases (N, 4 O, H + 1, W + 1) is the 2x2 convolution of the low-resolution map padded by 1: phase (a, b)
    of the output is its slice [a:a + H, b:b + W], since odd rows and columns read one row further on.
    """
    n, o, h2, w2 = out.shape
    h, w = h2 // 2, w2 // 2
    if torch.onnx.is_in_onnx_export():  # the exporter loses writes into views: the same sum, out of place
        parts = phases.unflatten(1, (2, 2, o))
        grid = torch.stack([parts[:, a, b, :, a:a + h, b:b + w] for a in (0, 1) for b in (0, 1)], dim=2)
        return out + F.pixel_shuffle(grid.flatten(1, 2), 2)  # channel 4 o + 2 a + b -> pixel (2 i + a, 2 j + b)
    grid = out.unflatten(3, (w, 2)).unflatten(2, (h, 2))  # (N, O, H, 2, W, 2), a view of out
    parts = phases.unflatten(1, (2, 2, o))
    for a in (0, 1):
        for b in (0, 1):
            grid[:, :, :, a, :, b] += parts[:, a, b, :, a:a + h, b:b + w]
    return out


# classes


class FastResBlock(nn.Module):
    """StyleResBlock with its style folded into the first convolution."""

    def __init__(self, block: nn.Module, film: torch.Tensor):
        super().__init__()
        w1, b1 = folded(block.conv1, film)
        w2, b2 = folded(block.conv2)
        for name, value in dict(w1=w1, b1=b1, w2=w2, b2=b2).items():
            self.register_buffer(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu_(F.conv2d(x, self.w1, self.b1, padding=1), LEAK)
        return x + F.conv2d(h, self.w2, self.b2, padding=1)


class FastUpBlock(nn.Module):
    """UpBlock computed by phases: the upsampled features' part of the convolution runs at the low resolution;
    the new latent's part (it arrives at the high resolution, and is thin) is a plain 3x3 convolution."""

    def __init__(self, block: nn.Module, film: torch.Tensor, *, in_channels: int):
        super().__init__()
        weight, bias = folded(block.conv, film)
        self.register_buffer("w_h", phase_weight(weight[:, :in_channels]))  # UpBlock concatenates h first
        self.register_buffer("w_z", weight[:, in_channels:].contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", bias)

    def forward(self, h: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        n, _, height, width = h.shape
        phases = F.conv2d(h, self.w_h, padding=1)
        if z is not None:
            out = F.conv2d(z, self.w_z, self.bias, padding=1)
        else:
            out = self.bias.view(1, -1, 1, 1).expand(n, -1, 2 * height, 2 * width)
            out = out.contiguous(memory_format=torch.channels_last)
        return F.leaky_relu_(add_phases(out, phases), LEAK)


class FastSketch(nn.Module):
    """SketchModel's forward for one style: photo batch, temperature and eps in, sketch batch out."""

    def __init__(self, model: SketchModel, style: int):
        super().__init__()
        g, c = model.generator, model.config
        with torch.no_grad():
            code = model.style_embedding.weight[style]
            self.backbone = model.encoder.backbone  # shared, not copied: it has no style
            self.heads = model.encoder.heads
            self.stem = g.stem
            self.blocks = nn.ModuleList(FastResBlock(b, b.film(code)) for b in g.blocks)
            w1, w2, w4, w8, w16 = c.widths
            self.up = nn.ModuleList(FastUpBlock(b, b.film(code), in_channels=w)
                                    for b, w in zip(g.up, (w16, w8, w4, w2)))
            w, b = folded(g.to_sketch, shift=PAPER_BIAS)
            self.register_buffer("w_out", w)
            self.register_buffer("b_out", b)

    def latents(self, photo: torch.Tensor, temperature: float, eps: list[torch.Tensor] | None) -> list[torch.Tensor]:
        """The encoder's latents, finest first, sampled as model.sample_latents samples them (every scale)."""
        eps = eps if eps is not None else [None] * len(self.heads)
        zs = []
        for head, h, e in zip(self.heads, self.backbone.features(photo, TAPS), eps):
            k = head.out_channels // 2
            if temperature == 0:  # the mean: the log-variance half of the head is not needed
                zs.append(F.conv2d(h, head.weight[:k], head.bias[:k], padding=1))
            else:
                mu, logvar = head(h).chunk(2, dim=1)
                zs.append(reparameterize(mu, logvar.clamp(*LOGVAR_RANGE), temperature, e))
        return zs

    def forward(self, photo: torch.Tensor, temperature: float = 1.0,
                eps: list[torch.Tensor] | None = None) -> torch.Tensor:
        z2, z4, z8, z16 = self.latents(photo, temperature, eps)
        h = self.stem(z16)
        for block in self.blocks:
            h = block(h)
        for block, z in zip(self.up, (z8, z4, z2, None)):
            h = block(h, z)
        return torch.sigmoid(F.conv2d(h, self.w_out, self.b_out, padding=1))
