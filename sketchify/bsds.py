"""The BSDS500 boundary benchmark (Martin et al. 2004, Arbelaez et al. 2011), as edge detection papers report it.

An edge map (H, W) in [0, 1] is thinned to one-pixel ridges by non-maximum suppression (Dollar's edgesNms, as HED
and structured edges run before the benchmark), then at each of 99 thresholds cut, thinned again (MATLAB's
bwmorph 'thin'), and matched one-to-one against each annotator's boundaries within 0.0075 x the image diagonal.
A detected pixel is correct if it matches some annotator's boundary; recall counts every annotator's boundary
pixels. ODS is the F at the best threshold over the set, OIS at each image's best, AP the area under the
precision/recall curve. Needs numpy and scipy (the `train` extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import SketchifyError

THRESHOLDS = np.linspace(0.01, 0.99, 99)  # the benchmark's nthresh = 99
MAX_DIST = 0.0075  # x the image diagonal


# ground truth


def load_groundtruth(path: Path) -> list[np.ndarray]:
    """Each annotator's boundaries (H, W, bool) from BSDS500's NAME.mat (groundTruth{i}.Boundaries)."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        annotators = loadmat(str(path))["groundTruth"][0]
        return [a["Boundaries"][0, 0].astype(bool) for a in annotators]
    except (OSError, ValueError, KeyError, IndexError, MatReadError) as e:
        raise SketchifyError(f"{path}: not a BSDS500 ground-truth file ({e})") from None


# edge maps to one-pixel ridges


def triangle_blur(x: np.ndarray, radius: int) -> np.ndarray:
    """Dollar's convTri: a separable triangle filter [1 .. radius+1 .. 1] / (radius+1)^2, mirrored at the border."""
    from scipy.ndimage import convolve1d

    kernel = np.concatenate([np.arange(1, radius + 2), np.arange(radius, 0, -1)]) / (radius + 1) ** 2
    return convolve1d(convolve1d(x, kernel, axis=0, mode="reflect"), kernel, axis=1, mode="reflect")


def edge_normal(edges: np.ndarray) -> np.ndarray:
    """Angle in [0, pi) of the direction across each edge, from the second derivatives of the heavily smoothed map
    (edgesNms' orientation: a ridge's curvature is largest across it). 0 = along the columns (x)."""
    dy, dx = np.gradient(triangle_blur(edges, 4))
    dxx = np.gradient(dx, axis=1)
    dyy, dxy = np.gradient(dy)  # d/drow, d/dcol
    dxx[dxx == 0] = 1e-5  # a flat patch: no division by zero, any angle will do
    return np.mod(np.arctan(dyy * np.sign(-dxy) / dxx), np.pi)


