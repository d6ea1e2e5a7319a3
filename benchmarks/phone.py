"""Phone photos: sketches at the photo's own size (issue 24). Not a test: run it by hand and paste the tables.

    python benchmarks/phone.py                   # everything, shipped weights, CPU (a few minutes on 2 cores)
    python benchmarks/phone.py --faces 40        # more held-out faces for the likeness row
    python benchmarks/phone.py --skip-speed      # strokes, likeness and crops only

12 MP test photos are made from the data: a BSDS scene enlarged to 4000x3000 (Lanczos, then an unsharp mask, so
that its edges are a few pixels wide as a camera's are, not 8x blurred), and the same scene with a held-out FS2K
face, resized to 480x600, pasted in. It measures, beside the pencil filter on the same photos:

- strokes: median stroke width (ink = darkness >= 0.35; width = 2 x the distance to paper along the ink's
  skeleton, the ridge of the distance transform) of the default sketch and of the filter;
- time: one 12 MP photo decoded, drawn and encoded as PNG in this process (the filter the same way), and
  `sketchify convert` of it in a subprocess with its peak RSS; photos/s of `convert` on folders at 256, 512, 1024
  and 12 MP, each with the size the drawing was made at;
- likeness: N held-out FS2K faces enlarged 8x and converted with the defaults, scaled back to the reference's
  size: their ST-LPIPS to the artist's sketch beside that of the original small photo's sketch, and the ST-LPIPS
  between the two sketches.

It writes 100% crops for the README to examples/phone/: the scene (ours | filter), the pasted face
(ours | filter) and the line-weight range. Needs scipy (the distance transform) and sketchify[train] (ST-LPIPS).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).parent))
from bench import timed  # noqa: E402  (the benchmark beside this one: a subprocess's time and peak RSS)

from sketchify import convert  # noqa: E402
from sketchify.data import find_pairs, split  # noqa: E402
from sketchify.enlarge import enlarge  # noqa: E402
from sketchify.images import encode, load_photo, pencil_filter  # noqa: E402
from sketchify.inference import Sketcher  # noqa: E402

DATA = Path(os.environ.get("SKETCHIFY_DATA", "/work/shared/data"))
SCENE = "100075"  # a BSDS scene: bears by water, strokes on fur, outlines and a flat background
PHONE = (4000, 3000)
FACE_SIZE, FACE_AT = (480, 600), (2600, 1500)  # pasted face and its top-left corner in the 12 MP scene
EXAMPLES = Path(__file__).parent.parent / "examples" / "phone"
INK = 0.35


def phone_photo(scene: Path, size: tuple[int, int] = PHONE, sharpen: bool = True) -> Image.Image:
    """A scene resized to cover size and cropped to it, then (sharpen) an unsharp mask: a camera's edges are a few
    pixels wide, an 8x enlargement's 8x that."""
    img = load_photo(scene)
    s = max(size[0] / img.width, size[1] / img.height)
    big = img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS)
    left, top = (big.width - size[0]) // 2, (big.height - size[1]) // 2
    big = big.crop((left, top, left + size[0], top + size[1]))
    return big.filter(ImageFilter.UnsharpMask(radius=8, percent=250, threshold=1)) if sharpen else big


def stroke_widths(sketch: Image.Image, threshold: float = INK) -> np.ndarray:
    """Widths at the ink's skeleton: 2 x the Euclidean distance to paper at each ridge pixel of the distance
    transform (a pixel that is a local maximum across some direction, strictly on one side)."""
    from scipy.ndimage import distance_transform_edt

    ink = 1 - np.asarray(sketch.convert("L"), dtype=np.float32) / 255 >= threshold
    d = np.pad(distance_transform_edt(ink).astype(np.float32), 1)
    c = d[1:-1, 1:-1]
    ridge = np.zeros(c.shape, bool)
    h, w = c.shape
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a, b = d[1 + dy:h + 1 + dy, 1 + dx:w + 1 + dx], d[1 - dy:h + 1 - dy, 1 - dx:w + 1 - dx]
        ridge |= (c >= a) & (c >= b) & ((c > a) | (c > b))
    return 2 * c[ridge & ink]


