"""Redraw the example sketches and the README's contact sheet with the shipped weights.

    python examples/render.py

Writes examples/sketches/STYLE/NAME.png for every style (t = 0), examples/samples/NAME_K.png (three samples,
bold-ink, seed 0) and examples/sheet.png: one row per photo with the photo, each style, then the samples.
"""

from pathlib import Path

from PIL import Image

from sketchify import Sketcher
from sketchify.images import load_photo
from sketchify.sheet import contact_sheet

HERE = Path(__file__).parent
SAMPLES = 3


def main() -> None:
    sketcher = Sketcher.from_pretrained(device="cpu")
    tiles = []
    for path in sorted((HERE / "photos").glob("*.jpg")):
        photo = load_photo(path)
        row = [photo]
        for style in sketcher.styles:
            sketch = sketcher.sketch(photo, style=style)
            (HERE / "sketches" / style).mkdir(parents=True, exist_ok=True)
            sketch.save(HERE / "sketches" / style / f"{path.stem}.png")
            row.append(sketch)
        (HERE / "samples").mkdir(exist_ok=True)
        for k, sample in enumerate(sketcher.samples(photo, SAMPLES, style="bold-ink", seed=0)):
            sample.save(HERE / "samples" / f"{path.stem}_{k}.png")
            row.append(sample)
        tiles += [im.resize((240, round(240 * im.height / im.width)), Image.BICUBIC) for im in row]
        # photos differ in orientation: pad each tile to one height so the rows line up
    height = max(t.height for t in tiles)
    padded = []
    for t in tiles:
        canvas = Image.new("RGB", (t.width, height), "white")
        canvas.paste(t.convert("RGB"), (0, (height - t.height) // 2))
        padded.append(canvas)
    contact_sheet(padded, height=160, columns=1 + len(sketcher.styles) + SAMPLES).save(HERE / "sheet.png")
    print("styles:", ", ".join(sketcher.styles), f"+ {SAMPLES} bold-ink samples -> {HERE / 'sheet.png'}")


if __name__ == "__main__":
    main()
