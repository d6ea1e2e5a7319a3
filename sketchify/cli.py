"""The command line: parse, call the library, print. Heavy imports happen inside commands, so --help is fast."""

from __future__ import annotations

import functools
import time
from enum import Enum
from pathlib import Path
from typing import List, Optional, Tuple

import typer
from rich.console import Console
from rich.markup import escape

from .config import DEFAULT_STYLES, ModelConfig
from .errors import SketchifyError
from .images import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, FORMATS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Turn photos into pencil sketches with a hybrid VAE-GAN.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


Format = Enum("Format", {f: f for f in FORMATS}, type=str)


class Split(str, Enum):
    val = "val"
    train = "train"
    all = "all"


WeightsOpt = typer.Option(None, "--weights", "-w", help="Model folder or Hugging Face Hub repo id (default: the shipped weights).")
StyleOpt = typer.Option(None, "--style", "-s", help=f"Drawing style: {', '.join(DEFAULT_STYLES)} (default: the model's, {ModelConfig.default_style}).")
DeviceOpt = typer.Option(Device.auto, "--device", help="Where the model runs; auto picks CUDA, then MPS, then CPU.")
SeedOpt = typer.Option(None, "--seed", help="Seed for eps: the same seed gives the same sketches.")
MaxSideOpt = typer.Option(DEFAULT_MAX_SIDE, "--max-side", help="Never draw a photo's long side larger than this; 0: no limit (large drawings run tile by tile).")
SizeOpt = typer.Option(None, "--size", min=0, help="Short side, in pixels, that photos are drawn at before the sketch is scaled to the photo's size. Default: the model's (240 for the shipped one), the scale its faces were learned at; larger gives finer strokes on big scenes; 0: each photo's own size.")
MaxPixelsOpt = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse images with more pixels than this (decompression-bomb guard).")


