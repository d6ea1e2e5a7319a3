"""Scoring sketches against reference drawings (ST-LPIPS, KID, MAE, SSIM, sample diversity) and scenes against
human contours (contour F; BSDS500's ODS/OIS/AP), each beside the baselines: a blank page, the pencil filter, the
gradient magnitude."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from PIL import Image

from . import metrics
from .config import ModelConfig, TrainConfig
from .data import Pair, find_contours, find_pairs, readable, split
from .errors import SketchifyError
from .files import atomic_write, read_regular
from .images import load_photo, pencil_filter
from .metrics import contour_counts, contour_f, gradient_darkness, kid, realism_features
from .settings import DrawSettings
from .tensors import fit, grey

SPLITS = ("all", "val", "train")


@dataclass
class Chosen:
    """The pairs and scenes `eval` scores, and what it left out."""
    pairs: list[Pair]
    scenes: list[Pair]
    unmatched: list[Path]  # photos without a reference sketch
    unreadable: list[str]  # pairs, one line each
    unreadable_scenes: list[str]

    def left_out(self) -> list[str]:
        """One line for the photos without a reference, one for each unreadable pair or scene."""
        lines = []
        if self.unmatched:
            more = ", ..." if len(self.unmatched) > 5 else ""
            lines.append(f"{len(self.unmatched)} photos without a reference sketch: "
                         f"{', '.join(map(str, self.unmatched[:5]))}{more}")
        return lines + self.unreadable + self.unreadable_scenes

    def titles(self, which: str) -> tuple[str, str]:
        """What the tables of pairs and of scenes scored, in words."""
        left_out = f"{len(self.unmatched)} photos without a reference, {len(self.unreadable)} unreadable, left out"
        return f"{len(self.pairs)} {which} pairs ({left_out})", f"{len(self.scenes)} {which} scenes"


def choose(data: list[Path], contours: tuple[Path, Path] | None, config: ModelConfig, *, which: str = "all",
           default_style: str | None = None, limit: int | None = None) -> Chosen:
    """The readable pairs of each folder and the scenes with a boundary map, cut to the held-out pairs (val) or the
    training pairs by the split training used, at most limit of each style per folder (a folder sorted by style
    is still scored in every style); an empty set is an error."""
    def pick(found: list[Pair]) -> list[Pair]:
        train_pairs, val_pairs = split(found, TrainConfig.val_fraction)
        return per_style({"val": val_pairs, "train": train_pairs, "all": found}[which], limit)

    pairs, unmatched = [], []
    for folder in data:
        pairs += pick(find_pairs(folder, config, default_style, unmatched=unmatched))
    scenes = pick(find_contours(*contours, config)) if contours else []
    pairs, unreadable = readable(pairs)
    scenes, unreadable_scenes = readable(scenes)
    if data and not pairs:
        raise SketchifyError(f"no {which} pairs in {', '.join(map(str, data))}")
    if contours and not scenes:
        raise SketchifyError(f"no {which} photos with a boundary map in {contours[0]} and {contours[1]}")
    return Chosen(pairs, scenes, unmatched, unreadable, unreadable_scenes)


def per_style(pairs: list[Pair], limit: int | None) -> list[Pair]:
    """The first limit pairs of each style, in their order."""
    if limit is None:
        return pairs
    taken: dict[int, int] = {}
    kept = []
    for pair in pairs:
        if taken.get(pair.style, 0) < limit:
            taken[pair.style] = taken.get(pair.style, 0) + 1
            kept.append(pair)
    return kept


# the report file


def check_report_path(path: Path) -> None:
    """--json FILE is checked before any scoring: a new file in an existing folder, or a regular file that holds
    JSON (an earlier report). Anything else, a photo, a folder, a device, is never written over."""
    if not path.exists():
        if not path.absolute().parent.is_dir():
            raise SketchifyError(f"--json {path}: its folder does not exist")
        return
    if path.is_dir():
        raise SketchifyError(f"--json {path}: is a folder")
    try:
        json.loads(read_regular(path))
    except (SketchifyError, ValueError):
        raise SketchifyError(f"--json {path}: exists and is not a JSON file; not replaced (choose a new name)") \
            from None


def write_report(path: Path, results: dict) -> None:
    """The scores as JSON, written whole or not at all (the tables are printed already)."""
    check_report_path(path)  # again: scoring takes a while, and the file may have changed meanwhile
    text = json.dumps(results, indent=2) + "\n"
    try:
        atomic_write(path, lambda tmp: tmp.write_text(text))
    except OSError as e:
        raise SketchifyError(f"--json {path}: cannot write ({e.strerror or e}); the scores are printed above") from None


def score(sketcher, chosen: Chosen, *, n_samples: int, sampling: DrawSettings, groundtruth: Path | None = None,
          progress=lambda: None) -> dict:
    """evaluate() on the chosen pairs and evaluate_contours() on the scenes, as one result."""
    results = {}
    if chosen.pairs:
        results = evaluate(sketcher, chosen.pairs, judges=Judges.load(), n_samples=n_samples, sampling=sampling,
                           progress=progress)
    if chosen.scenes:
        results["contours"] = evaluate_contours(sketcher, chosen.scenes, groundtruth=groundtruth, progress=progress)
    return results


def mae(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean())


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(metrics.ssim(a, b))


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


@dataclass
class Judges:
    """The pretrained networks behind the measures, loaded once per run (they need the `train` extra)."""

    stlpips: torch.nn.Module  # perceptual.STLPIPS("alex")
    realism: Callable[[torch.Tensor], torch.Tensor]  # pooled features for KID

    @classmethod
    def load(cls) -> Judges:
        from .metrics import realism_network
        from .perceptual import STLPIPS

        return cls(STLPIPS("alex"), realism_network())


BASELINES = ("blank page", "pencil filter")
METHODS = ("model t=0", "model samples", *BASELINES)
# each set is compared with the references of its style; the samples' set is each photo's first sample
KID_SETS = ("model t=0", *BASELINES, "model samples")


def evaluate(sketcher, pairs: list[Pair], *, judges: Judges, n_samples: int = 4, sampling: DrawSettings | None = None,
             progress=lambda: None) -> dict:
    """Per style: {method: {"stlpips", "mae", "ssim", "kid", "n"}}, the samples also with "worst_stlpips" and
    "diversity" (mean ST-LPIPS between two samples of one photo); every method on the same pairs. KID x 1000.
    sampling: the seed and temperature of the samples (default: seed 0 at the model's sample_temperature)."""
    sampling = sampling or sketcher.settings(seed=0, for_samples=True)
    table: dict[str, dict[str, Scores]] = {}
    features: dict[str, dict[str, list[torch.Tensor]]] = {}
    for pair in pairs:
        style = sketcher.config.styles[pair.style]
        row = table.setdefault(style, {m: Scores() for m in METHODS})
        photo, reference = load_photo(pair.photo), grey(load_photo(pair.sketch))
        size = (reference.shape[-1], reference.shape[-2])
        drawn = [sketcher.sketch(photo, replace(sketcher.defaults, style=style)), Image.new("L", size, 255),
                 pencil_filter(photo), *sketcher.samples(photo, n_samples, replace(sampling, style=style))]
        sketches = torch.cat([grey(fit(img, size)) for img in drawn])
        distances, diversity = perceptual_scores(judges.stlpips, reference, sketches, first_sample=3)
        scores = [{"stlpips": float(d), "mae": mae(s, reference), "ssim": ssim(s[None], reference)}
                  for d, s in zip(distances, sketches)]
        for method, s in zip(("model t=0", *BASELINES), scores):
            row[method].add(**s)
        samples = scores[3:]
        row["model samples"].add(**{k: sum(s[k] for s in samples) / n_samples for k in samples[0]},
                                 worst_stlpips=max(s["stlpips"] for s in samples), diversity=diversity)
        pooled = realism_features([reference, *sketches[:4, None]], judges.realism)
        for name, f in zip(("reference", *KID_SETS), pooled):
            features.setdefault(style, {}).setdefault(name, []).append(f)
        progress()
    result = {style: {m: {**s.mean(), "n": s.count} for m, s in row.items()} for style, row in table.items()}
    for style, sets in features.items():
        if len(sets["reference"]) >= 2:  # KID compares sets: one sketch has no spread to compare
            for name in KID_SETS:
                result[style][name]["kid"] = 1000 * kid(torch.stack(sets[name]), torch.stack(sets["reference"]))
    return result


def perceptual_scores(judge, reference: torch.Tensor, sketches: torch.Tensor, *,
                      first_sample: int) -> tuple[torch.Tensor, float]:
    """ST-LPIPS of each sketch (K, 1, H, W) to the reference (1, 1, H, W), and the mean ST-LPIPS between every two
    sketches from first_sample on (the model's samples of one photo). One pass of the network per image."""
    with torch.inference_mode():
        ref = judge.features(reference)
        feats = judge.features(sketches)
        distances = judge.distance([r.expand_as(f) for r, f in zip(ref, feats)], feats)
        i, j = zip(*itertools.combinations(range(first_sample, len(sketches)), 2))
        diversity = judge.distance([f[list(i)] for f in feats], [f[list(j)] for f in feats]).mean()
    return distances, float(diversity)


# scenes

CONTOUR_METHODS = ("model t=0", "pencil filter", "gradient magnitude")


def read_groundtruth(folder: Path, scenes: list[Pair]) -> dict[str, list]:
    """Every scene's BSDS500 annotators (NAME.mat), read and checked against its boundary map's size before anything
    is drawn: a missing, broken or mismatched file should not cost a run."""
    from .bsds import load_groundtruth

    missing = [p.name for p in scenes if not (folder / f"{p.name}.mat").is_file()]
    if missing:
        raise SketchifyError(f"{folder}: no ground truth for {len(missing)} scenes ({', '.join(missing[:5])}"
                             f"{', ...' if len(missing) > 5 else ''}); expected NAME.mat from BSDS500")
    truth = {}
    for pair in scenes:
        annotators = load_groundtruth(folder / f"{pair.name}.mat")
        with Image.open(pair.sketch) as boundary:
            size = boundary.size
        if not annotators or any(a.shape != size[::-1] for a in annotators):
            raise SketchifyError(f"{folder / pair.name}.mat: its boundaries are "
                                 f"{annotators[0].shape[::-1] if annotators else 'empty'}, the boundary map "
                                 f"{pair.sketch} is {size}")
        truth[pair.name] = annotators
    return truth


def evaluate_contours(sketcher, scenes: list[Pair], *, groundtruth: Path | None = None,
                      progress=lambda: None) -> dict:
    """Contour F (best threshold over the set) of the model's dark strokes, in each scene's style (data.find_contours:
    the contour style), and of the baselines' against the boundary maps people drew, where a pixel is a boundary if
    any annotator drew it there (the map is > 0). With groundtruth (a folder of BSDS500's NAME.mat), also the
    benchmark's ODS, OIS and AP against every annotator apart (sketchify.bsds), darkness as edge strength."""
    from .bsds import boundary_counts, bsds_scores

    truth = read_groundtruth(groundtruth, scenes) if groundtruth is not None else {}
    counts = {m: 0 for m in CONTOUR_METHODS}
    benchmark = {m: [] for m in CONTOUR_METHODS}
    for pair in scenes:
        photo = load_photo(pair.photo)
        boundary = grey(load_photo(pair.sketch))[0, 0] > 0
        size = (boundary.shape[1], boundary.shape[0])
        drawn = sketcher.sketch(photo, replace(sketcher.defaults, style=sketcher.config.styles[pair.style]))
        darkness = {"model t=0": 1 - grey(fit(drawn, size))[0, 0],
                    "pencil filter": 1 - grey(fit(pencil_filter(photo), size))[0, 0],
                    "gradient magnitude": gradient_darkness(grey(fit(photo, size))[0, 0])}
        annotators = truth.get(pair.name, [])
        for method, d in darkness.items():
            counts[method] = counts[method] + contour_counts((d * 255).round(), boundary)
            if annotators:
                benchmark[method].append(boundary_counts(d.double().numpy(), annotators))
        progress()
    return {m: {**contour_f(c), **(bsds_scores(benchmark[m]) if benchmark[m] else {}), "n": len(scenes)}
            for m, c in counts.items()}


# printing

def score_tables(results: dict, pairs: str, scenes: str) -> list:
    """Rich tables of evaluate's (per style) and evaluate_contours' ("contours") results, titled by what was scored."""
    from rich.table import Table

    fmt = lambda d, k, p=4: f"{d[k]:.{p}f}" if k in d else ""
    tables = []
    styles = {s: m for s, m in results.items() if s != "contours"}
    if styles:
        table = Table(title=f"{pairs}; ST-LPIPS (alex), KID (x1000) and MAE lower is better, SSIM higher")
        for col in ("style", "n", "method", "ST-LPIPS", "worst", "diversity", "KID", "MAE", "SSIM"):
            table.add_column(col, justify="left" if col in ("style", "method") else "right", no_wrap=True)
        for style, methods in styles.items():
            for i, (method, m) in enumerate(methods.items()):
                table.add_row(style if i == 0 else "", str(m["n"]) if i == 0 else "", method, fmt(m, "stlpips"),
                              fmt(m, "worst_stlpips"), fmt(m, "diversity"), fmt(m, "kid", 1), fmt(m, "mae"),
                              fmt(m, "ssim"))
        tables.append(table)
    if "contours" in results:
        benchmark = any("ods" in m for m in results["contours"].values())
        table = Table(title=f"{scenes}; contour F of the dark strokes at the best threshold"
                      + ("; BSDS500 ODS, OIS, AP" if benchmark else "") + ", higher is better")
        for col in ("method", "F", "precision", "recall", "threshold", *(("ODS", "OIS", "AP") if benchmark else ())):
            table.add_column(col, justify="left" if col == "method" else "right", no_wrap=True)
        for method, m in results["contours"].items():
            table.add_row(method, fmt(m, "f"), fmt(m, "precision"), fmt(m, "recall"), fmt(m, "threshold", 2),
                          *((fmt(m, "ods"), fmt(m, "ois"), fmt(m, "ap")) if benchmark else ()))
        tables.append(table)
    return tables
