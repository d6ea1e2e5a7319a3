"""The ONNX export beside PyTorch: does onnxruntime draw what `sketchify convert` draws, and how fast, on 2 cores.
Not a test: run it by hand and paste the table (needs pip install -e '.[export]').

    python benchmarks/onnx_speed.py                    # shipped weights, every style, example photos
    python benchmarks/onnx_speed.py --styles bold-ink  # one style

1. Agreement: each example photo is resized to sides that are multiples of 16 with the short side at 240, so
   that `sketchify convert --size 240` draws it as it is; the export of each style runs on the same pixels;
   the two sketches (8-bit) are compared: max and mean absolute difference, in 1/255.
2. Speed: the model alone at t = 0 on random photos, batch 1, 2 threads each, the best of 10 calls taking
   turns: PyTorch as Sketcher runs it (sketchify.fast, channels_last, inference_mode) and onnxruntime's CPU
   provider on the export.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sketchify.export import export_onnx
from sketchify.inference import Sketcher
from sketchify.serialization import default_weights

ROOT = Path(__file__).resolve().parents[1]
THREADS = 2


def best_ms(fns: list, rounds: int = 10) -> list[float]:
    """The fastest of `rounds` calls of each fn, in ms, the fns taking turns (after a warm-up call each): on
    shared cores the best time is what the code costs, the mean mostly what the neighbours did meanwhile."""
    best = [float("inf")] * len(fns)
    for fn in fns:
        fn()
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], 1000 * (time.perf_counter() - start))
    return best


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def on_grid(photo: Image.Image, short: int = 240, stride: int = 16) -> Image.Image:
    s = short / min(photo.size)
    return photo.resize(tuple(max(stride, round(v * s / stride) * stride) for v in photo.size), Image.BICUBIC)


def agreement(onnx_file: Path, style: str, photos: list[Path], work: Path) -> tuple[float, float]:
    """(max, mean) |ONNX - convert| in 1/255 over the photos."""
    inputs = work / f"in-{style}"
    inputs.mkdir()
    for p in photos:
        on_grid(Image.open(p).convert("RGB")).save(inputs / f"{p.stem}.png")
    out = work / f"out-{style}"
    subprocess.run([sys.executable, "-m", "sketchify", "convert", str(inputs), "-o", str(out), "--size", "240",
                    "--style", style, "--device", "cpu"], check=True, cwd=ROOT, capture_output=True)
    sess = session(onnx_file)
    diffs = []
    for p in sorted(inputs.glob("*.png")):
        x = np.asarray(Image.open(p), np.float32).transpose(2, 0, 1)[None] / 255
        got = np.rint(sess.run(None, {"photo": x})[0][0, 0] * 255)
        want = np.asarray(Image.open(out / p.name), np.float32)
        diffs.append(np.abs(got - want))
    return max(d.max() for d in diffs), float(np.mean([d.mean() for d in diffs]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", nargs="*", default=None)
    parser.add_argument("--sizes", nargs="*", type=int, default=[256, 512, 1024])
    parser.add_argument("--speed-only", action="store_true", help="skip the comparison with convert")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    sketcher = Sketcher.from_pretrained(default_weights(), device="cpu")
    styles = args.styles or list(sketcher.styles)
    photos = sorted((ROOT / "examples" / "photos").glob("*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"| style | max diff (1/255) | mean diff (1/255) | ({len(photos)} example photos, convert --size 240) |")
        print("| --- | --- | --- | --- |")
        files = {}
        for style in styles:
            files[style] = work / f"{style}.onnx"
            export_onnx(sketcher, files[style], style=style)
            if not args.speed_only:
                worst, mean = agreement(files[style], style, photos, work)
                print(f"| {style} | {worst:.0f} | {mean:.4f} | |")

        style = styles[0]
        fast = sketcher._fast_model(sketcher.config.style_index(style))
        sess = session(files[style])
        print(f"\n| size | PyTorch {torch.__version__} ms | onnxruntime ms | speed-up "
              f"| ({style}, batch 1, {THREADS} threads) |")
        print("| --- | --- | --- | --- | --- |")
        for side in args.sizes:
            x = torch.rand(1, 3, side, side)
            xc = x.contiguous(memory_format=torch.channels_last)

            def pytorch(xc=xc):
                with torch.inference_mode():
                    fast(xc, 0.0, None)

            feed = {"photo": x.numpy()}
            t_torch, t_ort = best_ms([pytorch, lambda feed=feed: sess.run(None, feed)])
            print(f"| {side}x{side} | {t_torch:.0f} | {t_ort:.0f} | {t_torch / t_ort:.2f}x | |")


if __name__ == "__main__":
    main()
