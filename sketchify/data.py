"""Finding photo/sketch pairs on disk, the validation split, and the augmented training batches."""

from __future__ import annotations

import csv
import io
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageOps

from .config import ModelConfig
from .errors import SketchifyError
from .files import read_regular
from .images import IMAGE_SUFFIXES, MAX_TRAINING_ASPECT, load_photo
from .tensors import luma, resize_short, to_tensor


@dataclass(frozen=True)
class Pair:
    name: str
    photo: Path
    sketch: Path  # the artist's drawing, or people's contours (boundary=True: 255 = all of them drew it)
    style: int
    boundary: bool = False


def image_files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}


def find_pairs(data: str | Path, config: ModelConfig, default_style: str | None = None, *,
               unmatched: list[Path] | None = None) -> list[Pair]:
    """DATA/photos/X.* and DATA/sketches/X.* with one stem; styles from DATA/styles.csv (name,style) if present.

    Photos without a sketch are added to unmatched, if given.
    """
    data = Path(data)
    photos_dir, sketches_dir = data / "photos", data / "sketches"
    for d in (photos_dir, sketches_dir):
        if not d.is_dir():
            raise SketchifyError(f"{data}: expected folders photos/ and sketches/ with matching file names "
                                 f"({d.name}/ is missing)")
    photos, sketches = image_files(photos_dir), image_files(sketches_dir)
    styles = read_styles(data / "styles.csv", config)
    fallback = config.style_index(default_style)
    pairs = [Pair(n, photos[n], sketches[n], styles.get(n, fallback)) for n in sorted(photos.keys() & sketches.keys())]
    if unmatched is not None:
        unmatched += [photos[n] for n in sorted(photos.keys() - sketches.keys())]
    if not pairs:
        raise SketchifyError(f"{data}: no photo/sketch pairs with matching names in photos/ and sketches/")
    return pairs


def readable(pairs: list[Pair]) -> tuple[list[Pair], list[str]]:
    """The pairs whose photo and sketch both decode, and one line for each that does not."""
    good, bad = [], []
    for pair in pairs:
        try:
            for path in (pair.photo, pair.sketch):
                load_photo(path)
            good.append(pair)
        except SketchifyError as e:
            bad.append(str(e))
    return good, bad


def find_contours(photos: str | Path, boundaries: str | Path, config: ModelConfig) -> list[Pair]:
    """Scene photos with the boundaries people drew on them (BSDS500's layout: a greyscale NAME.png per photo,
    the mean over annotators, 0 = nobody, 255 = everybody), drawn in the model's "contour" style."""
    photos, boundaries = Path(photos), Path(boundaries)
    for d in (photos, boundaries):
        if not d.is_dir():
            raise SketchifyError(f"{d}: no such folder")
    style = config.style_index("contour")
    found, drawn = image_files(photos), image_files(boundaries)
    pairs = [Pair(n, found[n], drawn[n], style, boundary=True) for n in sorted(found.keys() & drawn.keys())]
    if not pairs:
        raise SketchifyError(f"{photos}: no photo has a boundary map of the same name in {boundaries}")
    return pairs


def balanced_sampler(pairs: list[Pair]) -> torch.utils.data.WeightedRandomSampler:
    """An epoch's worth of pairs drawn with weight 1/sqrt(pairs of that style): small styles are seen more often
    than their share, without repeating their few pairs as often as the large styles' many."""
    counts: dict[int, int] = {}
    for p in pairs:
        counts[p.style] = counts.get(p.style, 0) + 1
    weights = [counts[p.style] ** -0.5 for p in pairs]
    return torch.utils.data.WeightedRandomSampler(weights, num_samples=len(pairs), replacement=True)