def cli_errors(fn):
    """One line on stderr and a non-zero exit for what the user can fix; 130 on Ctrl-C."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SketchifyError as e:
            err.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise SketchifyError(f"--shard {text!r}: expected K/N, e.g. 0/4") from None
    if not (n >= 1 and 0 <= k < n):
        raise SketchifyError(f"--shard {text!r}: need 0 <= K < N")
    return k, n


def load_sketcher(weights, device: Device, max_side: int = DEFAULT_MAX_SIDE, size: int | None = None):
    from .inference import Sketcher

    return Sketcher.from_pretrained(weights, device=device.value, max_side=max_side, size=size)


@app.command()
@cli_errors
def convert(
    inputs: List[Path] = typer.Argument(..., readable=False, help="Photos and folders of photos."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the sketches (created if needed)."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into subfolders, keeping their structure under OUTPUT."),
    style: Optional[str] = StyleOpt,
    seed: Optional[int] = SeedOpt,
    temperature: float = typer.Option(0.0, "--temperature", "-t", min=0.0, help="Noise scale; 0 gives the mean (cleanest) sketch."),
    weights: Optional[str] = WeightsOpt,
    device: Device = DeviceOpt,
    batch_size: int = typer.Option(4, "--batch-size", "-b", min=1, help="Photos of one size drawn together."),
    fmt: Format = typer.Option(Format("png"), "--format", "-f", help="Output image format."),
    suffix: str = typer.Option("", "--suffix", help="Appended to output names (photo.jpg -> photo{suffix}.png)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo sketches that already exist (never touches inputs)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: convert only the K-th (0-based) of N slices of the inputs, for N parallel jobs."),
    max_side: int = MaxSideOpt,
    size: Optional[int] = SizeOpt,
    max_pixels: int = MaxPixelsOpt,
):
    """Convert photos to sketches: sketchify convert photos/ -o sketches/"""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import convert as conv

    started = time.monotonic()
    jobs, problems = conv.plan(inputs, output, recursive=recursive, fmt=fmt.value, suffix=suffix, shard=parse_shard(shard))
    counts = {"converted": 0, "skipped": 0, "failed": 0}
    for r in problems:
        counts[r.status] += 1
        err.print(f"{r.status}: {r.message}", soft_wrap=True, markup=False)
    if not jobs and not problems:
        raise SketchifyError(f"no images found in {', '.join(map(str, inputs))}" + ("" if recursive else " (use --recursive for subfolders)"))
    sketcher = load_sketcher(weights, device, max_side, size) if jobs else None
    bar = Progress(TextColumn("converting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, disable=not err.is_terminal, transient=True)
    try:
        with bar:
            task = bar.add_task("", total=len(jobs))
            for r in conv.run(sketcher, jobs, style=style, seed=seed, temperature=temperature, batch_size=batch_size,
                              fmt=fmt.value, overwrite=overwrite, max_pixels=max_pixels) if jobs else ():
                counts[r.status] += 1
                if r.status == "failed":
                    bar.console.print(f"failed: {r.message}", soft_wrap=True, markup=False)
                bar.advance(task)
    except KeyboardInterrupt:
        err.print(f"interrupted: {counts['converted']} converted before Ctrl-C; run the same command again to finish")
        raise typer.Exit(130) from None
    except conv.OutputError as e:
        err.print(f"[red]error:[/red] {escape(str(e))} after {counts['converted']} converted", soft_wrap=True)
        raise typer.Exit(2) from None
    seconds = time.monotonic() - started
    out.print(f"{counts['converted']} converted, {counts['skipped']} skipped, {counts['failed']} failed "
              f"in {seconds:.1f} s -> {output}", markup=False)
    if counts["failed"]:
        raise typer.Exit(1)


@app.command()
@cli_errors
def sample(
    image: Path = typer.Argument(..., readable=False, help="One photo."),
    n: int = typer.Option(5, "--n", "-n", min=1, max=64, help="How many sketches."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="Folder for STEM_0.png ... and STEM_sheet.png."),
    style: Optional[str] = StyleOpt,
    seed: Optional[int] = SeedOpt,
    temperature: float = typer.Option(1.0, "--temperature", "-t", min=0.0, help="Noise scale: higher varies more."),
    weights: Optional[str] = WeightsOpt,
    device: Device = DeviceOpt,
    max_side: int = MaxSideOpt,
    size: Optional[int] = SizeOpt,
    max_pixels: int = MaxPixelsOpt,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing sample files."),
):
    """Several different sketches of one photo, and a contact sheet of them."""
    from .images import load_photo, save_atomic
    from .sheet import contact_sheet

    photo = load_photo(image, max_pixels=max_pixels)
    names = [output / f"{image.stem}_{i}.png" for i in range(n)] + [output / f"{image.stem}_sheet.png"]
    if image.resolve() in {p.resolve() for p in names}:
        raise SketchifyError(f"{image}: its samples would overwrite it; choose another --output")
    existing = [p for p in names if p.exists()]
    if existing and not overwrite:
        raise SketchifyError(f"{existing[0]} already exists; pass --overwrite or choose another --output")
    sketcher = load_sketcher(weights, device, max_side, size)
    sketches = sketcher.samples(photo, n, style=style, seed=seed, temperature=temperature)
    try:
        output.mkdir(parents=True, exist_ok=True)
        for sketch, path in zip(sketches, names):
            save_atomic(sketch, path, "png")
        save_atomic(contact_sheet([photo, *sketches]), names[-1], "png")
    except OSError as e:
        raise SketchifyError(f"cannot write to {output}: {e.strerror or e}") from None
    out.print(f"{n} sketches of {image} -> {output}/{image.stem}_0.png ... and {names[-1].name}", markup=False)


@app.command()
@cli_errors
def train(
    data: List[Path] = typer.Argument(..., help="Folders with photos/ and sketches/ (matching names) and optional styles.csv (name,style)."),
    output: Path = typer.Option(..., "--output", "-o", help="Run folder: training.json, checkpoint, log, sample grids, and the final model/."),
    config: Optional[Path] = typer.Option(None, "--config", help="A training.json to start from (e.g. weights/training.json); --set overrides it."),
    settings: List[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Override one setting of the model's shape or its training, e.g. --set lr=1e-4 --set loss_weights.adv=0.2; repeatable."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Same as --set epochs=N: passes over the training pairs (default 30)."),
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Start from a trained model: a model folder, a run folder, a checkpoint, or a Hub repo id; --set may grow it."),
    default_style: Optional[str] = typer.Option(None, "--default-style", help="Style of pairs that styles.csv does not name (default: the model's default)."),
    contours: Optional[Tuple[Path, Path]] = typer.Option(None, "--contours", metavar="PHOTOS BOUNDARIES", help="Scene photos and the boundary maps people drew on them (BSDS500 layout, NAME.png, 255 = every annotator): trains the contour style."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Train for about this many minutes: the epochs are cut to what fits at the pace so far, so the learning rate still decays to the end; then export."),
    resume: bool = typer.Option(False, "--resume", help="Continue OUTPUT's run from its checkpoint; settings given with --set or --config replace the checkpoint's, and each change is printed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again in an OUTPUT that holds a run."),
    device: Device = DeviceOpt,
    workers: int = typer.Option(0, "--workers", min=0, help="Processes that prepare batches beside training; on a GPU machine 2-4 keep the GPU busy."),
):
    """Train encoder, generator and discriminator on photo/sketch pairs. Runs under torchrun for several GPUs."""
    from .train import TrainOptions
    from .train import train as run_training

    opts = TrainOptions(data=data, run=output, config=config, settings=[*settings, *([f"epochs={epochs}"] if epochs else [])],
                        init_from=init_from, contours=contours, default_style=default_style, resume=resume,
                        overwrite=overwrite, device=device.value, time_limit_min=time_limit, workers=workers,
                        progress=err.is_terminal, log=out.print)
    model = run_training(opts)
    out.print(f"done: sketchify convert photos/ -o sketches/ --weights {model}", markup=False)


@app.command("eval")
@cli_errors
def evaluate(
    data: List[Path] = typer.Argument(..., help="Folders with photos/ and sketches/ (and optional styles.csv)."),
    split: Split = typer.Option(Split.val, "--split", help="Score the held-out pairs (val), the training pairs, or all."),
    default_style: Optional[str] = typer.Option(None, "--default-style", help="Style of pairs that styles.csv does not name."),
    n: int = typer.Option(4, "--n", min=2, help="Samples per photo for the diversity score."),
    seed: int = typer.Option(0, "--seed", help="Seed for the samples' eps."),
    temperature: float = typer.Option(1.0, "--temperature", "-t", min=0.0, help="Noise scale of the samples."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score at most this many pairs per folder."),
    weights: Optional[str] = WeightsOpt,
    device: Device = DeviceOpt,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the scores to this JSON file."),
):
    """Score a model against reference sketches (MAE, SSIM, diversity) beside a blank page and the pencil filter."""
    import json

    from rich.table import Table

    from .config import TrainConfig
    from .data import find_pairs, split as split_pairs
    from .evaluate import evaluate as score

    sketcher = load_sketcher(weights, device)
    cfg = sketcher.config
    pairs = []
    for d in data:
        found = find_pairs(d, cfg, default_style)
        train_pairs, val_pairs = split_pairs(found, TrainConfig.val_fraction)  # the split training used
        pairs += {Split.val: val_pairs, Split.train: train_pairs, Split.all: found}[split][:limit]
    if not pairs:
        raise SketchifyError(f"no {split.value} pairs in {', '.join(map(str, data))}")
    from rich.progress import Progress

    with Progress(console=err, disable=not err.is_terminal, transient=True) as bar:
        task = bar.add_task("scoring", total=len(pairs))
        results = score(sketcher, pairs, n_samples=n, seed=seed, temperature=temperature,
                        progress=lambda: bar.advance(task))
    table = Table(title=f"{len(pairs)} {split.value} pairs; MAE lower is better, SSIM higher is better")
    for col in ("style", "n", "method", "MAE", "SSIM", "worst MAE", "worst SSIM", "diversity"):
        table.add_column(col, justify="left" if col in ("style", "method") else "right", no_wrap=True)
    fmt = lambda d, k: f"{d[k]:.4f}" if k in d else ""  # noqa: E731
    for style, methods in results.items():
        for i, (method, m) in enumerate(methods.items()):
            table.add_row(style if i == 0 else "", str(m["n"]) if i == 0 else "", method, fmt(m, "mae"), fmt(m, "ssim"),
                          fmt(m, "worst_mae"), fmt(m, "worst_ssim"), fmt(m, "diversity"))
    Console(highlight=False, width=max(out.width, 100)).print(table)  # never wrap a method's name
    if json_out:
        json_out.write_text(json.dumps(results, indent=2) + "\n")


def main():
    app()
