"""Images to tensors and back: the one place for conversion, luminance and resizing."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

# Both conversions run in numpy: convert calls them in threads beside the model, where torch's own
# multi-threaded kernels would start more threads than there are cores and slow the model down.


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image -> float tensor (C, H, W) in [0, 1] (its memory channels last, as the model takes it)."""
    pixels = np.asarray(img, dtype=np.float32).reshape(img.height, img.width, -1)
    return torch.from_numpy(pixels / 255).permute(2, 0, 1)


def to_image(sketch: torch.Tensor, size: tuple[int, int] | None = None) -> Image.Image:
    """(1, h, w) in [0, 1] -> greyscale PIL image, resized to size (width, height) if given."""
    grey = np.rint(np.clip(sketch[0].numpy(), 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(grey, "L")
    return img if size is None or img.size == size else img.resize(size, Image.BICUBIC)


def grey(img: Image.Image) -> torch.Tensor:
    """Any PIL image -> (1, 1, H, W) greyscale in [0, 1]."""
    return to_tensor(img.convert("L"))[None]


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB -> (..., 1, H, W) luminance (ITU-R 601 weights, as Pillow's "L")."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    return (rgb * weights).sum(-3, keepdim=True)


def resize_short(img: Image.Image, short: int) -> Image.Image:
    """Scale so that the short side is `short` pixels."""
    s = short / min(img.size)
    return img.resize((max(short, round(img.width * s)), max(short, round(img.height * s))), Image.BICUBIC)


def fit(photo: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to exactly size (width, height), if it is not that already."""
    return photo if photo.size == size else photo.resize(size, Image.BICUBIC, reducing_gap=3.0)