def read_styles(path: Path, config: ModelConfig) -> dict[str, int]:
    """name,style rows; UTF-8 with or without a byte-order mark (Excel writes one)."""
    if not path.exists():
        return {}
    try:
        rows = list(csv.DictReader(io.StringIO(read_regular(path).decode("utf-8-sig"), newline="")))
    except UnicodeDecodeError as e:
        raise SketchifyError(f"{path}: not UTF-8 (byte {e.start}); save it as UTF-8 CSV") from None
    except csv.Error as e:
        raise SketchifyError(f"{path}: not a readable CSV ({e})") from None
    if rows and not {"name", "style"} <= set(rows[0]):
        raise SketchifyError(f"{path}: needs the columns name,style")
    styles = {}
    for line, row in enumerate(rows, start=2):
        if row["name"] is None or row["style"] is None:
            raise SketchifyError(f"{path}: line {line} is short; each row needs a name and a style")
        try:
            styles[row["name"]] = config.style_index(row["style"].strip())
        except SketchifyError as e:
            raise SketchifyError(f"{path}: line {line}: {e}") from None
    return styles


def is_validation(name: str, fraction: float) -> bool:
    """A fixed split by a hash of the name: stable across runs, machines and added data."""
    return zlib.crc32(name.encode()) % 1000 < fraction * 1000


def split(pairs: list[Pair], fraction: float) -> tuple[list[Pair], list[Pair]]:
    val = [p for p in pairs if is_validation(p.name, fraction)]
    train = [p for p in pairs if not is_validation(p.name, fraction)]
    return train, val


class SketchDataset(torch.utils.data.Dataset):
    """Pairs decoded once and held in memory at the load size; each item is a fresh random crop.

    Items are {"photo", "style", "sketch"}; sketchify.step.collate batches them.
    """

    def __init__(self, pairs: list[Pair], *, load_size: int, image_size: int, augment: bool):
        self.pairs, self.augment = pairs, augment
        self.load_size, self.image_size = load_size, image_size
        self.images = [self._load(p) for p in pairs]

    def _load(self, pair: Pair) -> tuple[torch.Tensor, torch.Tensor]:
        photo = load_photo(pair.photo, max_aspect=MAX_TRAINING_ASPECT)
        sketch = load_photo(pair.sketch, max_aspect=MAX_TRAINING_ASPECT).convert("L").resize(photo.size, Image.BICUBIC)
        if pair.boundary:
            sketch = ImageOps.invert(sketch)  # dark strokes where people drew a boundary
        as_bytes = lambda img: (to_tensor(resize_short(img, self.load_size)) * 255).to(torch.uint8)
        return as_bytes(photo), as_bytes(sketch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        photo, sketch = self.images[i]
        both = torch.cat([photo, sketch]).float() / 255
        s = self.image_size
        # Pairs are never mirrored. Each source's sketches sit a few pixels off their photos (FS2K photo1 about
        # 2 px left, photo2/3 about 3 px down); a mirrored pair teaches the opposite offset, and a model taught
        # both draws their average: a blurred stroke.
        both = self._random_crop(both, s) if self.augment else center_crop(both, s)
        return {"photo": jitter(both[:3]) if self.augment else both[:3], "style": self.pairs[i].style,
                "sketch": both[3:]}

    def _random_crop(self, x: torch.Tensor, s: int) -> torch.Tensor:
        # a small random zoom, then a crop: the model sees faces at slightly different scales
        scale = random.uniform(0.9, 1.15)
        h, w = x.shape[-2:]
        nh, nw = max(s, round(h * scale)), max(s, round(w * scale))
        x = torch.nn.functional.interpolate(x[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
        top, left = random.randint(0, nh - s), random.randint(0, nw - s)
        return x[:, top:top + s, left:left + s]


def center_crop(x: torch.Tensor, s: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - s) // 2, (w - s) // 2
    return x[:, top:top + s, left:left + s]


def jitter(photo: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and saturation jitter of +-20%, on the photo only."""
    b, c, s = (random.uniform(0.8, 1.2) for _ in range(3))
    grey = luma(photo)
    photo = grey + (photo - grey) * s
    photo = photo.mean() + (photo - photo.mean()) * c
    return (photo * b).clamp(0, 1)
