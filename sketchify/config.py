"""Typed configs: the model's shape (config.json beside the weights) and the training settings (in the run).

Both load from JSON with one-line errors, and `--set key=value` overrides any field on the command line.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .errors import SketchifyError
from .files import read_regular

DEFAULT_STYLES = ("light-pencil", "bold-ink", "shaded-pencil", "portrait", "contour")
MAX_WIDTH = 4096  # bounds every width before anything is allocated: a hostile config.json cannot exhaust memory
# Bounds every loss weight and KL factor. Adam keeps each gradient's square, which a weight scales by its square:
# float32 ends at 3.4e38, so at 1e37 the first step overflows, and the state is infinite for good. At 1e6 (1e12
# squared) a gradient may still reach about 1e13 before its square overflows; useful weights are below 100.
MAX_LOSS_WEIGHT = 1e6
TRAIN_MAX_SEED = 2**32 - 1  # a training seed seeds every generator: torch, random and numpy (the smallest)

# The generator's loss is the weighted sum of these terms (sketchify.step computes each one, by this name).
LOSS_WEIGHTS = {
    "perceptual": 1.0,  # shift-tolerant LPIPS to the artist's drawing: strokes 2-3 px off the photo cost little
    "tone": 1.0,  # L1 between 4x4-pooled sketches: overall darkness and shading, blind to small offsets
    "kl": 0.001,  # beta, per latent element and scale: higher keeps sigma near 1, drowning the photo in noise
    "adv": 0.1,  # lambda: keeps the perceptual term from painting textures no artist draws (stripes, hatching)
    # the feature discriminator (frozen ST-LPIPS AlexNet features, trained heads): whether a sketch looks drawn
    "adv_features": 0.2,
    "div": 1.0,  # diversity hinge: two samples of one photo should differ where the reference draws
    # ST-LPIPS between two samples (and the perceptual term on both), compared shrunk (sample_diversity_pool). Off:
    # at 1.0, compared at full size, it bought diversity as speckle, and the mean latent drew a washed-out sketch
    # (the model card has the numbers)
    "sample_div": 0.0,
    # likeness when drawing larger than the faces it learned: a window of the photo enlarged 1.5-4x, drawn as
    # `convert` draws (t = 0), scaled back and compared with the artist's drawing of that window (perceptual + tone)
    "zoom": 0.0,
    # the mean sketch (t = 0, what `convert` draws) held to the artist's drawing as a sample is (perceptual + tone),
    # and judged by the feature discriminator: otherwise the drawing users get most is never trained directly
    "mean": 0.0,
}
PERCEPTUAL_NETS = ("alex", "vgg")
KL_SCALE_KEYS = ("2", "4", "8", "16")  # the latent strides, finest first, as kl_scales names them


class JsonConfig:
    """Shared by both configs: JSON round trip, type checks against the defaults, and --set overrides."""

    def check(self) -> list[str]:  # each subclass: the problems with its values, one line each
        return []

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict):
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise SketchifyError(f"unknown keys: {', '.join(unknown)}")
        default = cls()
        values = {}
        for key, got in d.items():
            want = getattr(default, key)
            values[key] = typed(key, got, want)
        return validated(replace(default, **values))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path):
        path = Path(path)
        try:
            text = read_regular(path)  # a pipe or device named config.json is refused, not waited on
        except SketchifyError as e:
            raise SketchifyError(f"{path}: missing" if not path.exists() else str(e)) from None
        d = parse_json(text, path)
        if not isinstance(d, dict):
            raise SketchifyError(f"{path}: expected a JSON object")
        try:
            return cls.from_dict(d)
        except SketchifyError as e:
            raise SketchifyError(f"{path}: {e}") from None


def parse_json(text: str | bytes, where) -> object:
    """json.loads with one-line errors; where names the file (or the field) in them."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SketchifyError(f"{where}: not valid JSON ({e})") from None
    except RecursionError:  # "[[[[..." 100,000 deep: Python's parser recurses once a level
        raise SketchifyError(f"{where}: not valid JSON (nested too deeply)") from None


