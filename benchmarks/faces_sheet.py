"""Contact sheet of held-out faces at 100% zoom: photo | artist | t = 0 | two default samples | pencil filter.

    python benchmarks/faces_sheet.py DATA/fs2k/train DATA/cufs/train --default-style portrait -o examples/faces.png
        [-w WEIGHTS] [--per-style 2] [--seed 0]

One row per pair, the first --per-style held-out pairs (the validation split of `sketchify eval --split val`) of each
face style, every image at the size the model draws it at, so that strokes, blotches and paper tone can be judged
as they are. The samples are what `sketchify sample` makes by default (the model's sample_temperature).
"""

import argparse
from pathlib import Path

from PIL import Image

from sketchify import Sketcher
from sketchify.config import TrainConfig
from sketchify.data import find_pairs, split
from sketchify.images import load_photo, pencil_filter
from sketchify.sheet import contact_sheet
from sketchify.tensors import resize_short


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("-w", "--weights", default=None)
    ap.add_argument("--default-style", default=None)
    ap.add_argument("--per-style", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    sketcher = Sketcher.from_pretrained(args.weights, device="cpu")
    pairs = [p for d in args.data for p in find_pairs(d, sketcher.config, args.default_style)]
    _, held_out = split(pairs, TrainConfig().val_fraction)
    tiles = []
    for style in range(len(sketcher.styles)):
        for pair in [p for p in held_out if p.style == style][:args.per_style]:
            photo = resize_short(load_photo(pair.photo), sketcher.config.draw_size)
            name = sketcher.styles[style]
            samples = sketcher.samples(photo, 2, style=name, seed=args.seed)
            reference = load_photo(pair.sketch).convert("L").resize(photo.size, Image.BICUBIC)
            row = [photo, reference, sketcher.sketch(photo, style=name), *samples, pencil_filter(photo)]
            tiles += [im.convert("RGB") for im in row]
    if not tiles:
        raise SystemExit("no held-out face pairs found")
    contact_sheet(tiles, height=tiles[0].height, columns=6).save(args.output)
    print(f"{len(tiles) // 6} rows -> {args.output}")


if __name__ == "__main__":
    main()
