"""Sketcher: the library entry point. Photo in, sketch out, at the photo's size."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .device import pick_device
from .enlarge import enlarge
from .errors import SketchifyError
from .fast import FastSketch
from .images import load_photo, to_rgb
from .model import LATENT_STRIDES, SketchModel, draw_noise
from .settings import DrawSettings
from .tensors import fit, to_tensor

TILE = 512  # working images larger than TILE x TILE run tile by tile, so memory stays flat
OVERLAP = 128  # context each tile borrows from its neighbours (a multiple of the stride); covers the model's reach


class Sketcher:
    """Turns photos into sketches with a trained model.

    >>> sketcher = Sketcher.from_pretrained()            # the shipped weights
    >>> sketch = sketcher.sketch(photo, style="bold-ink")  # a PIL image, the photo's size
    >>> variants = sketcher.samples(photo, n=4, seed=0)
    >>> settings = sketcher.settings(style="contour", size=480)  # checked once, then passed whole
    >>> sketch = sketcher.sketch(photo, settings)
    """

    def __init__(self, model: SketchModel, *, device: torch.device | str = "cpu", max_side: int | None = None,
                 size: int | None = None, tile: int = TILE, line_weight: float = 0.0):
        """size and max_side: the defaults of settings given as keywords (DrawSettings.build: None is the photo's
        own short side from the model's draw_size up to 3x it, drawn at most 1024 px on the long side; 0 is the
        photo's own size / no limit). The sketch is then enlarged to the photo's size (sketchify.enlarge), its
        strokes line_weight pixels wider there (negative: thinner)."""
        # bad values fail here
        self.defaults = DrawSettings.build(model.config, size=size, max_side=max_side, line_weight=line_weight)
        self.size, self.max_side = size, max_side
        self.device = torch.device(device)
        # channels_last: oneDNN's fast convolution layout on CPU, 1.6x at 256 px here, same output
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.config = model.config
        self.tile = tile
        self._fast: dict[int, FastSketch] = {}  # per style index, built on first use

    @classmethod
    def from_pretrained(cls, source: str | Path | None = None, *, device: str = "auto",
                        max_side: int | None = None, size: int | None = None,
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

    def settings(self, *, style: str | int | None = None, seed: int | None = None, temperature: float | None = None,
                 size: int | None = None, max_side: int | None = None, line_weight: float | None = None,
                 for_samples: bool = False) -> DrawSettings:
        """Checked settings for this model. size, max_side and line_weight default to this Sketcher's (a size
        given alone draws at that size, uncapped); temperature to 0, or with for_samples to the model's
        sample_temperature."""
        if size is None:
            size, max_side = self.size, self.max_side if max_side is None else max_side
        if temperature is None and for_samples:
            temperature = self.config.sample_temperature
        line_weight = self.defaults.line_weight if line_weight is None else line_weight
        return DrawSettings.build(self.config, style=style, seed=seed, temperature=temperature, size=size,
                                  max_side=max_side, line_weight=line_weight)

    def sketch(self, image: Image.Image | str | Path, settings: DrawSettings | None = None,
               **keywords) -> Image.Image:
        """One sketch, drawn with settings or with keywords for them (style=, seed=, temperature=, size=,
        max_side=). temperature 0 gives the mean sketch; above 0, a sample (repeatable with seed)."""
        return self.sketch_batch([image], settings, **keywords)[0]

    def sketch_batch(self, images: list, settings: DrawSettings | None = None, **keywords) -> list[Image.Image]:
        """Sketches of several photos; photos of one size run as one batch."""
        settings = self._settings(settings, keywords)
        photos = [as_photo(im) for im in images]
        drawn = self.draw([self.prepare(p, settings) for p in photos], settings)
        return [self.finish(sketch, p.size, settings) for sketch, p in zip(drawn, photos)]

    def prepare(self, photo: Image.Image, settings: DrawSettings | None = None) -> torch.Tensor:
        """A photo as draw() takes it: (3, h, w) at its working size. Apart from draw() so that a pipeline can
        resize the next photos in threads while the model draws (finish enlarges a sketch to its photo's size)."""
        settings = settings or self.defaults
        return to_tensor(fit(photo, settings.work_size(photo.size, self.config.stride)))

    def draw(self, photos: list[torch.Tensor], settings: DrawSettings | None = None) -> list[torch.Tensor]:
        """Prepared photos -> (1, h, w) sketches at their working size; photos of one size run as one batch."""
        settings = settings or self.defaults
        results: list[torch.Tensor | None] = [None] * len(photos)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(photos):
            groups.setdefault(tuple(x.shape), []).append(i)
        for idx in groups.values():
            x = torch.stack([photos[i] for i in idx])
            eps = [self._noise(x.shape, settings.seed) for _ in idx] if settings.temperature > 0 else None
            out = self._draw(x, settings.style, settings.temperature, eps)
            for j, i in enumerate(idx):
                results[i] = out[j]
        return results

    def samples(self, image: Image.Image | str | Path, n: int, settings: DrawSettings | None = None,
                **keywords) -> list[Image.Image]:
        """n different sketches of one photo: n draws of eps around the same encoded photo, at the model's
        sample_temperature unless given."""
        settings = self._settings(settings, keywords, for_samples=True)
        photo = as_photo(image)
        x = self.prepare(photo, settings)[None]
        gen = torch.Generator().manual_seed(settings.seed) if settings.seed is not None else None
        eps = [self._noise(x.shape, None, gen) for _ in range(n)]
        return [self.finish(self._draw(x, settings.style, settings.temperature, [e])[0], photo.size, settings)
                for e in eps]

    def finish(self, sketch: torch.Tensor, size: tuple[int, int], settings: DrawSettings | None = None) -> Image.Image:
        """A drawn (1, h, w) sketch as the photo's (width, height) image, with the settings' line weight."""
        return enlarge(sketch, size, line_weight=(settings or self.defaults).line_weight)

    # helpers

    def _settings(self, settings: DrawSettings | None, keywords: dict, for_samples: bool = False) -> DrawSettings:
        if settings is not None and keywords:
            raise TypeError(f"pass either settings or keywords for them ({', '.join(keywords)}), not both")
        return settings if settings is not None else self.settings(**keywords, for_samples=for_samples)

    def _noise(self, shape, seed: int | None, gen: torch.Generator | None = None) -> list[torch.Tensor]:
        """eps for one photo, one map per latent scale (model.draw_noise), for a working size rounded up to the
        stride."""
        if gen is None and seed is not None:
            gen = torch.Generator().manual_seed(seed)
        s = self.config.stride
        _, _, h, w = shape
        return draw_noise(self.config.latent_channels, -(-h // s) * s, -(-w // s) * s, gen)

    @torch.inference_mode()
    def _draw(self, x: torch.Tensor, style: str, temperature: float, eps: list[torch.Tensor] | None) -> torch.Tensor:
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
