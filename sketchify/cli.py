"""The command line: parse, call the library, print. Heavy imports happen inside commands, so --help is fast."""

from __future__ import annotations

import functools
import signal
import sys
import threading
import time
from enum import Enum
from pathlib import Path
from typing import List, Optional, Tuple

import typer
from rich.console import Console
from rich.markup import escape

from .config import DEFAULT_STYLES, ModelConfig
from .errors import SketchifyError, one_line, positive
from .images import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Turn photos into pencil sketches with a hybrid VAE-GAN.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Split(str, Enum):
    val = "val"
    train = "train"
    all = "all"


# metavars name what a value is; typer's defaults show Python annotations (<bool>, <list[Path]>)
WeightsOpt = typer.Option(None, "--weights", "-w", metavar="FOLDER|REPO", help="Model folder, training run folder, or Hugging Face Hub repo id (default: the shipped weights).")
StyleOpt = typer.Option(None, "--style", "-s", metavar="STYLE", help=f"Drawing style: {', '.join(DEFAULT_STYLES)} (default: the model's, {ModelConfig.default_style}).")
DeviceOpt = typer.Option(Device.auto, "--device", metavar="auto|cpu|cuda|mps", help="Where the model runs; auto picks CUDA, then MPS, then CPU.")
SeedOpt = typer.Option(None, "--seed", metavar="N", min=0, max=2**64 - 1, help="Seed for eps: the same seed gives the same sketches.")
MaxSideOpt = typer.Option(DEFAULT_MAX_SIDE, "--max-side", metavar="PX", help="Never draw a photo's long side larger than this; 0: no limit (large drawings run tile by tile).")
SizeOpt = typer.Option(None, "--size", metavar="PX", min=0, help="Short side, in pixels, that photos are drawn at before the sketch is scaled to the photo's size. Default: the model's (240 for the shipped one), the scale its faces were learned at; larger gives finer strokes on big scenes; 0: each photo's own size.")
MaxPixelsOpt = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", metavar="N", min=1, help="Refuse images with more pixels than this (decompression-bomb guard).")
_argument_type, _option_type = typer.core.TyperArgument.display_type_rich, typer.core.TyperOption.display_type_rich
# typer shows Python annotations (<list[Path]>, <bool>) even beside a metavar, and for --help; the metavar says enough
typer.core.TyperArgument.display_type_rich = lambda self, ctx: None if self.metavar else _argument_type(self, ctx)
typer.core.TyperOption.display_type_rich = lambda self, ctx: None if self.is_flag else _option_type(self, ctx)


def version(show: bool) -> None:
    if show:
        from . import __version__

        out.print(f"sketchify {__version__}", markup=False)
        raise typer.Exit()


@app.callback()
def main_options(_: bool = typer.Option(False, "--version", callback=version, is_eager=True,
                                        help="Print the version and exit.")):
    """Turn photos into pencil sketches with a hybrid VAE-GAN."""


def say(text: str, console: Console | None = None) -> None:
    (console or err).print(one_line(text), soft_wrap=True, markup=False)


STOP = {"by": "Ctrl-C"}


def on_sigterm(signum, frame):
    """SIGTERM, as schedulers send on preemption, is handled as Ctrl-C is."""
    STOP["by"] = "SIGTERM"
    raise KeyboardInterrupt


