"""SVG sketches beside the PNG ones: how close they draw, how large they are, how long tracing takes. Not a test:
run it by hand and paste the table (needs pip install -e '.[svg]' resvg-py).

    python benchmarks/svg_size.py                 # example photos at 481 px and scaled to 1600 and 4000 px wide
    python benchmarks/svg_size.py --widths 1600

For each style and photo width: the example photos drawn by the shipped model (convert's defaults), saved as PNG
and as SVG; the SVG drawn back by resvg at the photo's size. Ink IoU: the overlap of the two sketches' ink
(darkness >= 0.4), worst and mean over the photos where either has ink (how many in brackets); bytes per
megapixel of the SVG and of the PNG; seconds to trace one sketch.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import resvg_py
import torch
from PIL import Image

from sketchify.images import encode
from sketchify.inference import Sketcher

ROOT = Path(__file__).resolve().parents[1]
INK = 0.4


def darkness(image: Image.Image) -> np.ndarray:
    return 1 - np.asarray(image.convert("L"), np.float32) / 255


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", nargs="*", type=int, default=[0, 1600, 4000], help="0: as they are")
    args = parser.parse_args()
    torch.set_num_threads(2)
    sketcher = Sketcher.from_pretrained(device="cpu")
    photos = [Image.open(p).convert("RGB") for p in sorted((ROOT / "examples" / "photos").glob("*.jpg"))]
    print("| style | photo width | ink IoU worst / mean (photos with ink) | SVG KB/MP | PNG KB/MP | trace s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for width in args.widths:
        scaled = [p if not width else p.resize((width, round(p.height * width / p.width)), Image.BICUBIC)
                  for p in photos]
        for style in sketcher.styles:
            ious, svg_bytes, png_bytes, seconds, pixels = [], 0, 0, [], 0
            for photo in scaled:
                sketch = sketcher.sketch(photo, style=style)
                start = time.perf_counter()
                svg = encode(sketch, "svg", description=sketcher.settings(style=style).record(sketcher.model_id))
                seconds.append(time.perf_counter() - start)
                png = encode(sketch, "png")
                drawn = darkness(Image.open(io.BytesIO(bytes(resvg_py.svg_to_bytes(svg_string=svg.decode())))))
                a, b = darkness(sketch) >= INK, drawn >= INK
                if (a | b).any():  # a sketch with no ink in PNG or SVG has nothing to overlap: left out, not 0
                    ious.append((a & b).sum() / (a | b).sum())
                svg_bytes, png_bytes = svg_bytes + len(svg), png_bytes + len(png)
                pixels += sketch.width * sketch.height
            mp = pixels / 1e6
            iou = f"{min(ious):.2f} / {np.mean(ious):.2f}" if ious else "no ink"
            print(f"| {style} | {scaled[0].width} | {iou} ({len(ious)}) | {svg_bytes / mp / 1e3:.0f} "
                  f"| {png_bytes / mp / 1e3:.0f} | {np.mean(seconds):.2f} |")


if __name__ == "__main__":
    main()
