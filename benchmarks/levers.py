"""Which inference levers pay on this machine? Times the shipped model's t = 0 forward pass each way.

    python benchmarks/levers.py [--size 512] [--batch 1]

Levers: inference_mode (baseline), channels_last memory format, bf16 autocast, torch.compile, and
torch.jit freeze + optimize_for_inference. Dynamic int8 quantisation covers nn.Linear only, and this model is
all convolutions, so it is not listed. Each lever must also keep the output: the max abs difference from the
baseline sketch is printed beside its speed.
"""

import argparse
import time

import torch

from sketchify.inference import Sketcher


def rate(fn, n: int, seconds: float = 4.0) -> float:
    fn()
    fn()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        done += n
    return done / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--weights", default=None)
    args = ap.parse_args()
    model = Sketcher.from_pretrained(args.weights, device="cpu").model
    x = torch.rand(args.batch, 3, args.size, args.size)
    style = torch.full((args.batch,), model.config.style_index(None))

    def run(m, inp, ctx=None):
        with torch.inference_mode(), (ctx or torch.autocast("cpu", enabled=False)):
            return m(inp, style, 0.0).float()

    base = run(model, x)
    levers = {
        "baseline (fp32, inference_mode)": (lambda: run(model, x)),
        "channels_last": None,
        "bf16 autocast": (lambda: run(model, x, torch.autocast("cpu", dtype=torch.bfloat16))),
        "torch.compile": None,
        "jit freeze + optimize_for_inference": None,
    }
    cl_model = Sketcher.from_pretrained(args.weights, device="cpu").model.to(memory_format=torch.channels_last)
    cl_x = x.contiguous(memory_format=torch.channels_last)
    levers["channels_last"] = lambda: run(cl_model, cl_x)
    try:
        compiled = torch.compile(model)
        levers["torch.compile"] = lambda: run(compiled, x)
    except Exception as e:  # report, do not stop the other measurements
        levers["torch.compile"] = e
    try:
        with torch.inference_mode():
            trace = torch.jit.trace(model.eval(), (x, style, torch.tensor(0.0)), check_trace=False)
            traced = torch.jit.optimize_for_inference(torch.jit.freeze(trace))
        levers["jit freeze + optimize_for_inference"] = lambda: run(lambda a, s, t: traced(a, s, torch.tensor(t)), x)
    except Exception as e:
        levers["jit freeze + optimize_for_inference"] = e
    print(f"{args.size}x{args.size}, batch {args.batch}, {torch.get_num_threads()} threads")
    print("| lever | photos/s | max abs diff |\n| --- | --- | --- |")
    for name, fn in levers.items():
        if isinstance(fn, Exception):
            print(f"| {name} | failed: {type(fn).__name__} | |")
            continue
        try:
            diff = (fn() - base).abs().max().item()
            print(f"| {name} | {rate(fn, args.batch):.1f} | {diff:.4f} |")
        except Exception as e:
            print(f"| {name} | failed: {type(e).__name__}: {str(e).splitlines()[0][:80]} | |")


if __name__ == "__main__":
    main()
