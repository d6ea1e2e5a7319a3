"""Measures of a set of sketches: realism (KID) and, for scenes, how well dark strokes follow human contours."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

# KID


def kid(a: torch.Tensor, b: torch.Tensor, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> float:
    """Kernel inception distance (Binkowski et al. 2018) between feature sets (N, D) and (M, D): the unbiased MMD^2
    with the cubic kernel (x.y / D + 1)^3, averaged over random subsets of min(N, M, subset_size) rows each, as
    clean-fid computes it. Multiply by 1000 to report. Near 0 (either sign) for two samples of one distribution."""
    a, b = a.double(), b.double()
    d = a.shape[1]
    m = min(a.shape[0], b.shape[0], subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 2 sketches per set (got {a.shape[0]} and {b.shape[0]})")
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(subsets):
        x = a[torch.randperm(a.shape[0], generator=g)[:m]]
        y = b[torch.randperm(b.shape[0], generator=g)[:m]]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        total += float(within - 2 * kxy.mean())
    return total / subsets


def ssim(a: torch.Tensor, b: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """Mean structural similarity (Wang et al. 2004), 11x11 Gaussian window, images in [0, 1]; differentiable."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x = torch.arange(11, dtype=a.dtype, device=a.device) - 5
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :])[None, None]
    blur = lambda t: F.conv2d(t, window)  # valid region only, as in the reference code
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean()


def realism_features(sketches: list[torch.Tensor], feature_fn: Callable[[torch.Tensor], torch.Tensor], *,
                     size: int = 224, batch: int = 16) -> torch.Tensor:
    """Pooled features (N, D) of sketches, each (1, 1 or 3, H, W) in [0, 1] at any size: greyscale repeated to
    RGB and resized to size x size (the network's training size), then feature_fn (an RGB batch in [0, 1] ->
    (N, D) or (N, D, h, w), which is averaged over space)."""
    out = []
    for i in range(0, len(sketches), batch):
        x = torch.cat([F.interpolate(s.expand(-1, 3, -1, -1).float(), size=(size, size), mode="bilinear",
                                     antialias=True, align_corners=False) for s in sketches[i:i + batch]])
        with torch.no_grad():
            f = feature_fn(x.clamp(0, 1))
        out.append(f.mean(dim=(2, 3)) if f.dim() == 4 else f)
    return torch.cat(out)


# contour F

LEVELS = 256  # darkness thresholds: every 8-bit grey level


def disc_offsets(radius: float) -> list[tuple[int, int]]:
    r = int(radius)
    return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= radius * radius]


def disc_max(x: torch.Tensor, radius: float) -> torch.Tensor:
    """Each pixel of (H, W) -> the largest value within `radius` (Euclidean, pixel centres): a grey dilation by a
    disc. For a 0/1 mask that is exactly "within radius of a set pixel"."""
    r = int(radius)
    h, w = x.shape
    padded = F.pad(x[None, None], (r, r, r, r))[0, 0]  # values are >= 0: zero is "nothing here"
    out = x.clone()
    for dy, dx in disc_offsets(radius):
        out = torch.maximum(out, padded[r + dy:r + dy + h, r + dx:r + dx + w])
    return out


def contour_counts(darkness: torch.Tensor, boundary: torch.Tensor, *, tolerance: float = 0.0075) -> torch.Tensor:
    """For one image and every threshold t = 0..255 on its darkness (H, W, uint8 levels, 255 = black), with
    strokes = darkness >= t: (4, 256) counts of [strokes near a boundary, strokes, boundary pixels near a stroke,
    boundary pixels]; "near" is within tolerance x the image diagonal. Sum over images, then contour_f."""
    h, w = darkness.shape
    radius = tolerance * (h * h + w * w) ** 0.5
    level = darkness.long().flatten()
    near_boundary = disc_max(boundary.float(), radius).flatten() > 0
    nearest_stroke = disc_max(darkness.float(), radius).long().flatten()  # the darkest stroke within reach
    on_boundary = boundary.flatten() > 0

    def at_least(levels: torch.Tensor) -> torch.Tensor:  # how many pixels have level >= t, for every t
        return levels.bincount(minlength=LEVELS).flip(0).cumsum(0).flip(0)

    return torch.stack([at_least(level[near_boundary]), at_least(level),
                        at_least(nearest_stroke[on_boundary]), on_boundary.sum().expand(LEVELS)]).double()


def contour_f(counts: torch.Tensor) -> dict[str, float]:
    """Summed contour_counts of a set -> F, precision and recall at the best single threshold (ODS)."""
    matched, strokes, recalled, boundary = counts[:, 1:]  # t = 0 would make every pixel a stroke
    precision = matched / strokes.clamp_min(1)
    recall = recalled / boundary.clamp_min(1)
    f = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
    best = int(f.argmax())
    return {"f": float(f[best]), "precision": float(precision[best]), "recall": float(recall[best]),
            "threshold": (best + 1) / 255}


def gradient_darkness(grey: torch.Tensor) -> torch.Tensor:
    """The plain gradient-magnitude baseline for contour F: Sobel magnitude of (H, W) grey, scaled to [0, 1] per
    image (the darkest stroke where the photo's edge is strongest)."""
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=grey.dtype)
    k = torch.stack([kx, kx.T])[:, None]
    g = F.conv2d(F.pad(grey[None, None], (1, 1, 1, 1), mode="replicate"), k)[0]
    mag = g.pow(2).sum(0).sqrt()
    return mag / mag.max().clamp_min(1e-8)


def realism_network() -> Callable[[torch.Tensor], torch.Tensor]:
    """ImageNet-trained EfficientNet-Lite0's 1280 pooled features (an RGB batch in [0, 1] -> (N, 1280)), the
    network KID compares sketches with here. Its own input scaling, (x - 127) / 128, is what it was trained with."""
    from .efficientnet import EfficientNetLite0, pretrained_state

    net = EfficientNetLite0(folded=True)
    net.load_state_dict(pretrained_state(folded=True), strict=True)
    return net.eval().requires_grad_(False).pooled
