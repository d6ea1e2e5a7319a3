"""Copy training folders at a smaller size, to carry them to a GPU machine (the device tool carries 64 MiB at most).

    python training/pack_data.py ../shared/data/fs2k/train ../shared/data/cufs/train ../shared/data/photos/bsds \
        -o .data

Each source keeps its layout (photos/, sketches/, styles.csv; or a flat folder of photos) under OUT/NAME, where
NAME is the source folder's name, or its parent's for a split folder (fs2k/train -> fs2k). Images are scaled so
that the short side is at most --short-side px, the 240 px that training loads them at (`load_size`), so training
sees the same pictures. The three sets come to about 50 MiB, which leaves room to carry a training checkpoint
(5 MB) beside them.
`.data/` is in .gitignore: the data never enters the repository.
"""

import argparse
import shutil
from pathlib import Path

from sketchify.data import resize_short
from sketchify.images import IMAGE_SUFFIXES, load_photo

parser = argparse.ArgumentParser()
parser.add_argument("sources", nargs="+", type=Path)
parser.add_argument("-o", "--output", type=Path, required=True)
parser.add_argument("--short-side", type=int, default=240)
parser.add_argument("--quality", type=int, default=90)
args = parser.parse_args()


def shrink(src: Path, dst: Path) -> None:
    # load_photo and resize_short are what training reads with: EXIF orientation applied (a re-saved JPEG
    # drops it), alpha on white, the same bicubic scaling; never scaled up
    im = load_photo(src)
    if min(im.size) > args.short_side:
        im = resize_short(im, args.short_side)
    dst.parent.mkdir(parents=True, exist_ok=True)
    im.save(dst.with_suffix(".jpg"), quality=args.quality)


def name_of(source: Path) -> str:
    source = source.resolve()
    return source.parent.name if source.name in ("train", "val", "test") else source.name


total = 0
for source in args.sources:
    out = args.output / name_of(source)
    files = [p for p in sorted(source.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    for f in files:
        shrink(f, out / f.relative_to(source))
    for csv in source.glob("*.csv"):
        shutil.copy(csv, out / csv.name)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    total += size
    print(f"{source} -> {out}: {len(files)} images, {size / 2**20:.1f} MiB")
print(f"total {total / 2**20:.1f} MiB")