def bilinear(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """x sampled at fractional (rows, cols), clamped just inside the image as edgesNms clamps."""
    h, w = x.shape
    rows, cols = np.clip(rows, 0, h - 1.001), np.clip(cols, 0, w - 1.001)
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = rows - r0, cols - c0
    return ((1 - fr) * ((1 - fc) * x[r0, c0] + fc * x[r0, c0 + 1])
            + fr * ((1 - fc) * x[r0 + 1, c0] + fc * x[r0 + 1, c0 + 1]))


def non_maximum_suppression(edges: np.ndarray, *, reach: int = 1, border: int = 5, margin: float = 1.01) -> np.ndarray:
    """edgesNms(E, O, r=1, s=5, m=1.01): the lightly smoothed map, zero where a neighbour `reach` pixels across the
    edge is stronger than margin x this pixel, faded to 0 over `border` pixels at the image's edges (where the
    orientation is unreliable)."""
    smooth = triangle_blur(edges.astype(np.float64), 1)
    angle = edge_normal(smooth)
    rows, cols = np.indices(smooth.shape, dtype=np.float64)
    out = smooth.copy()
    for step in (d for d in range(-reach, reach + 1) if d):
        across = bilinear(smooth, rows + step * np.sin(angle), cols + step * np.cos(angle))
        out[smooth * margin < across] = 0
    h, w = out.shape
    for axis, size in ((0, h), (1, w)):
        s = min(border, size // 2)
        ramp = np.arange(s) / s  # 0 on the outermost pixel
        shape = (-1, 1) if axis == 0 else (1, -1)
        out[tuple(slice(0, s) if a == axis else slice(None) for a in (0, 1))] *= ramp.reshape(shape)
        out[tuple(slice(size - s, size) if a == axis else slice(None) for a in (0, 1))] *= ramp[::-1].reshape(shape)
    return out


def deletable(x: list[np.ndarray], first: bool) -> np.ndarray:
    """Guo and Hall's test (as MATLAB documents bwmorph 'thin'), on the 8 neighbours x1..x8 of a set pixel from
    east counter-clockwise (E, NE, N, NW, W, SW, S, SE): may this subiteration delete it?"""
    x1, x2, x3, x4, x5, x6, x7, x8 = x
    crossings = sum((~x[2 * k]) & (x[2 * k + 1] | x[(2 * k + 2) % 8]) for k in range(4))
    n1 = sum(x[2 * k] | x[2 * k + 1] for k in range(4))
    n2 = sum(x[2 * k + 1] | x[(2 * k + 2) % 8] for k in range(4))
    smaller = np.minimum(n1, n2)
    simple = (crossings == 1) & (smaller >= 2) & (smaller <= 3)  # G1, G2: removing it neither splits nor ends a line
    if first:  # G3: a south or east boundary pixel, or a north-west corner one
        return simple & ~((x2 | x3 | ~x8) & x1)
    return simple & ~((x6 | x7 | ~x4) & x5)  # G3': the opposite sides


# each pixel's neighbourhood as one byte, bit k-1 for x_k, then the test looked up per byte
NEIGHBOUR_BITS = np.array([[8, 4, 2], [16, 0, 1], [32, 64, 128]], dtype=np.uint8)
_CODES = np.arange(256)
DELETABLE = [deletable([(_CODES >> b & 1).astype(bool) for b in range(8)], first) for first in (True, False)]


def thin(mask: np.ndarray) -> np.ndarray:
    """MATLAB's bwmorph(mask, 'thin', inf): Guo and Hall's two-subiteration parallel thinning, to 8-connected
    one-pixel lines that keep the shape's connectivity, repeated until nothing changes."""
    from scipy.ndimage import correlate

    mask = mask.astype(np.uint8)
    while True:
        before = int(mask.sum())
        for table in DELETABLE:
            code = correlate(mask, NEIGHBOUR_BITS, mode="constant")
            mask[table[code] & (mask > 0)] = 0
        if int(mask.sum()) == before:
            return mask.astype(bool)


# one-to-one matching


def disc(radius: float) -> np.ndarray:
    """(K, 2) row and column offsets within radius of a pixel, itself included."""
    r = int(radius)
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    inside = dy * dy + dx * dx <= radius * radius
    return np.stack([dy[inside], dx[inside]], 1)


def candidate_pairs(points: np.ndarray, truth: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) where points[i] (K, 2 rows and columns) lies within radius of the j-th true pixel (numbered in
    row-major order)."""
    h, w = truth.shape
    truth_index = np.full(truth.shape, -1)
    truth_index[truth] = np.arange(int(truth.sum()))
    ids, js = [], []
    for dy, dx in disc(radius):
        r, c = points[:, 0] + dy, points[:, 1] + dx
        inside = np.flatnonzero((r >= 0) & (r < h) & (c >= 0) & (c < w))
        j = truth_index[r[inside], c[inside]]
        ids.append(inside[j >= 0])
        js.append(j[j >= 0])
    return np.concatenate(ids), np.concatenate(js)


def largest_matching(i: np.ndarray, j: np.ndarray, n_left: int) -> np.ndarray:
    """Which of n_left left nodes a largest one-to-one matching over the edges (i, j) uses: a unit-capacity
    maximum flow, by Dinic's algorithm. Not scipy's maximum_bipartite_matching: its Hopcroft-Karp takes
    exponential time on ladder-like graphs (scipy issue 26147), which two parallel lines near a boundary make
    (46 s for one 1,900-pixel matching on a BSDS scene, 5 ms this way)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_flow

    matched = np.zeros(n_left, bool)
    if len(i) == 0:
        return matched
    left, i = np.unique(i, return_inverse=True)  # only nodes with an edge take part
    right, j = np.unique(j, return_inverse=True)
    n, m = len(left), len(right)
    sink = n + m + 1  # node 0 is the source, 1..n the left nodes, n+1..n+m the right ones
    rows = np.concatenate([np.zeros(n, int), 1 + i, 1 + n + np.arange(m)])
    cols = np.concatenate([1 + np.arange(n), 1 + n + j, np.full(m, sink)])
    graph = csr_matrix((np.ones(len(rows), np.int32), (rows, cols)), shape=(sink + 1, sink + 1))
    flow = maximum_flow(graph, 0, sink, method="dinic").flow
    matched[left] = flow[0, 1:n + 1].toarray()[0] > 0
    return matched


# counts and scores


def boundary_counts(edges: np.ndarray, annotators: list[np.ndarray], *,
                    thresholds: np.ndarray = THRESHOLDS, suppress: bool = True) -> np.ndarray:
    """For one image's edge map (H, W) in [0, 1] and its annotators' boundaries: (4, T) counts at each threshold
    of [true pixels matched, true pixels, detected pixels matched to some annotator, detected pixels], the true
    ones summed over annotators. Sum them over a set for bsds_scores's ODS; keep them apart for its OIS."""
    h, w = edges.shape
    radius = MAX_DIST * np.hypot(h, w)
    strength = non_maximum_suppression(edges) if suppress else edges
    # thinning only removes pixels, so every threshold's pixels are among the lowest's: find their pairs once
    candidates = np.argwhere(strength >= thresholds[0])
    pairs = [candidate_pairs(candidates, truth, radius) for truth in annotators]
    counts = np.zeros((4, len(thresholds)))
    counts[1] = sum(int(truth.sum()) for truth in annotators)
    for k, t in enumerate(thresholds):
        detected = thin(strength >= t)[candidates[:, 0], candidates[:, 1]]  # per candidate
        if not detected.any():  # higher thresholds find nothing either: nothing more to count
            break
        correct = np.zeros(len(candidates), bool)
        for i, j in pairs:
            keep = detected[i]
            matched = largest_matching(i[keep], j[keep], len(candidates))
            correct |= matched
            counts[0, k] += matched.sum()
        counts[2:, k] = correct.sum(), detected.sum()
    return counts


def precision_recall_f(counts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Precision, recall and F of (4, ...) counts; 0 where there is nothing to divide by."""
    found, truth, correct, detected = counts
    recall = found / np.maximum(truth, 1)
    precision = correct / np.maximum(detected, 1)
    f = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return precision, recall, f


def best_interpolated(thresholds: np.ndarray, precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """The benchmark's maxF: the best F along straight lines between neighbouring thresholds' (P, R), 100 steps
    each, so that ODS does not depend on where the 99 thresholds happen to fall."""
    a = np.linspace(0, 1, 100)[:, None]
    t = thresholds[:-1] * (1 - a) + thresholds[1:] * a
    p = precision[:-1] * (1 - a) + precision[1:] * a
    r = recall[:-1] * (1 - a) + recall[1:] * a
    f = 2 * p * r / np.maximum(p + r, 1e-12)
    best = np.unravel_index(np.argmax(f), f.shape)
    return {"ods": float(f[best]), "ods_precision": float(p[best]), "ods_recall": float(r[best]),
            "ods_threshold": float(t[best])}


def area_under_pr(precision: np.ndarray, recall: np.ndarray) -> float:
    """The benchmark's AP (Area_PR): precision interpolated at recall 0, 0.01, .. 1, 0 outside the curve."""
    r, first = np.unique(recall, return_index=True)
    if len(r) < 2:
        return 0.0
    return float(np.interp(np.linspace(0, 1, 101), r, precision[first], left=0, right=0).sum() * 0.01)


def bsds_scores(per_image: list[np.ndarray], thresholds: np.ndarray = THRESHOLDS) -> dict[str, float]:
    """ODS (with its precision, recall, threshold), OIS and AP of a set from each image's boundary_counts."""
    total = sum(per_image)
    precision, recall, _ = precision_recall_f(total)
    at_best = sum(c[:, int(np.argmax(precision_recall_f(c)[2]))] for c in per_image)  # each image its own threshold
    return {**best_interpolated(thresholds, precision, recall), "ois": float(precision_recall_f(at_best)[2]),
            "ap": area_under_pr(precision, recall)}
