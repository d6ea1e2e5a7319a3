"""Shared fixtures: a tiny model folder and tiny photo/sketch data sets, all made on the fly."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from sketchify.config import SketchConfig
from sketchify.model import SketchModel

torch.set_num_threads(1)


def tiny_config(**overrides) -> SketchConfig:
    base = dict(channels=8, latent_channels=2, style_dim=4, encoder_blocks=1, generator_blocks=1,
                disc_channels=4, disc_layers=2, image_size=32, load_size=40, batch_size=4,
                unpaired_batch_size=2, epochs=2, val_fraction=0.2)
    base.update(overrides)
    return SketchConfig(**base)


def lively(model: SketchModel) -> SketchModel:
    """Untrained weights draw near-blank paper; larger random weights make outputs depend on photo, z and style."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(0, 0.4 if p.dim() > 1 else 0.1)
    return model


@pytest.fixture
def tiny_model_dir(tmp_path) -> Path:
    torch.manual_seed(0)
    model = SketchModel(tiny_config())
    folder = tmp_path / "tiny_model"
    model.save_pretrained(folder)
    return folder


def photo(seed: int, size=(48, 40)) -> Image.Image:
    """A random 'photo': a coloured background with a few shapes, so that edges exist."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        x0, y0 = rng.integers(0, size[0] // 2 + 1), rng.integers(0, size[1] // 2 + 1)
        draw.ellipse([x0, y0, x0 + size[0] // 2, y0 + size[1] // 2], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return img


def sketch_of(img: Image.Image) -> Image.Image:
    """A learnable 'sketch': dark where the photo has edges, white elsewhere."""
    grey = np.asarray(img.convert("L"), dtype=np.float32)
    gx = np.abs(np.diff(grey, axis=1, prepend=grey[:, :1]))
    gy = np.abs(np.diff(grey, axis=0, prepend=grey[:1]))
    return Image.fromarray((255 - np.clip((gx + gy) * 2, 0, 255)).astype(np.uint8), "L")


@pytest.fixture
def pair_dir(tmp_path) -> Path:
    """DATA/photos + DATA/sketches (+ styles.csv) with 12 pairs in two styles."""
    data = tmp_path / "data"
    (data / "photos").mkdir(parents=True)
    (data / "sketches").mkdir()
    rows = []
    for i in range(12):
        img = photo(i)
        img.save(data / "photos" / f"p{i:02d}.jpg")
        sketch_of(img).save(data / "sketches" / f"p{i:02d}.png")
        rows.append({"name": f"p{i:02d}", "style": str(i % 2)})
    with (data / "styles.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["name", "style"])
        writer.writeheader()
        writer.writerows(rows)
    return data


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        photo(100 + i).save(folder / f"img{i}.jpg")
    return folder