def held_out_faces(config, n: int) -> list:
    """The first n validation pairs of FS2K under the training config's split (val_fraction 0.1)."""
    from sketchify.config import TrainConfig

    _, val = split(find_pairs(DATA / "fs2k" / "train", config), TrainConfig().val_fraction)
    return val[:n]


def end_to_end(fn, photo_path: Path) -> float:
    """Seconds to decode a photo, make its sketch with fn and encode it as PNG (the best of two runs)."""
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        encode(fn(load_photo(photo_path)), "png")
        best = min(best, time.perf_counter() - start)
    return best


def convert_rate(sketcher: Sketcher, photos: list[Image.Image]) -> tuple[float, float]:
    """Photos/s of convert.run over a folder of these photos as JPEGs (warmed up on the first), and the same for
    the pencil filter decoded and encoded alike."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "photos")
        src.mkdir()
        for i, p in enumerate(photos):
            p.save(src / f"{i:03d}.jpg", quality=90)
        jobs = convert.plan_outputs([src], Path(tmp, "sketches")).jobs
        list(convert.run(sketcher, jobs[:1]))
        start = time.perf_counter()
        results = list(convert.run(sketcher, jobs, output=convert.Output(overwrite=True)))
        ours = len(jobs) / (time.perf_counter() - start)
        if any(r.status != "converted" for r in results):
            raise SystemExit(f"convert failed: {[r.message for r in results if r.status != 'converted'][:3]}")
        start = time.perf_counter()
        for job in jobs:
            encode(pencil_filter(load_photo(job.src)), "png")
        filt = len(jobs) / (time.perf_counter() - start)
    return ours, filt


def crop(img: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    return img.convert("L").crop(box)


def side_by_side(images: list[Image.Image], gap: int = 8) -> Image.Image:
    out = Image.new("L", (sum(i.width for i in images) + gap * (len(images) - 1), max(i.height for i in images)), 255)
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width + gap
    return out


def save_png(img: Image.Image, name: str) -> None:
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    img.save(EXAMPLES / name, optimize=True)


def strokes_rows(sketcher: Sketcher, scene: Image.Image, face_scene: Image.Image, rows: list) -> None:
    for name, photo in (("scene", scene), ("scene with a 480x600 face", face_scene)):
        drawn = sketcher.draw([sketcher.prepare(photo)])[0]
        ours, filt = enlarge(drawn, photo.size), pencil_filter(photo)
        wo, wf = np.median(stroke_widths(ours)), np.median(stroke_widths(filt))
        rows.append((f"12 MP {name}: median stroke width, ours / filter",
                     f"{wo:.1f} / {wf:.1f} px ({wo / wf:.2f}x), drawn at {drawn_at(sketcher, photo)}"))
        if name == "scene":
            box = (200, 1000, 800, 1400)
            save_png(side_by_side([crop(ours, box), crop(filt, box)]), "crop.png")
            weights = (-2, 0, 2, 4)
            box = (250, 1050, 550, 1450)
            save_png(side_by_side([crop(enlarge(drawn, photo.size, line_weight=lw), box) for lw in weights]),
                     "line-weight.png")
        else:
            x, y = FACE_AT
            box = (x - 60, y + 120, x + FACE_SIZE[0] + 60, y + 520)  # eyes to mouth
            save_png(side_by_side([crop(ours, box), crop(filt, box)]), "face.png")


def drawn_at(sketcher: Sketcher, photo: Image.Image) -> str:
    """The size the model draws this photo at, as WxH."""
    return "x".join(map(str, sketcher.defaults.work_size(photo.size, sketcher.config.stride)))


def time_rows(sketcher: Sketcher, scene: Image.Image, weights: str | None, rows: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "phone.jpg")
        scene.save(path, quality=92)
        ours = end_to_end(sketcher.sketch, path)
        filt = end_to_end(pencil_filter, path)
        rows.append(("12 MP photo decoded, sketched, encoded (PNG), in process: ours / filter",
                     f"{ours:.2f} / {filt:.2f} s ({ours / filt:.1f}x)"))
        start = time.perf_counter()
        pencil_filter(scene)
        rows.append(("pencil filter alone on it", f"{time.perf_counter() - start:.2f} s"))
        w = ["--weights", weights] if weights else []
        sec, peak = timed(["convert", str(path), "-o", str(Path(tmp, "out")), "--device", "cpu", "--overwrite"] + w)
        rows.append(("`sketchify convert` of it, a new process (start-up and model load included)",
                     f"{sec:.2f} s, peak RSS {peak} MiB"))


def rate_rows(sketcher: Sketcher, scenes: list[Path], counts: dict[int, int], rows: list) -> None:
    """Photos/s of convert at each size: BSDS scenes resized to a 4:3 photo of that short side."""
    for short, n in counts.items():
        size = (round(short * 4 / 3), short)
        photos = [phone_photo(scenes[i % len(scenes)], size, sharpen=short >= 1000) for i in range(n)]
        ours, filt = convert_rate(sketcher, photos)
        rows.append((f"`convert`, {n} photos of {size[0]}x{size[1]}, drawn at {drawn_at(sketcher, photos[0])}",
                     f"{ours:.2f} photos/s (filter {filt:.1f}, {filt / ours:.1f}x faster)"))


def likeness_rows(sketcher: Sketcher, n: int, rows: list) -> None:
    """Faces enlarged 8x, sketched with the defaults and scaled back, against the small photo's sketch."""
    from sketchify.perceptual import STLPIPS
    from sketchify.tensors import grey

    judge = STLPIPS("alex")
    small, big, between = [], [], []
    for pair in held_out_faces(sketcher.config, n):
        photo = load_photo(pair.photo)
        ref = load_photo(pair.sketch).convert("L")
        enlarged = photo.resize((photo.width * 8, photo.height * 8), Image.BICUBIC)
        a = grey(sketcher.sketch(photo).resize(ref.size, Image.BICUBIC))
        b = grey(sketcher.sketch(enlarged).resize(ref.size, Image.BICUBIC))
        with torch.no_grad():
            small.append(float(judge(a, grey(ref))))
            big.append(float(judge(b, grey(ref))))
            between.append(float(judge(a, b)))
    size = photo.width * 8
    rows.append((f"{n} held-out FS2K faces, ST-LPIPS to the artist: small photo's sketch / {size} px photo's "
                 f"(drawn at {drawn_at(sketcher, enlarged)}) scaled back",
                 f"{np.mean(small):.3f} / {np.mean(big):.3f} (difference {np.mean(big) - np.mean(small):+.3f})"))
    rows.append(("ST-LPIPS between the two sketches", f"{np.mean(between):.3f}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--faces", type=int, default=20, help="held-out faces for the likeness rows")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-likeness", action="store_true")
    args = ap.parse_args()

    print(f"# {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    sketcher = Sketcher.from_pretrained(args.weights, device="cpu")
    scenes = sorted((DATA / "photos" / "bsds").glob("*.jpg"))
    scene = phone_photo(DATA / "photos" / "bsds" / f"{SCENE}.jpg")
    face = held_out_faces(sketcher.config, 1)[0]
    face_scene = scene.copy()
    face_scene.paste(load_photo(face.photo).resize(FACE_SIZE, Image.LANCZOS), FACE_AT)
    rows: list[tuple[str, str]] = []
    strokes_rows(sketcher, scene, face_scene, rows)
    if not args.skip_likeness:
        likeness_rows(sketcher, args.faces, rows)
    if not args.skip_speed:
        time_rows(sketcher, scene, args.weights, rows)
        rate_rows(sketcher, scenes, {256: 40, 512: 20, 1024: 8, 3000: 3}, rows)
    print("\n| what | result |\n| --- | --- |")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
