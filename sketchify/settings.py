"""How a sketch is drawn: one frozen, validated record, built once and passed whole from the caller to the model,
and written whole into each sketch's EXIF so that a re-run can tell a sketch drawn otherwise."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from .config import ModelConfig
from .errors import SketchifyError

# the long side a photo is drawn at, at most, unless asked otherwise: larger photos are drawn at this size and
# scaled up, so strokes keep a pencil's width and a 12 MP photo takes seconds, not minutes
DEFAULT_DRAW_MAX_SIDE = 1024
# by default a photo is drawn at its own short side, from the model's draw_size up to this many times it, and a
# larger photo's sketch is enlarged (sketchify.enlarge): the shipped model's faces keep most of their likeness
# there, a face a tenth of a phone photo's width still has eyes, and a 12 MP photo draws in about a second
MAX_DRAW_SCALE = 3
MAX_SEED = 2**64 - 1  # torch.Generator's range
MAX_LINE_WEIGHT = 32  # pixels: past a pencil's width, and the filter's cost grows with it


@dataclass(frozen=True)
class DrawSettings:
    """style: the model's name for it; seed: None draws fresh noise; temperature: 0 gives the mean sketch;
    size: the short side a photo is drawn at (0: the photo's own); up_to: if set, a photo whose short side is
    larger than size is drawn at its own, up to this; max_side: the long side is never drawn larger (0: no limit).
    Build with DrawSettings.build (or Sketcher.settings): it resolves defaults and checks values."""

    style: str
    seed: int | None = None
    temperature: float = 0.0
    size: int = 0
    max_side: int = 0
    up_to: int = 0
    line_weight: float = 0.0  # pixels added to every stroke at the sketch's size (negative: thinner)

    def __post_init__(self):
        if self.seed is not None and not (isinstance(self.seed, int) and 0 <= self.seed <= MAX_SEED):
            raise SketchifyError(f"seed {self.seed}: use a whole number from 0 to {MAX_SEED}")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature >= 0):
            raise SketchifyError(f"temperature {self.temperature}: use a finite number of 0 or more")
        if not (isinstance(self.line_weight, (int, float)) and abs(self.line_weight) <= MAX_LINE_WEIGHT):
            raise SketchifyError(f"line_weight {self.line_weight}: use a number of pixels from -{MAX_LINE_WEIGHT} "
                                 f"to {MAX_LINE_WEIGHT}")
        for name in ("size", "max_side", "up_to"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise SketchifyError(f"{name} {value}: use a whole number of pixels, or 0")

    @classmethod
    def build(cls, config: ModelConfig, *, style: str | int | None = None, seed: int | None = None,
              temperature: float | None = None, size: int | None = None,
              max_side: int | None = None, line_weight: float = 0.0) -> DrawSettings:
        """Defaults resolved against the model: style None is its default style (a number picks one by index);
        temperature None is 0; size None is its draw_size, up to MAX_DRAW_SCALE times it for larger photos
        (drawn_short_side). max_side None is DEFAULT_DRAW_MAX_SIDE with the model's
        size, and no limit with a size asked for: so a given size (0: the photo's own) is what is drawn, unless a
        max_side is given too. A size that max_side would cut on every photo is refused."""
        if max_side is None:
            max_side = DEFAULT_DRAW_MAX_SIDE if size is None else 0
        up_to = MAX_DRAW_SCALE * config.draw_size if size is None else 0
        named = f"size {size}" if size is not None else f"the model's draw_size {config.draw_size} (the default size)"
        size = config.draw_size if size is None else size
        for name, value in (("size", size), ("max_side", max_side)):
            if 0 < value < config.stride:  # smaller draws a flat grey page
                raise SketchifyError(f"{name} {value}: use 0 or at least {config.stride}, the model's stride")
        if size and max_side and size > max_side:
            raise SketchifyError(f"{named} is larger than max_side {max_side}, which would cap every photo; "
                                 f"raise max_side (0: no limit) or lower size")
        return cls(config.style_name(style), seed, float(temperature or 0.0), size, max_side, up_to,
                   float(line_weight))

    def record(self, model_id: str, photo: str | None = None) -> str:
        """The JSON each sketch carries in EXIF: these settings, the model, and the photo it was drawn from."""
        return json.dumps({**asdict(self), "model": model_id, "photo": photo}, sort_keys=True)

    def work_size(self, photo: tuple[int, int], stride: int) -> tuple[int, int]:
        """The size a photo of (w, h) is drawn at: its short side at size (or drawn_short_side's, with up_to), its
        long side at most max_side, both multiples of the model's stride."""
        w, h = photo
        short = drawn_short_side(min(w, h), self.size, self.up_to) if self.up_to else self.size
        scale = short / min(w, h) if short else 1.0
        if self.max_side and max(w, h) * scale > self.max_side:
            scale = self.max_side / max(w, h)
        # sides rounded to the stride (an aspect change of a few pixels, undone when the sketch is scaled back):
        # padding instead gives the model an edge that is not in the photo, and it draws a line there
        return tuple(max(stride, round(side * scale / stride) * stride) for side in (w, h))


def drawn_short_side(short: int, size: int, up_to: int) -> int:
    """The short side a photo whose own is `short` is drawn at: its own, but at least size (the model's scale: a
    thumbnail's features would be too small to draw) and at most up_to (the model's likeness fades further from its
    scale, and the time grows with the pixels; the sketch is enlarged instead)."""
    return min(max(short, size), up_to)


def differences(recorded: str | None, current: str) -> str:
    """"exists", or what differs between a sketch's record and this run's (e.g. "style light-pencil, now
    bold-ink"). A record from before a setting was recorded says so ("size not recorded, now 240")."""
    if recorded is None:
        return "exists"
    try:
        old, new = json.loads(recorded), json.loads(current)
    except ValueError:
        return "exists"
    if not isinstance(old, dict):
        return "exists"
    changed = [f"{k} {'not recorded' if k not in old else old[k]}, now {v}" for k, v in new.items()
               if k != "photo" and old.get(k) != v]
    return "exists, drawn with " + "; ".join(changed) if changed else "exists"


def recorded_photo(recorded: str | None) -> str | None:
    """The photo a sketch's record names, or None (no record, or one from before photos were recorded)."""
    try:
        old = json.loads(recorded) if recorded else None
    except ValueError:
        return None
    return old.get("photo") if isinstance(old, dict) and isinstance(old.get("photo"), str) else None