def typed(key: str, got, want):
    """got, checked (and for JSON's numbers, converted) to the type of the default value want."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            raise SketchifyError(f"{key} should be an object of numbers, got {got!r}")
        return {**want, **{k: typed(f"{key}.{k}", v, 0.0) for k, v in got.items()}}
    if isinstance(want, tuple):
        kind, what = (int, "whole numbers") if want and isinstance(want[0], int) else (str, "names")
        if not isinstance(got, (list, tuple)) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in got):
            raise SketchifyError(f"{key} should be a list of {what}, got {got!r}")
        return tuple(got)
    if isinstance(want, float) and isinstance(got, int) and not isinstance(got, bool):
        return float(got)
    if not isinstance(got, type(want)) or (isinstance(want, int) and isinstance(got, bool) != isinstance(want, bool)):
        raise SketchifyError(f"{key} should be {type(want).__name__}, got {got!r}")
    return got


def validated(cfg):
    problems = cfg.check()
    if problems:
        raise SketchifyError(problems[0])
    return cfg


@dataclass
class ModelConfig(JsonConfig):
    """The networks' shape: all that loading a model needs."""

    styles: tuple[str, ...] = DEFAULT_STYLES
    default_style: str = "bold-ink"
    latent_channels: tuple[int, ...] = (4, 8, 16, 32)  # latent maps at 1/2, 1/4, 1/8 and 1/16 of the photo's size
    widths: tuple[int, ...] = (12, 24, 48, 96, 128)  # the generator's width at 1, 1/2, 1/4, 1/8 and 1/16 size
    deep_blocks: int = 2  # the generator's residual blocks at 1/16 size
    style_dim: int = 16
    draw_size: int = 240  # the short side of the photos it learned from: it draws best at that scale
    # the discriminators are trained beside the model, kept in the checkpoint and shipped beside the weights
    # (discriminator.safetensors), so that a run started from a model continues its adversary too
    disc_channels: int = 48
    disc_layers: int = 3
    # Training samples every latent scale at this temperature, and `sample` draws the same way by default:
    # a temperature the generator never saw draws blotches
    sample_temperature: float = 1.0

    def check(self) -> list[str]:
        return [msg for bad, msg in [
            (not self.styles or len(set(self.styles)) != len(self.styles), "styles should be distinct names"),
            (self.default_style not in self.styles, f"default_style {self.default_style!r} is not among its styles"),
            (len(self.styles) > 256, f"styles: {len(self.styles)} is more than 256"),
            # --style 2 picks the third style: a style named "2" would be ambiguous
            (any(str(s).isdigit() for s in self.styles), "style names should not be whole numbers (those pick a "
                                                         "style by its position)"),
            (len(self.latent_channels) != 4 or not all(1 <= k <= MAX_WIDTH for k in self.latent_channels),
             f"latent_channels should be 4 numbers from 1 to {MAX_WIDTH}, got {list(self.latent_channels)}"),
            (len(self.widths) != 5 or not all(1 <= w <= MAX_WIDTH for w in self.widths),
             f"widths should be 5 numbers from 1 to {MAX_WIDTH}, got {list(self.widths)}"),
            (not 0 <= self.deep_blocks <= 64, f"deep_blocks should be from 0 to 64, got {self.deep_blocks}"),
            (not (1 <= self.style_dim <= MAX_WIDTH and 1 <= self.disc_channels <= MAX_WIDTH
                  and 1 <= self.disc_layers <= 8),
             f"style_dim and disc_channels should be from 1 to {MAX_WIDTH}, disc_layers from 1 to 8"),
            (not (math.isfinite(self.sample_temperature) and 0 <= self.sample_temperature <= 100),
             f"sample_temperature should be from 0 to 100, got {self.sample_temperature}"),
            (self.draw_size < self.stride or self.draw_size > 16384,
             f"draw_size should be from {self.stride} to 16384, got {self.draw_size}"),
        ] if bad]

    @property
    def stride(self) -> int:
        """Input sides must be a multiple of this (the coarsest latent is at 1/16 size)."""
        return 16

    def style_index(self, style: str | int | None) -> int:
        """A style's position from its name or its position (a number, or a string of digits); None: the
        default. The one place a style is looked up: everything else keeps the name (style_name)."""
        if style is None:
            style = self.default_style
        if isinstance(style, int) or (isinstance(style, str) and style.isdigit()):
            i = int(style)
            if 0 <= i < len(self.styles):
                return i
        elif style in self.styles:
            return self.styles.index(style)
        raise SketchifyError(f"unknown style {style!r}; choose one of: {', '.join(self.styles)}")

    def style_name(self, style: str | int | None) -> str:
        return self.styles[self.style_index(style)]


