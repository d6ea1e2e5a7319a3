"""Does the model keep a face's likeness when the face is larger than the ones it learned? (issue 22, target 4)

    python benchmarks/scale.py DATA/fs2k/train DATA/cufs/train --default-style portrait [-w WEIGHTS] [--n 20]

For the first --n held-out face pairs: the photo at the model's draw_size, and the same photo enlarged 2x and 4x,
each drawn at its own size (t = 0); the larger drawings are scaled back to the small one's size and compared with it
by ST-LPIPS (alex). 0 means the larger drawing is the small one, only finer; the target is at most 0.03.
"""

import argparse
from pathlib import Path

import torch
from PIL import Image

from sketchify import Sketcher
from sketchify.config import TrainConfig
from sketchify.data import find_pairs, split
from sketchify.images import load_photo
from sketchify.perceptual import STLPIPS
from sketchify.tensors import resize_short, to_tensor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", type=Path)
    ap.add_argument("-w", "--weights", default=None)
    ap.add_argument("--default-style", default=None)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--factors", type=int, nargs="+", default=[2, 4])
    args = ap.parse_args()

    sketcher = Sketcher.from_pretrained(args.weights, device="cpu", size=0, max_side=0)
    judge = STLPIPS("alex")
    pairs = [p for d in args.data for p in find_pairs(d, sketcher.config, args.default_style)]
    _, held_out = split(pairs, TrainConfig().val_fraction)
    held_out = held_out[:: max(1, len(held_out) // args.n)][:args.n]  # spread over the styles
    scores: dict[int, list[float]] = {f: [] for f in args.factors}
    for pair in held_out:
        photo = resize_short(load_photo(pair.photo), sketcher.config.draw_size)
        style = sketcher.styles[pair.style]
        small = to_tensor(sketcher.sketch(photo, style=style))[None]
        for f in args.factors:
            big = photo.resize((photo.width * f, photo.height * f), Image.BICUBIC)
            back = sketcher.sketch(big, style=style).resize(photo.size, Image.BICUBIC)
            with torch.no_grad():
                scores[f].append(float(judge(to_tensor(back)[None], small)))
    for f, s in scores.items():
        print(f"{f}x ({f * sketcher.config.draw_size} px short side): "
              f"ST-LPIPS to the {sketcher.config.draw_size} px drawing, mean {sum(s) / len(s):.3f}, "
              f"worst {max(s):.3f} over {len(s)} held-out faces")


if __name__ == "__main__":
    main()
