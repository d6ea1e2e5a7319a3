"""What the issue's SSIM gives a drawing that differs from the artist's only a little: the artist's own
reference, moved, gently warped or softened, scored against itself, next to the blank page; per style, on the
held-out pairs. It sizes how much visible variety a sample can have and still beat the blank page.

    python training/default/redraw_scores.py ../shared/data/fs2k/train ../shared/data/cufs/train
"""

import argparse

import torch
import torch.nn.functional as F

from sketchify.config import SketchConfig
from sketchify.data import find_pairs, split
from sketchify.evaluate import grey, ssim
from sketchify.images import load_photo

parser = argparse.ArgumentParser()
parser.add_argument("fs2k")
parser.add_argument("cufs")
args = parser.parse_args()

cfg = SketchConfig(styles=["light-pencil", "bold-ink", "shaded-pencil", "portrait"], default_style="bold-ink")
_, val = split(find_pairs(args.fs2k, cfg) + find_pairs(args.cufs, cfg, "portrait"), cfg.val_fraction)
torch.manual_seed(0)


def shift(x: torch.Tensor, px: int) -> torch.Tensor:
    return torch.roll(x, px, dims=3)


def warp(x: torch.Tensor, peak: float, cells: int = 8) -> torch.Tensor:
    """A smooth random displacement field whose largest move is `peak` px: a second hand tracing the same lines."""
    h, w = x.shape[-2:]
    flow = F.interpolate(torch.randn(1, 2, cells, cells), size=(h, w), mode="bicubic", align_corners=False)
    flow = flow / flow.abs().amax() * peak
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    grid = torch.stack([xs + flow[0, 0] * 2 / w, ys + flow[0, 1] * 2 / h], -1)[None]
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = 3 * int(sigma + 1)
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))


VARIANTS = {
    "blank page": lambda r: torch.ones_like(r),
    "moved 1 px": lambda r: shift(r, 1),
    "moved 2 px": lambda r: shift(r, 2),
    "warped <= 1 px": lambda r: warp(r, 1.0),
    "warped <= 2 px": lambda r: warp(r, 2.0),
    "blurred sigma 2": lambda r: blur(r, 2.0),
    "warped <= 2 px, blurred sigma 3": lambda r: blur(warp(r, 2.0), 3.0),
}
sums: dict[str, dict[str, list[float]]] = {}
for pair in val:
    reference = grey(load_photo(pair.sketch))
    row = sums.setdefault(cfg.styles[pair.style], {name: [] for name in VARIANTS})
    for name, redraw in VARIANTS.items():
        row[name].append(ssim(redraw(reference).clamp(0, 1), reference))

print("| style | " + " | ".join(VARIANTS) + " |")
print("| --- " * (len(VARIANTS) + 1) + "|")
for style, row in sums.items():
    print(f"| `{style}` ({len(row['blank page'])}) | " + " | ".join(f"{sum(v) / len(v):.4f}" for v in row.values()) + " |")
