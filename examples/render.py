"""Redraw the example sketches and the README's contact sheet with the shipped weights.

    python examples/render.py

Writes examples/sketches/STYLE/NAME.png for every style (t = 0), examples/samples/NAME_K.png (three samples,
bold-ink, seed 0) and examples/sheet.png: one row per photo with the photo, each style, then the samples.
tests/test_golden.py draws the same with drawings() and compares: run this when a change to the drawing is meant.
"""

from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from sketchify import Sketcher
from sketchify.images import load_photo
from sketchify.sheet import contact_sheet

HERE = Path(__file__).parent
SAMPLES = 3


def photos() -> list[Path]:
    return sorted((HERE / "photos").glob("*.jpg"))


def drawings(sketcher: Sketcher, photo: Image.Image, name: str) -> Iterator[tuple[str, Image.Image]]:
    """Every example drawing of one photo with its path under examples/: each style at t = 0, then the samples."""
    for style in sketcher.styles:
        yield f"sketches/{style}/{name}.png", sketcher.sketch(photo, style=style)
    for k, sample in enumerate(sketcher.samples(photo, SAMPLES, style="bold-ink", seed=0)):
        yield f"samples/{name}_{k}.png", sample


def fit_box(im: Image.Image, box: int) -> Image.Image:
    """Scale into a box x box square on white, so landscape and portrait photos share one grid."""
    im = im.convert("RGB")
    im.thumbnail((box, box), Image.BICUBIC)
    canvas = Image.new("RGB", (box, box), "white")
    canvas.paste(im, ((box - im.width) // 2, (box - im.height) // 2))
    return canvas


def main() -> None:
    sketcher = Sketcher.from_pretrained(device="cpu")
    tiles = []
    for path in photos():
        photo = load_photo(path)
        row = [photo]
        for rel, drawing in drawings(sketcher, photo, path.stem):
            (HERE / rel).parent.mkdir(parents=True, exist_ok=True)
            drawing.save(HERE / rel)
            row.append(drawing)
        tiles += [fit_box(im, 200) for im in row]
    contact_sheet(tiles, height=200, columns=1 + len(sketcher.styles) + SAMPLES).save(HERE / "sheet.png")
    print("styles:", ", ".join(sketcher.styles), f"+ {SAMPLES} bold-ink samples -> {HERE / 'sheet.png'}")


if __name__ == "__main__":
    main()