@dataclass
class TrainConfig(JsonConfig):
    """How a model is trained: loss weights, schedule, batches, data; saved in the run folder and checkpoint."""

    loss_weights: dict[str, float] = field(default_factory=lambda: dict(LOSS_WEIGHTS))
    # the ST-LPIPS network of the perceptual term; vgg is what the LPIPS authors advise training with (alex then
    # judges), alex costs a quarter as much, which decides it on a CPU
    perceptual_net: str = "alex"
    diversity_margin: float = 0.15  # wanted mean difference of two samples where the reference draws (ink_weight)
    diversity_knee: float = 0.15  # above 0, differences count as d^2 / (d^2 + knee^2): visible ones, not faint ones
    # per-style margins that override diversity_margin: sparse faint lines have less room for variety before a
    # sample loses to a blank page
    style_diversity_margin: dict[str, float] = field(default_factory=dict)
    sample_diversity_margin: float = 0.15  # wanted ST-LPIPS between two samples of one photo (sample_div)
    # ...measured on both samples shrunk by this factor: variety in strokes and shading, not in pixel grain
    sample_diversity_pool: int = 2
    # the KL weight of each latent scale (by stride) times kl: more on the coarse ones keeps their sigma large
    # enough that samples at temperature 1 differ in hair, shading and line weight
    kl_scales: dict[str, float] = field(default_factory=lambda: {"2": 1.0, "4": 1.0, "8": 1.0, "16": 1.0})
    augment_disc: bool = True  # DiffAugment (translation, cut-out) on what the feature discriminator sees
    image_size: int = 128  # training crop
    load_size: int = 240  # short side before the random crop: about the native size of the face photos
    batch_size: int = 8
    lr: float = 2e-4
    backbone_lr: float = 0.25  # the pretrained front end learns at this fraction of lr: it starts out useful
    pretrained: bool = True  # start the encoder from ImageNet EfficientNet-Lite0 weights (a new run only)
    epochs: int = 30
    val_fraction: float = 0.1
    seed: int = 0

    def check(self) -> list[str]:
        numbers = [self.diversity_margin, self.diversity_knee, self.sample_diversity_margin,
                   *self.loss_weights.values(),
                   *self.style_diversity_margin.values(), *self.kl_scales.values()]
        unknown = sorted(set(self.loss_weights) - set(LOSS_WEIGHTS))
        return [msg for bad, msg in [
            (bool(unknown), f"loss_weights: unknown loss {unknown[0] if unknown else ''!r}; "
                            f"the losses are {', '.join(LOSS_WEIGHTS)}"),
            (set(self.kl_scales) != set(KL_SCALE_KEYS),
             f"kl_scales should give a factor for each of the strides {', '.join(KL_SCALE_KEYS)}"),
            (not all(math.isfinite(v) and 0 <= v <= MAX_LOSS_WEIGHT for v in numbers),
             f"loss weights, kl_scales, diversity margins and the knee should be numbers from 0 to "
             f"{MAX_LOSS_WEIGHT:,.0f}"),
            (self.perceptual_net not in PERCEPTUAL_NETS,
             f"perceptual_net should be one of {', '.join(PERCEPTUAL_NETS)}, got {self.perceptual_net!r}"),
            (self.image_size < 16 or self.image_size % 16 or self.image_size > 4096,
             f"image_size should be a multiple of 16 from 16 to 4096, got {self.image_size}"),
            (self.load_size > 16384, f"load_size should be at most 16384, got {self.load_size}"),
            (self.load_size < self.image_size,
             f"load_size ({self.load_size}) should be at least image_size ({self.image_size})"),
            (min(self.batch_size, self.epochs) < 1 or self.batch_size > 4096,
             "batch_size (up to 4096) and epochs should be at least 1"),
            (self.sample_diversity_pool not in (1, 2, 4),
             f"sample_diversity_pool should be 1, 2 or 4, got {self.sample_diversity_pool}"),
            (self.loss_weights.get("sample_div", 0) > 0 and self.image_size // self.sample_diversity_pool < 32,
             f"sample_diversity_pool {self.sample_diversity_pool} shrinks the {self.image_size} px training crop "
             f"below the 32 px the perceptual network needs; lower it or raise image_size"),
            (not (0 <= self.backbone_lr <= 1), f"backbone_lr should be in [0, 1], got {self.backbone_lr}"),
            (not (0 < self.lr < 1), f"lr should be between 0 and 1, got {self.lr}"),
            (not (0 <= self.val_fraction < 1), f"val_fraction should be in [0, 1), got {self.val_fraction}"),
            (not 0 <= self.seed <= TRAIN_MAX_SEED, f"seed should be from 0 to {TRAIN_MAX_SEED}, got {self.seed}"),
        ] if bad]

    def kl_factors(self) -> list[float]:
        """The KL factor of each latent scale, finest first."""
        return [self.kl_scales[k] for k in KL_SCALE_KEYS]

    def diversity_margins(self, styles: tuple[str, ...]) -> list[float]:
        """The diversity margin of each style, in style-index order."""
        unknown = sorted(set(self.style_diversity_margin) - set(styles))
        if unknown:
            raise SketchifyError(f"style_diversity_margin names {unknown[0]!r}, not one of the model's styles")
        return [float(self.style_diversity_margin.get(s, self.diversity_margin)) for s in styles]