def cli_errors(fn):
    """One line on stderr and a non-zero exit for what the user can fix; 130 on Ctrl-C or SIGTERM."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None  # this process is ours: --max-pixels is checked as each image opens
        old = signal.signal(signal.SIGTERM, on_sigterm) if threading.current_thread() is threading.main_thread() else None
        try:
            return fn(*args, **kwargs)
        except SketchifyError as e:
            err.print(f"[red]error:[/red] {escape(one_line(e))}", soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)

    return wrapper


def load_sketcher(weights, device: Device, max_side: int = DEFAULT_MAX_SIDE, size: int | None = None):
    from .inference import Sketcher

    return Sketcher.from_pretrained(weights, device=device.value, max_side=max_side, size=size)


@app.command()
@cli_errors
def convert(
    inputs: List[Path] = typer.Argument(..., readable=False, metavar="INPUT", help="Photos and folders of photos; - reads one photo from standard input."),
    output: Path = typer.Option(..., "--output", "-o", metavar="DIR", help="Folder for the sketches (created if needed); - writes one sketch to standard output."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into subfolders, keeping their structure under OUTPUT."),
    style: Optional[str] = StyleOpt,
    seed: Optional[int] = SeedOpt,
    temperature: float = typer.Option(0.0, "--temperature", "-t", metavar="T", min=0.0, help="Noise scale; 0 gives the mean (cleanest) sketch."),
    weights: Optional[str] = WeightsOpt,
    device: Device = DeviceOpt,
    batch_size: int = typer.Option(4, "--batch-size", "-b", metavar="N", min=1, help="Photos of one size drawn together."),
    fmt: str = typer.Option("png", "--format", "-f", metavar="png|jpg|webp", help="Output image format (jpeg and any case work too)."),
    quality: Optional[int] = typer.Option(None, "--quality", "-q", metavar="Q", min=1, max=100, help="jpg/webp quality, 1-100 (default: jpg 92; webp lossless, exact grey like png)."),
    suffix: str = typer.Option("", "--suffix", metavar="TEXT", help="Appended to output names (photo.jpg -> photo{suffix}.png)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo sketches that already exist (never touches inputs)."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="K/N", help="Convert only shard K (0-based) of N, chosen by a hash of each file's path, for N parallel jobs."),
    max_side: int = MaxSideOpt,
    size: Optional[int] = SizeOpt,
    max_pixels: int = MaxPixelsOpt,
):
    """Convert photos to sketches: sketchify convert photos/ -o sketches/"""
    from . import convert as conv
    from .images import check_quality, format_name

    started = time.monotonic()
    fmt = format_name(fmt)
    check_quality(quality, fmt)
    positive("--temperature", temperature, zero=True)
    draw = dict(style=style, seed=seed, temperature=temperature, fmt=fmt, quality=quality)
    if str(output) == "-" or any(str(i) == "-" for i in inputs):
        return convert_stream(inputs, output, load_sketcher(weights, device, max_side, size), max_pixels, **draw)
    plan = conv.plan(inputs, output, recursive=recursive, fmt=fmt, suffix=suffix, shard=conv.parse_shard(shard))
    counts = {"converted": 0, "skipped": 0, "failed": 0}
    for r in plan.problems:
        counts[r.status] += 1
        say(f"{r.status}: {r.message}")
    for r in plan.renamed:
        say(f"renamed: {r.message}")
    if not plan.found and not plan.problems:
        raise SketchifyError(f"no images found in {', '.join(map(str, inputs))}" + ("" if recursive else " (use --recursive for subfolders)"))
    sketcher = load_sketcher(weights, device, max_side, size) if plan.jobs else None
    redrawn, written = [], []  # skipped sketches drawn with other settings; sketches on disk
    try:
        for r in run_batch(conv, sketcher, plan.jobs, dict(draw, batch_size=batch_size, overwrite=overwrite,
                                                           max_pixels=max_pixels, written=written)):
            counts[r.status] += 1
            if r.status == "failed":
                say(f"failed: {r.message}")
            elif r.status == "skipped" and r.message != "exists":
                redrawn.append(r)
    except KeyboardInterrupt:
        say(f"interrupted: {len(written)} converted before {STOP['by']}; run the same command again to finish")
        raise typer.Exit(130) from None
    except conv.OutputError as e:
        err.print(f"[red]error:[/red] {escape(one_line(e))} after {counts['converted']} converted", soft_wrap=True)
        raise typer.Exit(2) from None
    say(f"{counts['converted']} converted, {counts['skipped']} skipped, {counts['failed']} failed "
        f"in {time.monotonic() - started:.1f} s -> {output}{conv.unsearched_note(plan)}", out)
    if redrawn:
        say(conv.redrawn_note(redrawn))
    if counts["failed"]:
        raise typer.Exit(1)


def run_batch(conv, sketcher, jobs, options):
    """conv.run's results with a progress bar; after a stop, the sketches being written are finished and counted."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not jobs:
        return
    bar = Progress(TextColumn("converting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, disable=not err.is_terminal, transient=True)
    results = conv.run(sketcher, jobs, **options)
    with bar:
        task = bar.add_task("", total=len(jobs))
        try:
            for r in results:
                yield r
                bar.advance(task)
        except KeyboardInterrupt:
            yield from conv.drain(results)
            raise


def convert_stream(inputs, output, sketcher, max_pixels, **draw):
    """One photo from a file or standard input (-) to standard output (-)."""
    from .convert import stream

    if len(inputs) != 1 or str(output) != "-":
        raise SketchifyError("- (standard input or output) takes one photo: sketchify convert - -o - < a.jpg > a.png")
    source = sys.stdin.buffer if str(inputs[0]) == "-" else inputs[0]
    sys.stdout.buffer.write(stream(sketcher, source, max_pixels=max_pixels, **draw))
    sys.stdout.buffer.flush()


@app.command()
@cli_errors
def sample(
    image: Path = typer.Argument(..., readable=False, metavar="PHOTO", help="One photo."),
    n: int = typer.Option(5, "--n", "-n", metavar="N", min=1, max=64, help="How many sketches."),
    output: Path = typer.Option(Path("."), "--output", "-o", metavar="DIR", help="Folder for STEM_0.png ... and STEM_sheet.png."),
    style: Optional[str] = StyleOpt,
    seed: Optional[int] = SeedOpt,
    temperature: Optional[float] = typer.Option(None, "--temperature", "-t", metavar="T", min=0.0, help="Noise scale: higher varies more (default: the model's sample_temperature)."),
    weights: Optional[str] = WeightsOpt,
    device: Device = DeviceOpt,
    max_side: int = MaxSideOpt,
    size: Optional[int] = SizeOpt,
    max_pixels: int = MaxPixelsOpt,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing sample files."),
):
    """Several different sketches of one photo, and a contact sheet of them."""
    from .files import file_id
    from .images import load_photo
    from .sheet import save_samples

    positive("--temperature", temperature, zero=True)
    if output.exists() and not output.is_dir():
        raise SketchifyError(f"-o {output}: is a file, not a folder; choose a folder for the samples")
    names = [output / f"{image.stem}_{i}.png" for i in range(n)] + [output / f"{image.stem}_sheet.png"]
    if file_id(image) in {file_id(p) for p in names}:
        raise SketchifyError(f"{image}: its samples would overwrite it; choose another --output")
    existing = [p for p in names if p.exists()]
    if existing and not overwrite:
        raise SketchifyError(f"{existing[0]} already exists; pass --overwrite or choose another --output")
    photo = load_photo(image, max_pixels=max_pixels)
    sketcher = load_sketcher(weights, device, max_side, size)
    sketches = sketcher.samples(photo, n, style=style, seed=seed, temperature=temperature)
    save_samples(photo, sketches, names)
    say(f"{n} sketches of {image} -> {output}/{image.stem}_0.png ... and {names[-1].name}", out)


@app.command()
@cli_errors
def train(
    data: List[Path] = typer.Argument(..., metavar="DATA", help="Folders with photos/ and sketches/ (matching names) and optional styles.csv (name,style)."),
    output: Path = typer.Option(..., "--output", "-o", metavar="RUN", help="Run folder: training.json, checkpoint, log, sample grids, and the final model/."),
    config: Optional[Path] = typer.Option(None, "--config", metavar="TRAINING.json", help="A training.json to start from (e.g. weights/training.json); --set overrides it."),
    settings: List[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Override one setting of the model's shape or its training, e.g. --set lr=1e-4 --set loss_weights.adv=0.2; repeatable."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, metavar="N", help="Same as --set epochs=N: passes over the training pairs (default 30)."),
    init_from: Optional[str] = typer.Option(None, "--init-from", metavar="SOURCE", help="Start from a trained model: a model folder, a run folder, a checkpoint, or a Hub repo id; --set may grow it."),
    default_style: Optional[str] = typer.Option(None, "--default-style", metavar="STYLE", help="Style of pairs that styles.csv does not name (default: the model's default)."),
    contours: Optional[Tuple[Path, Path]] = typer.Option(None, "--contours", metavar="PHOTOS BOUNDARIES", help="Scene photos and the boundary maps people drew on them (BSDS500 layout, NAME.png, 255 = every annotator): trains the contour style."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", metavar="MINUTES", help="Train for about this many minutes: the epochs are cut to what fits at the pace so far, so the learning rate still decays to the end; then export."),
    resume: bool = typer.Option(False, "--resume", help="Continue OUTPUT's run from its checkpoint; settings given with --set or --config replace the checkpoint's, and each change is printed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again in an OUTPUT that holds a run."),
    device: Device = DeviceOpt,
    workers: int = typer.Option(0, "--workers", min=0, metavar="N", help="Processes that prepare batches beside training; on a GPU machine 2-4 keep the GPU busy."),
):
    """Train encoder, generator and discriminator on photo/sketch pairs. Runs under torchrun for several GPUs."""
    from .train import TrainOptions
    from .train import train as run_training

    opts = TrainOptions(data=data, run=output, config=config, settings=[*settings, *([f"epochs={epochs}"] if epochs else [])],
                        init_from=init_from, contours=contours, default_style=default_style, resume=resume,
                        overwrite=overwrite, device=device.value, time_limit_min=time_limit, workers=workers,
                        progress=err.is_terminal, log=out.print)
    positive("--time-limit", time_limit)
    try:
        model = run_training(opts)
    except OSError as e:  # a full disk, a read-only folder: what training was writing, and why
        raise SketchifyError(f"{e.filename or output}: {e.strerror or e}; training stopped (the last checkpoint "
                             "is whole: --resume continues from it)") from None
    out.print(f"done: sketchify convert photos/ -o sketches/ --weights {model}", markup=False)


@app.command("eval")
@cli_errors
def evaluate(
    data: Optional[List[Path]] = typer.Argument(None, metavar="[DATA]...", help="Folders with photos/ and sketches/ (and optional styles.csv)."),
    split: Split = typer.Option(Split.all, "--split", metavar="all|val|train", help="Score every pair (all), or, on the model's own training data, the held-out pairs (val) or the training pairs."),
    default_style: Optional[str] = typer.Option(None, "--default-style", metavar="STYLE", help="Style of pairs that styles.csv does not name."),
    contours: Optional[Tuple[Path, Path]] = typer.Option(None, "--contours", metavar="PHOTOS BOUNDARIES", help="Also score contour F of the contour style on scene photos against the boundary maps of the same names (same --split)."),
    groundtruth: Optional[Path] = typer.Option(None, "--groundtruth", metavar="GT_DIR", help="With --contours: BSDS500's NAME.mat files (every annotator apart); also scores the benchmark's ODS, OIS and AP."),
    n: int = typer.Option(4, "--n", min=2, metavar="N", help="Samples per photo for the diversity score."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Seed for the samples' eps."),
    temperature: Optional[float] = typer.Option(None, "--temperature", "-t", min=0.0, metavar="T", help="Noise scale of the samples (default: the model's sample_temperature)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, metavar="N", help="Score at most this many pairs per folder."),
    weights: Optional[str] = WeightsOpt,
    device: Device = DeviceOpt,
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE.json", help="Also write the scores to this JSON file."),
):
    """Score a model against reference sketches (ST-LPIPS, KID, MAE, SSIM, diversity) beside a blank page and the
    pencil filter, and optionally scenes against human contours (contour F). Needs pip install 'sketchify\\[train]'."""
    import json

    from .config import TrainConfig
    from .data import find_contours, find_pairs, readable, split as split_pairs

    positive("--temperature", temperature, zero=True)
    if json_out and (json_out.is_dir() or not json_out.absolute().parent.is_dir()):
        raise SketchifyError(f"--json {json_out}: {'is a folder' if json_out.is_dir() else 'its folder does not exist'}")
    if not data and not contours:
        raise SketchifyError("nothing to score: give folders of photo/sketch pairs, --contours PHOTOS BOUNDARIES, or both")
    if groundtruth and not contours:
        raise SketchifyError("--groundtruth scores scenes: give --contours PHOTOS BOUNDARIES too")
    sketcher = load_sketcher(weights, device)
    cfg = sketcher.config

    def pick(found: list) -> list:
        train_pairs, val_pairs = split_pairs(found, TrainConfig.val_fraction)  # the split training used
        return {Split.val: val_pairs, Split.train: train_pairs, Split.all: found}[split][:limit]

    pairs, unmatched = [], []
    for d in data or []:
        pairs += pick(find_pairs(d, cfg, default_style, unmatched=unmatched))
    if unmatched:
        say(f"skipped: {len(unmatched)} photos without a reference sketch: {', '.join(map(str, unmatched[:5]))}"
            + (", ..." if len(unmatched) > 5 else ""))
    scenes = pick(find_contours(*contours, cfg)) if contours else []
    pairs, unreadable = readable(pairs)
    scenes, unreadable_scenes = readable(scenes)
    for line in unreadable + unreadable_scenes:
        say(f"skipped: {line}")
    if data and not pairs:
        raise SketchifyError(f"no {split.value} pairs in {', '.join(map(str, data))}")
    if contours and not scenes:
        raise SketchifyError(f"no {split.value} photos with a boundary map in {contours[0]} and {contours[1]}")
    from rich.progress import Progress

    from .evaluate import Judges, evaluate as score, evaluate_contours, score_tables

    results = {}
    with Progress(console=err, disable=not err.is_terminal, transient=True) as bar:
        task = bar.add_task("scoring", total=len(pairs) + len(scenes))
        if pairs:
            results = score(sketcher, pairs, judges=Judges.load(), n_samples=n, seed=seed, temperature=temperature,
                            progress=lambda: bar.advance(task))
        if scenes:
            results["contours"] = evaluate_contours(sketcher, scenes, groundtruth=groundtruth,
                                                    progress=lambda: bar.advance(task))
    console = Console(highlight=False, width=max(out.width, 120))  # never wrap a method's name
    for table in score_tables(results, f"{len(pairs)} {split.value} pairs ({len(unmatched)} photos without a "
                              f"reference, {len(unreadable)} unreadable, left out)", f"{len(scenes)} {split.value} scenes"):
        console.print(table)
    if json_out:
        json_out.write_text(json.dumps(results, indent=2) + "\n")


def main():
    app()
