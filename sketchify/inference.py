"""Sketcher: the library entry point. Photo in, sketch out, at the photo's size."""

from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .device import pick_device
from .enlarge import enlarge
from .errors import SketchifyError
from .fast import FastSketch
from .images import DEFAULT_MAX_SIDE, load_photo, to_rgb
from .model import LATENT_STRIDES, SketchModel, draw_noise
from .tensors import fit, to_tensor

TILE = 512  # working images larger than TILE x TILE run tile by tile, so memory stays flat
OVERLAP = 128  # context each tile borrows from its neighbours (a multiple of the stride); covers the model's reach
# photos are drawn at their own size up to this many times the model's draw_size (short side), then enlarged
# (sketchify.enlarge): the shipped model's faces keep their likeness there, a face a tenth of a phone photo's width
# still has eyes, and a 12 MP photo draws in about a second
MAX_DRAW_SCALE = 3.0


class Sketcher:
    """Turns photos into sketches with a trained model.

    >>> sketcher = Sketcher.from_pretrained()            # the shipped weights
    >>> sketch = sketcher.sketch(photo, style="bold-ink")  # a PIL image, the photo's size
    >>> variants = sketcher.samples(photo, n=4, seed=0)
    """

    def __init__(self, model: SketchModel, *, device: torch.device | str = "cpu", max_side: int = DEFAULT_MAX_SIDE,
                 size: int | None = None, tile: int = TILE, line_weight: float = 0.0):
        """size: the short side photos are drawn at (None: drawn_short_side's rule; 0: each photo's own size);
        max_side: the long side is never drawn larger (0: no limit). The sketch is then enlarged to the photo's
        size (sketchify.enlarge), its strokes line_weight pixels wider there (negative: thinner)."""
        if max_side < 0 or 0 < max_side < model.config.stride:  # smaller draws a flat grey page
            raise SketchifyError(f"max_side {max_side}: use 0 (full size) or at least {model.config.stride}, "
                                 "the model's stride")
        if not math.isfinite(line_weight):
            raise SketchifyError(f"line_weight {line_weight}: use a finite number of pixels")
        self.device = torch.device(device)
        # channels_last: oneDNN's fast convolution layout on CPU, 1.6x at 256 px here, same output
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.config = model.config
        self.max_side = max_side
        self.size = size
        self.tile = tile
        self.line_weight = line_weight
        self._fast: dict[int, FastSketch] = {}  # per style index, built on first use

    @classmethod
    def from_pretrained(cls, source: str | Path | None = None, *, device: str = "auto",
                        max_side: int = DEFAULT_MAX_SIDE, size: int | None = None,
                        line_weight: float = 0.0) -> Sketcher:
        """Load a model folder, a Hub repo id, or (None or "default") the shipped weights."""
        dev = pick_device(device)
        model = SketchModel.from_pretrained(source, device=dev)
        return cls(model, device=dev, max_side=max_side, size=size, line_weight=line_weight)

    @functools.cached_property
    def model_id(self) -> str:
        """A digest of the weights: names the model a sketch was drawn with, wherever it was loaded from."""
        digest = hashlib.sha256()
        for name, value in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()[:16]

    @property
    def styles(self) -> tuple[str, ...]:
        return self.config.styles

    def sketch(self, image: Image.Image | str | Path, *, style: str | None = None, seed: int | None = None,
               temperature: float = 0.0) -> Image.Image:
        """One sketch. temperature 0 gives the mean sketch; above 0, a sample (repeatable with seed)."""
        return self.sketch_batch([image], style=style, seed=seed, temperature=temperature)[0]

    def sketch_batch(self, images: list, *, style: str | None = None, seed: int | None = None,
                     temperature: float = 0.0) -> list[Image.Image]:
        """Sketches of several photos; photos of one size run as one batch."""
        check_noise(seed, temperature)
        photos = [as_photo(im) for im in images]
        drawn = self.draw([self.prepare(p) for p in photos], style=style, seed=seed, temperature=temperature)
        return [self.finish(sketch, p.size) for sketch, p in zip(drawn, photos)]

    def prepare(self, photo: Image.Image) -> torch.Tensor:
        """A photo as draw() takes it: (3, h, w) at its working size. Apart from draw() so that a pipeline can
        resize the next photos in threads while the model draws (finish enlarges a sketch to its photo's size)."""
        return to_tensor(fit(photo, self._work_size(photo)))

    def draw(self, photos: list[torch.Tensor], *, style: str | None = None, seed: int | None = None,
             temperature: float = 0.0) -> list[torch.Tensor]:
        """Prepared photos -> (1, h, w) sketches at their working size; photos of one size run as one batch."""
        check_noise(seed, temperature)
        results: list[torch.Tensor | None] = [None] * len(photos)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(photos):
            groups.setdefault(tuple(x.shape), []).append(i)
        for idx in groups.values():
            x = torch.stack([photos[i] for i in idx])
            eps = [self._noise(x.shape, seed) for _ in idx] if temperature > 0 else None
            out = self._draw(x, style, temperature, eps)
            for j, i in enumerate(idx):
                results[i] = out[j]
        return results

    def samples(self, image: Image.Image | str | Path, n: int, *, style: str | None = None, seed: int | None = None,
                temperature: float | None = None) -> list[Image.Image]:
        """n different sketches of one photo: n draws of eps around the same encoded photo, at the model's
        sample_temperature unless given."""
        temperature = self.config.sample_temperature if temperature is None else temperature
        check_noise(seed, temperature)
        photo = as_photo(image)
        x = self.prepare(photo)[None]
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        eps = [self._noise(x.shape, None, gen) for _ in range(n)]
        return [self.finish(self._draw(x, style, temperature, [e])[0], photo.size) for e in eps]

    def finish(self, sketch: torch.Tensor, size: tuple[int, int]) -> Image.Image:
        """A drawn (1, h, w) sketch as the photo's (width, height) image, with this Sketcher's line weight."""
        return enlarge(sketch, size, line_weight=self.line_weight)

    # helpers

    def _work_size(self, photo: Image.Image) -> tuple[int, int]:
        """The size a photo is drawn at: its short side at self.size or drawn_short_side's, the long side about
        max_side at most, both multiples of the model's stride."""
        w, h = photo.size
        short = drawn_short_side(min(w, h), self.config.draw_size) if self.size is None else self.size
        scale = short / min(w, h) if short else 1.0
        if self.max_side and max(w, h) * scale > self.max_side:
            scale = self.max_side / max(w, h)
        # sides rounded to the model's stride (an aspect change of a few pixels, undone when the sketch is scaled
        # back): padding instead gives the model an edge that is not in the photo, and it draws a line there
        s = self.config.stride
        return tuple(max(s, round(side * scale / s) * s) for side in (w, h))

    def _noise(self, shape, seed: int | None, gen: torch.Generator | None = None) -> list[torch.Tensor]:
        """eps for one photo, one map per latent scale (model.draw_noise), for a working size rounded up to the
        stride."""
        if gen is None and seed is not None:
            gen = torch.Generator().manual_seed(seed)
        s = self.config.stride
        _, _, h, w = shape
        return draw_noise(self.config.latent_channels, -(-h // s) * s, -(-w // s) * s, gen)

    @torch.inference_mode()
    def _draw(self, x: torch.Tensor, style, temperature: float, eps: list[torch.Tensor] | None) -> torch.Tensor:
        """(N, 3, H, W) photos -> (N, 1, H, W) sketches: padded to the stride, tiled if large, cropped back."""
        n, _, h, w = x.shape
        s = self.config.stride
        ph, pw = -(-h // s) * s - h, -(-w // s) * s - w
        x = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        model = self._fast_model(self.config.style_index(style))
        e = [torch.stack(scale) for scale in zip(*eps)] if eps is not None else None
        out = torch.empty(n, 1, h + ph, w + pw)
        for (t0, t1, l0, l1), (ct0, ct1, cl0, cl1) in tiles(h + ph, w + pw, self.tile):
            crop_eps = [m[:, :, t0 // f:t1 // f, l0 // f:l1 // f].to(self.device)
                        for m, f in zip(e, LATENT_STRIDES)] if e is not None else None
            crop = x[:, :, t0:t1, l0:l1].to(self.device).contiguous(memory_format=torch.channels_last)
            y = model(crop, temperature, crop_eps)
            out[:, :, t0 + ct0:t0 + ct1, l0 + cl0:l0 + cl1] = y[:, :, ct0:ct1, cl0:cl1].float().cpu()
        return out[:, :, :h, :w]

    def _fast_model(self, style: int) -> FastSketch:
        """The model's function for one style, computed faster (sketchify.fast); self.model stays the reference."""
        if style not in self._fast:
            with torch.inference_mode():
                self._fast[style] = FastSketch(self.model, style)
        return self._fast[style]


def check_noise(seed: int | None, temperature: float) -> None:
    """Refuse what can only fail deep in torch, or draw garbage: a seed torch cannot hold, t = inf or NaN."""
    if seed is not None and not 0 <= seed < 2**64:
        raise SketchifyError(f"seed {seed}: use a whole number from 0 to {2**64 - 1}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise SketchifyError(f"temperature {temperature}: use a finite number of 0 or more")


def drawn_short_side(short: int, draw_size: int) -> int:
    """The short side a photo is drawn at by default: its own, but at least the model's draw_size (the scale it
    learned: a thumbnail's features would be too small to draw) and at most MAX_DRAW_SCALE times it (the model's
    likeness fades further from its scale, and the time grows with the pixels; the sketch is enlarged instead)."""
    return int(min(max(short, draw_size), MAX_DRAW_SCALE * draw_size))


def tiles(h: int, w: int, tile: int, overlap: int = OVERLAP):
    """Yield (tile with its context) and (the part of it to keep), covering an h x w image exactly once."""
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            t1, l1 = min(top + tile + overlap, h), min(left + tile + overlap, w)
            keep = (top - t0, min(top + tile, h) - t0, left - l0, min(left + tile, w) - l0)
            yield (t0, t1, l0, l1), keep


def as_photo(image) -> Image.Image:
    if isinstance(image, (str, Path)):
        return load_photo(image)
    if not isinstance(image, Image.Image):
        raise SketchifyError(f"expected a PIL image or a path, got {type(image).__name__}")
    return to_rgb(ImageOps.exif_transpose(image))  # upright, as load_photo makes a file
