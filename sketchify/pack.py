"""Training data shrunk to the size training reads it at, to carry to another machine (a rented GPU, say).

    python -m sketchify.pack DATA/fs2k/train DATA/cufs/train DATA/photos/bsds DATA/photos/bsds-boundaries -o packed

Every image under the folders is scaled so that its short side is the training load size (240 by default) and
saved in its own format, under the same path relative to the folders' common parent; other files (styles.csv) are
copied. `sketchify train` then reads packed/fs2k/train and the rest exactly as the originals: it scales each image
to that short side anyway, so it sees the same pixels up to JPEG's re-encoding, from about a tenth of the bytes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from PIL import Image, ImageChops

from .config import TrainConfig
from .errors import SketchifyError
from .images import IMAGE_SUFFIXES, MAX_TRAINING_ASPECT, load_photo
from .tensors import resize_short

JPEG_QUALITY = 80  # near-lossless for photos and pencil at this size; FS2K + CUHK + BSDS pack into about 38 MB


def pack(folders: list[str | Path], out: str | Path, *,
         load_size: int = TrainConfig().load_size) -> tuple[int, list[str]]:
    """Copy the folders into out, images scaled to short side `load_size`. Returns (files written, problems)."""
    folders = [Path(f).resolve() for f in folders]
    out = Path(out).resolve()
    for folder in folders:
        if not folder.is_dir():
            raise SketchifyError(f"{folder}: not a folder")
        if out == folder or folder in out.parents or out in folder.parents:
            raise SketchifyError(f"{out}: the pack would overlap {folder}; choose an output folder beside the data")
    root = Path(os.path.commonpath(folders)) if len(folders) > 1 else folders[0].parent
    written, problems = 0, []
    for folder in folders:
        for src in sorted(p for p in folder.rglob("*") if p.is_file()):
            dst = out / src.relative_to(root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                copy_scaled(src, dst, load_size) if src.suffix.lower() in IMAGE_SUFFIXES else shutil.copyfile(src, dst)
                written += 1
            except SketchifyError as e:  # load_photo names the file and the problem
                problems.append(str(e))
            except OSError as e:
                problems.append(f"{src}: {e}")
    return written, problems


def copy_scaled(src: Path, dst: Path, load_size: int) -> None:
    # read as training reads it: upright (the copy carries no EXIF), alpha on white paper, no long thin strips
    img = load_photo(src, max_aspect=MAX_TRAINING_ASPECT)
    if is_grey(img):  # a pencil sketch saved as RGB: a third of the bytes as grey
        img = img.convert("L")
    if min(img.size) > load_size:  # never enlarged: training scales up as well as this would
        img = resize_short(img, load_size)
    options = {"quality": JPEG_QUALITY} if dst.suffix.lower() in (".jpg", ".jpeg") else {}
    img.save(dst, **options)


def is_grey(img: Image.Image, tolerance: int = 12) -> bool:
    """No channel differs from another by more than tolerance anywhere (JPEG leaves a little colour noise)."""
    r, g, b = img.split()
    return all(ImageChops.difference(x, y).getextrema()[1] <= tolerance for x, y in ((r, g), (g, b)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sketchify.pack", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="training folders (pairs, contour photos, boundaries)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where the pack goes (a new folder)")
    parser.add_argument("--load-size", type=int, default=TrainConfig().load_size,
                        help="short side of every image: the load_size the run will train with")
    args = parser.parse_args(argv)
    if args.load_size < 16:
        parser.error("--load-size should be at least 16")
    try:
        written, problems = pack(args.folders, args.output, load_size=args.load_size)
    except SketchifyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for line in problems:
        print(f"skipped: {line}", file=sys.stderr)
    megabytes = sum(p.stat().st_size for p in args.output.rglob("*") if p.is_file()) / 2 ** 20
    print(f"{written} files packed into {args.output} ({megabytes:.1f} MB)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