# --set key=value


def parse_value(text: str, want):
    """A command-line string as the type of the default value want."""
    if isinstance(want, bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError("expected true or false")
    if isinstance(want, tuple):
        kind = int if want and isinstance(want[0], int) else str
        return tuple(kind(v.strip()) for v in text.split(",") if v.strip())
    return type(want)(text)


def apply_settings(model: ModelConfig, train: TrainConfig, settings: list[str]) -> tuple[ModelConfig, TrainConfig]:
    """Apply `key=value` (or `table.name=value` for loss_weights and style_diversity_margin) to either config."""
    configs = {"model": model, "train": train}
    for item in settings:
        key, eq, text = item.partition("=")
        name, _, sub = key.strip().partition(".")
        owner = next((k for k, c in configs.items() if name in {f.name for f in fields(c)}), None)
        if not eq or owner is None:
            known = [f.name for c in configs.values() for f in fields(c)]
            raise SketchifyError(f"--set {item!r}: expected KEY=VALUE with KEY one of: {', '.join(known)}")
        cfg = configs[owner]
        current = getattr(cfg, name)
        if isinstance(current, dict) != bool(sub):
            form = f"{name}.NAME=VALUE" if isinstance(current, dict) else f"{name}=VALUE"
            raise SketchifyError(f"--set {item!r}: write it as {form}")
        try:
            value = parse_value(text.strip(), 0.0 if sub else current)
        except ValueError:
            kind = type(0.0 if sub else current).__name__
            raise SketchifyError(f"--set {item!r}: {text!r} is not a valid {kind}") from None
        configs[owner] = replace(cfg, **{name: {**current, sub: value} if sub else value})
    try:  # checked once all are set: styles and default_style may change together
        return validated(configs["model"]), validated(configs["train"])
    except SketchifyError as e:
        raise SketchifyError(f"--set {' '.join(settings)}: {e}") from None


def changes(old, new) -> list[str]:
    """The fields that differ between two configs of one kind, as `key: old -> new`."""
    out = []
    for f in fields(old):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if isinstance(a, dict):
            out += [f"{f.name}.{k}: {a.get(k)} -> {b.get(k)}"
                    for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f"{f.name}: {a} -> {b}")
    return out
