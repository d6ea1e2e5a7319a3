"""One typed config for the model's shape and its training, saved beside the weights as config.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import SketchifyError

DEFAULT_STYLES = ("light-pencil", "bold-ink", "shaded-pencil", "portrait")


@dataclass
class SketchConfig:
    # model shape
    styles: tuple[str, ...] = DEFAULT_STYLES
    default_style: str = "bold-ink"
    channels: int = 48  # width at 1/4 resolution, where the encoder and the generator's blocks work
    up_width: float = 0.5  # the generator's width at 1/2 resolution, as a fraction of channels; full size: half that
    up_modulated: bool = False  # the style also scales and shifts the upsampling path's features (FiLM)
    latent_channels: int = 8  # z is a (latent_channels, H/4, W/4) map
    style_dim: int = 16
    encoder_blocks: int = 3
    generator_blocks: int = 2
    disc_channels: int = 32
    disc_layers: int = 3
    # loss weights
    l1_weight: float = 1.0
    ssim_weight: float = 5.0  # 1 - SSIM: clean paper where the reference is flat, strokes where it draws
    edge_weight: float = 1.0  # L1 on image gradients: keeps thin strokes sharp (no pretrained net offline)
    kl_weight: float = 0.001  # beta, per latent element: higher keeps sigma near 1, drowning the photo in noise
    adv_weight: float = 0.05  # lambda: much lower and L1 draws white paper for uncertain lines; higher adds texture SSIM punishes
    diversity_weight: float = 1.0
    diversity_margin: float = 0.06  # wanted mean |G(z1) - G(z2)| where the reference draws (losses.ink_weight)
    diversity_knee: float = 0.0  # above 0, differences count as d^2 / (d^2 + knee^2): visible ones, not faint ones
    # per-style margins that override diversity_margin: sparse faint lines have less room for variety before a
    # sample loses to a blank page
    style_diversity_margin: dict[str, float] = field(default_factory=dict)
    unpaired_weight: float = 0.5  # contour loss on photos without a sketch (scenes)
    # training
    image_size: int = 128  # training crop
    load_size: int = 240  # short side before the random crop: about the native size of the face photos
    batch_size: int = 8
    unpaired_batch_size: int = 2
    lr: float = 2e-4
    epochs: int = 110
    val_fraction: float = 0.1
    seed: int = 0

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

    def to_dict(self) -> dict:
        d = asdict(self)
        d["styles"] = list(self.styles)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SketchConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SketchifyError(f"config has unknown keys: {', '.join(unknown)}")
        d = dict(d)
        if "styles" in d:
            d["styles"] = tuple(d["styles"])
        try:
            cfg = cls(**d)
        except TypeError as e:
            raise SketchifyError(f"config is malformed: {e}") from None
        for f in fields(cls):
            want = type(getattr(cls(), f.name))
            got = getattr(cfg, f.name)
            if want is float and isinstance(got, int):
                setattr(cfg, f.name, float(got))
            elif not isinstance(got, want) or (want is int and isinstance(got, bool)):
                raise SketchifyError(f"config key {f.name!r} should be {want.__name__}, got {got!r}")
        if cfg.up_width <= 0:
            raise SketchifyError(f"config up_width should be above 0, got {cfg.up_width}")
        if cfg.default_style not in cfg.styles:
            raise SketchifyError(f"config default_style {cfg.default_style!r} is not among its styles")
        for style, margin in cfg.style_diversity_margin.items():
            if style not in cfg.styles or isinstance(margin, bool) or not isinstance(margin, (int, float)):
                raise SketchifyError(f"config style_diversity_margin: {style!r}: {margin!r} should be a number "
                                     "for one of the config's styles")
        return cfg

    def diversity_margins(self) -> list[float]:
        """The diversity margin of each style, in style-index order."""
        return [float(self.style_diversity_margin.get(style, self.diversity_margin)) for style in self.styles]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "SketchConfig":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise SketchifyError(f"{path}: missing; a model folder holds config.json and model.safetensors") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise SketchifyError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise SketchifyError(f"{path}: expected a JSON object")
        try:
            return cls.from_dict(d)
        except SketchifyError as e:
            raise SketchifyError(f"{path}: {e}") from None
