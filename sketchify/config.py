"""Typed configs: the model's shape (config.json beside the weights) and the training settings (in the run).

Both load from JSON with one-line errors, and `--set key=value` overrides any field on the command line.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .errors import SketchifyError

DEFAULT_STYLES = ("light-pencil", "bold-ink", "shaded-pencil", "portrait")

# The generator's loss is the weighted sum of these terms (sketchify.step computes each one, by this name).
LOSS_WEIGHTS = {
    "l1": 1.0,
    "ssim": 5.0,  # 1 - SSIM: clean paper where the reference is flat, strokes where it draws
    "edge": 1.0,  # L1 on image gradients: keeps thin strokes sharp (no pretrained net offline)
    "kl": 0.001,  # beta, per latent element: higher keeps sigma near 1, drowning the photo in noise
    "adv": 0.05,  # much lower and L1 draws white paper for uncertain lines; higher adds texture SSIM punishes
    "div": 1.0,  # diversity hinge: two samples of one photo should differ where the reference draws
    "contour": 0.5,  # reference-free contour loss on photos without a sketch (scenes)
}


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
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise SketchifyError(f"{path}: missing") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise SketchifyError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise SketchifyError(f"{path}: expected a JSON object")
        try:
            return cls.from_dict(d)
        except SketchifyError as e:
            raise SketchifyError(f"{path}: {e}") from None


def typed(key: str, got, want):
    """got, checked (and for JSON's numbers, converted) to the type of the default value want."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            raise SketchifyError(f"{key} should be an object of numbers, got {got!r}")
        return {**want, **{k: typed(f"{key}.{k}", v, 0.0) for k, v in got.items()}}
    if isinstance(want, tuple):
        if not isinstance(got, (list, tuple)) or not all(isinstance(v, str) for v in got):
            raise SketchifyError(f"{key} should be a list of names, got {got!r}")
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
    channels: int = 48  # width at 1/4 resolution, where the encoder and the generator's blocks work
    up_width: float = 0.5  # the generator's width at 1/2 resolution, as a fraction of channels; full size: half that
    up_modulated: bool = False  # the style also scales and shifts the upsampling path's features (FiLM)
    latent_channels: int = 8  # z is a (latent_channels, H/4, W/4) map
    style_dim: int = 16
    encoder_blocks: int = 3
    generator_blocks: int = 2
    disc_channels: int = 32  # the discriminator is trained beside the model and kept in the checkpoint only
    disc_layers: int = 3

    def check(self) -> list[str]:
        return [msg for bad, msg in [
            (not self.styles or len(set(self.styles)) != len(self.styles), "styles should be distinct names"),
            (self.default_style not in self.styles, f"default_style {self.default_style!r} is not among its styles"),
            (self.channels < 4 or self.channels % 4, f"channels should be a multiple of 4, got {self.channels}"),
            (not self.up_width > 0, f"up_width should be above 0, got {self.up_width}"),
            (min(self.latent_channels, self.style_dim, self.disc_channels, self.disc_layers) < 1,
             "latent_channels, style_dim, disc_channels and disc_layers should be at least 1"),
            (min(self.encoder_blocks, self.generator_blocks) < 0, "encoder_blocks and generator_blocks should be >= 0"),
        ] if bad]

    @property
    def up_channels(self) -> int:
        """The generator's width at 1/2 resolution (an even number, so that full resolution gets half)."""
        return max(2, 2 * round(self.channels * self.up_width / 2))

    @property
    def stride(self) -> int:
        """Input sides must be a multiple of this (two stride-2 downsamplings)."""
        return 4

    def style_index(self, style: str | int | None) -> int:
        if style is None:
            style = self.default_style
        if isinstance(style, int) or (isinstance(style, str) and style.isdigit()):
            i = int(style)
            if 0 <= i < len(self.styles):
                return i
        elif style in self.styles:
            return self.styles.index(style)
        raise SketchifyError(f"unknown style {style!r}; choose one of: {', '.join(self.styles)}")


@dataclass
class TrainConfig(JsonConfig):
    """How a model is trained: loss weights, schedule, batches, data; saved in the run folder and checkpoint."""

    loss_weights: dict[str, float] = field(default_factory=lambda: dict(LOSS_WEIGHTS))
    diversity_margin: float = 0.06  # wanted mean |G(z1) - G(z2)| where the reference draws (losses.ink_weight)
    diversity_knee: float = 0.0  # above 0, differences count as d^2 / (d^2 + knee^2): visible ones, not faint ones
    # per-style margins that override diversity_margin: sparse faint lines have less room for variety before a
    # sample loses to a blank page
    style_diversity_margin: dict[str, float] = field(default_factory=dict)
    image_size: int = 128  # training crop
    load_size: int = 240  # short side before the random crop: about the native size of the face photos
    batch_size: int = 8
    unpaired_batch_size: int = 2
    lr: float = 2e-4
    epochs: int = 110
    val_fraction: float = 0.1
    seed: int = 0

    def check(self) -> list[str]:
        numbers = [self.diversity_margin, self.diversity_knee, *self.loss_weights.values(),
                   *self.style_diversity_margin.values()]
        unknown = sorted(set(self.loss_weights) - set(LOSS_WEIGHTS))
        return [msg for bad, msg in [
            (bool(unknown), f"loss_weights: unknown loss {unknown[0] if unknown else ''!r}; "
                            f"the losses are {', '.join(LOSS_WEIGHTS)}"),
            (not all(math.isfinite(v) and v >= 0 for v in numbers),
             "loss weights, diversity margins and the knee should be finite numbers >= 0"),
            (self.image_size < 16 or self.image_size % 4, f"image_size should be a multiple of 4, at least 16, got {self.image_size}"),
            (self.load_size < self.image_size, f"load_size ({self.load_size}) should be at least image_size ({self.image_size})"),
            (min(self.batch_size, self.unpaired_batch_size, self.epochs) < 1,
             "batch_size, unpaired_batch_size and epochs should be at least 1"),
            (not (0 < self.lr < 1), f"lr should be between 0 and 1, got {self.lr}"),
            (not (0 <= self.val_fraction < 1), f"val_fraction should be in [0, 1), got {self.val_fraction}"),
        ] if bad]

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
        return tuple(v.strip() for v in text.split(",") if v.strip())
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
            out += [f"{f.name}.{k}: {a.get(k)} -> {b.get(k)}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f"{f.name}: {a} -> {b}")
    return out
