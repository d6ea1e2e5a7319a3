"""Every loss term of the VAE-GAN, each a small function (or one class for the GAN objective)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) in closed form, averaged over latent elements."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean()


def multiscale_kl(stats: list[tuple[torch.Tensor, torch.Tensor]], factors: list[float] | None = None) -> torch.Tensor:
    """The KL term summed over the latent scales, each averaged over its elements and times its factor (finest
    first): a larger factor on a coarse scale keeps its sigma nearer 1, so that samples differ there."""
    factors = factors or [1.0] * len(stats)
    return sum(f * kl_divergence(mu, logvar) for f, (mu, logvar) in zip(factors, stats))


def tone_l1(fake: torch.Tensor, real: torch.Tensor, cell: int = 4) -> torch.Tensor:
    """L1 between the sketches' 4x4 means: how dark each area is, not where exactly a stroke sits (artists'
    strokes sit 2-3 px off the photo, and a pixel-exact loss answers that uncertainty with blur)."""
    return F.l1_loss(F.avg_pool2d(fake, cell), F.avg_pool2d(real, cell))


class PerceptualLoss(nn.Module):
    """Shift-tolerant LPIPS between generated sketches and the artists': the reference's features need no graph."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        from .perceptual import STLPIPS

        self.lpips = STLPIPS(net)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targets = self.lpips.features(real)
        return self.lpips.distance(self.lpips.features(fake), targets).mean()

    def samples(self, fakes: torch.Tensor, real: torch.Tensor, pool: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Two samples of each photo, stacked [first; second] (2N), against the N references: the mean distance of
        every sample to its reference, and the distance between the two samples of each photo (N,), measured on
        both shrunk by `pool` (area). Shrunk, grain a pixel or two wide averages out, so that two samples can only
        be told apart by where and how strongly they draw: at full size, speckle was the cheapest way to differ."""
        n = len(real)
        with torch.no_grad():
            targets = [t.repeat(2, 1, 1, 1) for t in self.lpips.features(real)]
        feats = self.lpips.features(fakes)
        seen = feats if pool == 1 else self.lpips.features(F.avg_pool2d(fakes, pool))
        between = self.lpips.distance([f[:n] for f in seen], [f[n:] for f in seen])
        return self.lpips.distance(feats, targets).mean(), between


def ink_weight(sketch: torch.Tensor) -> torch.Tensor:
    """1 on and around the reference's strokes and shading, 0 on its bare paper (paper grain is not ink)."""
    darkness = F.max_pool2d(1 - sketch, 5, stride=1, padding=2)
    return ((darkness - 0.25) / 0.25).clamp(0, 1)


def diversity_hinge(a: torch.Tensor, b: torch.Tensor, margin: float | torch.Tensor,
                    weight: torch.Tensor | None = None, knee: float = 0.0) -> torch.Tensor:
    """Mode seeking: penalise two sketches of one photo (different eps) that differ by less than the margin
    (one for all, or one per sketch).

    With a weight (ink_weight of the reference) the difference is measured where the drawing is, so samples
    vary in strokes, shading and hair, and stay clean white paper elsewhere. With a knee, a pixel's difference d
    counts as d^2 / (d^2 + knee^2), which buys the most per unit of d near d = knee: the margin is met by clear
    differences in some strokes rather than by a faint change everywhere, which no one sees side by side.
    """
    diff = (a - b).abs()
    if knee > 0:
        diff = diff ** 2 / (diff ** 2 + knee ** 2)
    if weight is None:
        d = diff.mean(dim=(1, 2, 3))
    else:
        d = (diff * weight).sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3)).clamp_min(1.0)
    return F.relu(margin - d).mean()


class GANLoss(nn.Module):
    """Least-squares GAN objective: knows its own targets, so callers only say real or fake."""

    def forward(self, prediction: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(prediction) if real else torch.zeros_like(prediction)
        return F.mse_loss(prediction, target)

    def levels(self, predictions: list[torch.Tensor], real: bool) -> torch.Tensor:
        """The mean over a multi-level discriminator's outputs."""
        return sum(self(p, real) for p in predictions) / len(predictions)
