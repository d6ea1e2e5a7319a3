"""Speed and memory of sketchify on this machine. Not a test: run it by hand and paste the table.

    python benchmarks/bench.py                 # shipped weights, CPU
    python benchmarks/bench.py --device cuda   # GPU, fp32 and bf16

    python benchmarks/bench.py --convert-only  # just the end-to-end floors (about 30 s)

Prints a Markdown table: `sketchify convert` of a folder of 80 JPEG photos end to end (decode, draw,
enlarge, encode; start-up excluded: the model is loaded and warm) at 256x256, 512x512 and 1024x1024 with the
defaults, each with the size it is drawn at; photos/s (t = 0, default style) of the model alone at several
sizes for batch size 1 and the best batch size, the same for the classical pencil filter, model load time, a cold
`sketchify convert` of one photo, `sketchify --help`, peak memory for a 4000x3000 photo, and training
images/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sketchify import convert
from sketchify.images import pencil_filter
from sketchify.inference import Sketcher


def photo(size: int, seed: int = 0) -> Image.Image:
    """A photo-like test image: smooth gradients plus detail, so JPEG and the model do real work."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(6 * x + c) * np.cos(4 * y - c) for c in (0, 1, 2)], -1) * 100 + 128
    return Image.fromarray(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))


def rate(fn, n_items: int, min_seconds: float = 3.0) -> float:
    fn()  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        fn()
        done += n_items
    return done / (time.perf_counter() - start)


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of one sketchify process.

    Read from /proc/self/status (VmHWM) inside the child: getrusage's ru_maxrss survives exec on Linux, so it
    would report this benchmark's own peak instead.
    """
    probe = ("import runpy, sys\n"
             f"sys.argv = {['sketchify'] + cmd!r}\n"
             "try:\n    runpy.run_module('sketchify', run_name='__main__')\n"
             "finally:\n    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
             "    print('MAXRSS', hwm, file=sys.stderr)\n")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed: {proc.stderr[-500:]}")
    peak_kib = int(proc.stderr.rsplit("MAXRSS", 1)[1].split()[0])
    return seconds, peak_kib // 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="256,512,1024")
    ap.add_argument("--batches", default="1,2,4,8")
    ap.add_argument("--train-steps", type=int, default=135, help="one epoch of the default run: 1079 pairs / 8")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--convert-only", action="store_true", help="only the end-to-end `convert` rows")
    ap.add_argument("--folder", type=int, default=80, help="photos in the end-to-end folder")
    args = ap.parse_args()

    rows: list[tuple[str, str]] = []
    t = time.perf_counter()
    sketcher = Sketcher.from_pretrained(args.weights, device=args.device)
    rows.append(("model load (warm process)", f"{time.perf_counter() - t:.2f} s"))
    cpu = platform.processor() or platform.machine()
    print(f"# {cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"device {args.device}")

    for size in (256, 512, 1024):
        drawn = sketcher.defaults.work_size((size, size), sketcher.config.stride)
        how = f"the defaults: drawn at {drawn[0]}x{drawn[1]}"
        r = convert_rate(args.weights, args.device, size, None, args.folder)
        rows.append((f"`convert` of {args.folder} {size}x{size} JPEGs, {how}", f"{r:.1f} photos/s"))
    if args.convert_only:
        return print_rows(rows)

    precisions = ["fp32"] + (["bf16"] if args.device == "cuda" else [])
    for size in map(int, args.sizes.split(",")):
        img = photo(size)
        filt = rate(lambda img=img: pencil_filter(img), 1)
        for prec in precisions:
            bf16 = prec == "bf16"
            ctx = torch.autocast(args.device, dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
            best = (0.0, 1)
            for b in map(int, args.batches.split(",")):
                imgs = [img] * b
                with ctx:
                    r = rate(lambda imgs=imgs: sketcher.sketch_batch(imgs), b)
                if b == 1:
                    one = r
                best = max(best, (r, b))
            rows.append((f"{size}x{size} model {prec}, batch 1", f"{one:.1f} photos/s"))
            rows.append((f"{size}x{size} model {prec}, best batch ({best[1]})", f"{best[0]:.1f} photos/s"))
        rows.append((f"{size}x{size} pencil filter", f"{filt:.1f} photos/s (model/filter = {one / filt:.2f})"))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo(512).save(tmp / "one.jpg", quality=90)
        big = photo(1000).resize((4000, 3000), Image.BICUBIC)
        big.save(tmp / "big.jpg", quality=90)
        w = ["--weights", args.weights] if args.weights else []
        sec, _ = timed(["--help"])
        rows.append(("`sketchify --help`", f"{sec:.2f} s"))
        sec, _ = timed(["convert", str(tmp / "one.jpg"), "-o", str(tmp / "o1"), "--device", args.device] + w)
        rows.append(("cold `sketchify convert` of one 512x512 photo", f"{sec:.2f} s"))
        for max_side in ("1024", "0"):
            sec, peak = timed(["convert", str(tmp / "big.jpg"), "-o", str(tmp / f"o{max_side}"), "--max-side", max_side,
                               "--device", args.device, "--overwrite"] + w)
            how = "drawn at 1024 and scaled up" if max_side != "0" else "full size, tiled"
            rows.append((f"4000x3000 photo, --max-side {max_side} ({how})", f"{sec:.2f} s, peak RSS {peak} MiB"))

    if not args.skip_train:
        speed = train_rate(args.device, args.train_steps)
        rows.append(("training, default config (batch 8, 128 px crops)", f"{speed:.1f} images/s"))

    print_rows(rows)


def print_rows(rows: list[tuple[str, str]]) -> None:
    print("\n| what | result |\n| --- | --- |")
    for k, v in rows:
        print(f"| {k} | {v} |")


def convert_rate(weights: str | None, device: str, size: int, draw: int | None, n: int) -> float:
    """Photos/s of convert.run (what `sketchify convert` runs) over a folder of n JPEG photos, with its
    default batch size and threads; the model is loaded and warmed up first, as start-up is not counted."""
    sketcher = Sketcher.from_pretrained(weights, device=device, size=draw)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "photos")
        src.mkdir()
        for i in range(n):
            photo(size, seed=i).save(src / f"{i:03d}.jpg", quality=90)
        jobs = convert.plan_outputs([src], Path(tmp, "sketches")).jobs
        list(convert.run(sketcher, jobs[:4]))  # warm-up: oneDNN picks its kernels on the first batch
        start = time.perf_counter()
        results = list(convert.run(sketcher, jobs, output=convert.Output(overwrite=True)))
        seconds = time.perf_counter() - start
    failed = [r.message for r in results if r.status != "converted"]
    if failed:
        raise SystemExit(f"convert failed: {failed[:3]}")
    return n / seconds


def train_rate(device: str, steps: int) -> float:
    """Training pairs per second of the full default step: both discriminators and the perceptual term."""
    from sketchify.config import ModelConfig, TrainConfig
    from sketchify.losses import PerceptualLoss
    from sketchify.model import Discriminator, SketchModel
    from sketchify.perceptual import NETS
    from sketchify.step import Batch, GeneratorForward, make_optimizers, train_step

    shape, cfg = ModelConfig(), TrainConfig()
    dev = torch.device(device)
    model = SketchModel(shape).to(dev)
    disc = Discriminator(shape, feature_channels=NETS["alex"][1]).to(dev)
    perceptual = PerceptualLoss(cfg.perceptual_net).to(dev)
    opt_g, opt_d = make_optimizers(model, disc, cfg)
    s, n = cfg.image_size, cfg.batch_size
    batch = Batch(torch.rand(n, 3, s, s), torch.zeros(n, dtype=torch.long), torch.rand(n, 1, s, s)).to(dev)
    step = lambda: train_step(GeneratorForward(model), disc, opt_g, opt_d, batch, cfg, styles=shape.styles,
                              perceptual=perceptual, trunk=perceptual.lpips)
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * n / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
