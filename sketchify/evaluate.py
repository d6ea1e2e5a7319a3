"""Scoring sketches against reference drawings: MAE, SSIM, sample diversity, and the two baselines."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
from PIL import Image

from . import losses
from .data import Pair
from .images import load_photo, pencil_filter
from .tensors import grey


def mae(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean())


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(losses.ssim(a, b))


@dataclass
class Scores:
    """Running means of each metric, for one style and one method."""

    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def add(self, **metrics: float) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def mean(self) -> dict[str, float]:
        return {k: v / max(1, self.count) for k, v in self.sums.items()}


METHODS = ("model t=0", "model samples", "blank page", "pencil filter")


def evaluate(sketcher, pairs: list[Pair], *, n_samples: int = 4, seed: int = 0, temperature: float = 1.0,
             progress=lambda: None) -> dict:
    """Per style: {method: {"mae", "ssim", ...}} with diversity for the model's samples; each on the same pairs."""
    table: dict[str, dict[str, Scores]] = {}
    for pair in pairs:
        style = sketcher.config.styles[pair.style]
        row = table.setdefault(style, {m: Scores() for m in METHODS})
        photo, reference = load_photo(pair.photo), grey(load_photo(pair.sketch))
        size = (reference.shape[-1], reference.shape[-2])

        def score(img: Image.Image) -> dict[str, float]:
            t = grey(img.resize(size, Image.BICUBIC) if img.size != size else img)
            return {"mae": mae(t, reference), "ssim": ssim(t, reference)}

        row["model t=0"].add(**score(sketcher.sketch(photo, style=style)))
        samples = sketcher.samples(photo, n_samples, style=style, seed=seed, temperature=temperature)
        per_sample = [score(s) for s in samples]
        tensors = [grey(s) for s in samples]
        diversity = sum(mae(a, b) for a, b in itertools.combinations(tensors, 2)) / max(1, n_samples * (n_samples - 1) // 2)
        row["model samples"].add(
            mae=sum(s["mae"] for s in per_sample) / n_samples, ssim=sum(s["ssim"] for s in per_sample) / n_samples,
            worst_mae=max(s["mae"] for s in per_sample), worst_ssim=min(s["ssim"] for s in per_sample),
            diversity=diversity)
        row["blank page"].add(**score(Image.new("L", size, 255)))
        row["pencil filter"].add(**score(pencil_filter(photo)))
        progress()
    return {style: {m: {**s.mean(), "n": s.count} for m, s in row.items()} for style, row in table.items()}
