"""The command line: parse, call the library, print. Heavy imports happen inside commands, so --help is fast."""

from __future__ import annotations

import functools
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from . import options as o
from .errors import SketchifyError, one_line, positive

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Turn photos into pencil sketches with a hybrid VAE-GAN.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
o.hide_python_types()


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


def error(text) -> None:
    err.print(f"[red]error:[/red] {escape(one_line(text))}", soft_wrap=True)


# stopping: the CLI turns SIGTERM into the KeyboardInterrupt that Ctrl-C raises; the library's loops finish what
# they are writing (convert.convert_all), and the CLI prints what was done and exits 130

STOP = {"by": "Ctrl-C"}


def on_sigterm(signum, frame):
    """SIGTERM, as schedulers send on preemption, is handled as Ctrl-C is; a second one while the first is being
    handled is ignored: the process is already stopping, and will exit 130."""
    STOP["by"] = "SIGTERM"
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def show_warning(message, category, filename, lineno, file=None, line=None):
    """Pillow's warnings ("Corrupt EXIF data ...") as one line that names the file being read."""
    from .images import warning_line

    say(f"warning: {warning_line(message)}")


def cli_errors(fn):
    """One line on stderr and a non-zero exit for what the user can fix; 130 on Ctrl-C or SIGTERM."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None  # this process is ours: --max-pixels is checked as each image opens
        in_main = threading.current_thread() is threading.main_thread()  # only there can a handler be set
        old = signal.signal(signal.SIGTERM, on_sigterm) if in_main else None
        old_warning, warnings.showwarning = warnings.showwarning, show_warning
        try:
            return fn(*args, **kwargs)
        except SketchifyError as e:
            error(e)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        finally:
            warnings.showwarning = old_warning
            if old is not None and signal.getsignal(signal.SIGTERM) is on_sigterm:  # not once stopping
                signal.signal(signal.SIGTERM, old)

    return wrapper


def load_sketcher(weights, device: o.Device, line_weight: float = 0.0):
    from .inference import Sketcher

    return Sketcher.from_pretrained(weights, device=device.value, line_weight=line_weight)


@app.command()
@cli_errors
def convert(inputs: list[Path] = o.Inputs, output: Path = o.ConvertOutput, recursive: bool = o.Recursive,
            style: str | None = o.Style, seed: int | None = o.Seed, temperature: float = o.Temperature,
            weights: str | None = o.Weights, device: o.Device = o.DeviceChoice, batch_size: int = o.BatchSize,
            fmt: str = o.Format, quality: int | None = o.Quality, suffix: str = o.Suffix,
            overwrite: bool = o.Overwrite, shard: str | None = o.Shard, max_side: int | None = o.MaxSide,
            size: int | None = o.Size, line_weight: float = o.LineWeight, max_pixels: int = o.MaxPixels):
    """Convert photos to sketches: sketchify convert photos/ -o sketches/"""
    from . import convert as conv

    started = time.monotonic()
    saving = conv.Output(fmt, quality, overwrite)
    draw = dict(style=style, seed=seed, temperature=temperature, size=size, max_side=max_side)
    if str(output) == "-" or any(str(i) == "-" for i in inputs):
        return convert_stream(inputs, output, lambda: load_sketcher(weights, device, line_weight), draw, saving,
                              max_pixels)
    plan = conv.plan_outputs(inputs, output, recursive=recursive, fmt=saving.fmt, suffix=suffix,
                     shard=conv.parse_shard(shard))
    tally = conv.Tally()
    for r in plan.problems:
        tally.add(r)
        say(f"{r.status}: {r.message}")
    for r in plan.renamed:
        say(f"renamed: {r.message}")
    if not plan.found and not plan.problems:
        hint = "" if recursive else " (use --recursive for subfolders)"
        raise SketchifyError(f"no images found in {', '.join(map(str, inputs))}{hint}")
    if plan.jobs:
        sketcher = load_sketcher(weights, device, line_weight)
        run_jobs(conv, sketcher, plan.jobs, sketcher.settings(**draw), saving, tally,
                 batch_size=batch_size, max_pixels=max_pixels)
    say(f"{tally.converted} converted, {tally.skipped} skipped, {tally.failed} failed "
        f"in {time.monotonic() - started:.1f} s -> {output}{conv.unsearched_note(plan)}", out)
    if tally.redrawn:
        say(conv.redrawn_note(tally.redrawn))
    if tally.failed:
        raise typer.Exit(1)


def run_jobs(conv, sketcher, jobs, settings, saving, tally, **options) -> None:
    """convert_all with a progress bar and a line for each failure; a stop or a full disk says what was done."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("converting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, disable=not err.is_terminal, transient=True)

    def report(result):
        if result.status == "failed":
            say(f"failed: {result.message}")
        bar.advance(task)

    with bar:
        task = bar.add_task("", total=len(jobs))
        try:
            conv.convert_all(sketcher, jobs, settings, saving, tally=tally, report=report, **options)
        except KeyboardInterrupt:
            say(f"interrupted: {len(tally.written)} converted before {STOP['by']}; run the same command again "
                "to finish")
            raise typer.Exit(130) from None
        except conv.OutputError as e:
            error(f"{e} after {len(tally.written)} converted")
            raise typer.Exit(2) from None


def convert_stream(inputs, output, load, draw: dict, saving, max_pixels) -> None:
    """One photo from a file or standard input (-) to standard output (-), with the Sketcher load() gives once the
    command is checked. A photo that cannot be drawn exits 1, as it would in a batch; a mistake in the command, 2."""
    from .convert import stream
    from .files import write_stdout

    if len(inputs) != 1 or str(output) != "-":
        raise SketchifyError("- (standard input or output) takes one photo: sketchify convert - -o - < a.jpg > a.png")
    sketcher = load()
    settings = sketcher.settings(**draw)
    source = sys.stdin.buffer if str(inputs[0]) == "-" else inputs[0]
    try:
        data = stream(sketcher, source, settings, saving, max_pixels=max_pixels)
    except SketchifyError as e:
        say(f"failed: {e}")
        raise typer.Exit(1) from None
    write_stdout(data)


@app.command()
@cli_errors
def sample(image: Path = o.Photo, n: int = o.SampleCount, output: Path = o.SampleOutput,
           style: str | None = o.Style, seed: int | None = o.Seed, temperature: float | None = o.SampleTemperature,
           weights: str | None = o.Weights, device: o.Device = o.DeviceChoice, max_side: int | None = o.MaxSide,
           size: int | None = o.Size, line_weight: float = o.LineWeight, max_pixels: int = o.MaxPixels,
           overwrite: bool = o.SampleOverwrite, fmt: str = o.SampleFormat):
    """Several different sketches of one photo, and a contact sheet of them."""
    from .images import format_name, load_photo
    from .sheet import sample_names, save_samples

    if str(output) == "-":
        raise SketchifyError(f"-o -: sample writes {n} sketches and a contact sheet; give a folder")
    fmt = format_name(fmt)
    names = sample_names(image, output, n, fmt=fmt, overwrite=overwrite)
    photo = load_photo(image, max_pixels=max_pixels)
    sketcher = load_sketcher(weights, device, line_weight)
    settings = sketcher.settings(style=style, seed=seed, temperature=temperature, size=size, max_side=max_side,
                                 for_samples=True)
    sketches = sketcher.samples(photo, n, settings)
    save_samples(photo, sketches, names, fmt=fmt, record=settings.record(sketcher.model_id, photo=image.name))
    say(f"{n} sketches of {image} -> {output}/{names[0].name} ... and {names[-1].name}", out)


@app.command()
@cli_errors
def export(output: Path = o.ExportOutput, style: str | None = o.Style, weights: str | None = o.Weights,
           overwrite: bool = o.ExportOverwrite):
    """Write the drawing network for one style (t = 0) as ONNX: photo (1, 3, H, W) RGB in [0, 1], H and W
    multiples of 16 -> sketch (1, 1, H, W). Needs pip install 'sketchify\\[export]'."""
    from .export import check_onnx, export_onnx, model_files

    check_onnx()
    sketcher = load_sketcher(weights, o.Device.cpu)
    drawn = export_onnx(sketcher, output, style=style, overwrite=overwrite, inputs=model_files(weights))
    say(f"{drawn} -> {output} ({output.stat().st_size / 2**20:.1f} MiB)", out)


@app.command()
@cli_errors
def train(data: list[Path] = o.TrainData, output: Path = o.Run, config: Path | None = o.Config,
          settings: list[str] = o.Settings, epochs: int | None = o.Epochs, init_from: str | None = o.InitFrom,
          default_style: str | None = o.TrainDefaultStyle, contours: tuple[Path, Path] | None = o.TrainContours,
          time_limit: float | None = o.TimeLimit, resume: bool = o.Resume, overwrite: bool = o.TrainOverwrite,
          device: o.Device = o.DeviceChoice, workers: int = o.Workers):
    """Train encoder, generator and discriminator on photo/sketch pairs. Runs under torchrun for several GPUs."""
    from .train import TrainOptions
    from .train import train as run_training

    settings = [*settings, *([f"epochs={epochs}"] if epochs else [])]
    opts = TrainOptions(data=data, run=output, config=config, settings=settings,
                        init_from=init_from, contours=contours, default_style=default_style, resume=resume,
                        overwrite=overwrite, device=device.value, time_limit_min=time_limit, workers=workers,
                        progress=err.is_terminal, log=out.print)
    positive("--time-limit", time_limit)
    try:
        model = run_training(opts)
    except OSError as e:  # an unreadable folder (writing errors say themselves what training kept)
        raise SketchifyError(f"{e.filename or output}: {e.strerror or e}; training stopped") from None
    out.print(f"done: sketchify convert photos/ -o sketches/ --weights {model}", markup=False)


@app.command("eval")
@cli_errors
def evaluate(data: list[Path] | None = o.EvalData, split: o.Split = o.SplitChoice,
             default_style: str | None = o.EvalDefaultStyle, contours: tuple[Path, Path] | None = o.EvalContours,
             n: int = o.EvalSamples, seed: int = o.EvalSeed, temperature: float | None = o.EvalTemperature,
             limit: int | None = o.Limit, weights: str | None = o.Weights, device: o.Device = o.DeviceChoice,
             json_out: Path | None = o.JsonOut, groundtruth: Path | None = o.EvalGroundtruth):
    """Score a model against reference sketches (ST-LPIPS, KID, MAE, SSIM, diversity) beside a blank page and the
    pencil filter, and optionally scenes against human contours (contour F). Needs pip install 'sketchify\\[train]'."""
    from rich.progress import Progress

    from . import evaluate as ev

    if json_out:
        ev.check_report_path(json_out)
    if not data and not contours:
        raise SketchifyError("nothing to score: give folders of photo/sketch pairs, --contours PHOTOS BOUNDARIES, "
                             "or both")
    if groundtruth and not contours:
        raise SketchifyError("--groundtruth scores scenes: give --contours PHOTOS BOUNDARIES too")
    sketcher = load_sketcher(weights, device)
    sampling = sketcher.settings(seed=seed, temperature=temperature, for_samples=True)
    chosen = ev.choose(data or [], contours, sketcher.config, which=split.value, default_style=default_style,
                       limit=limit)
    for line in chosen.left_out():
        say(f"skipped: {line}")
    with Progress(console=err, disable=not err.is_terminal, transient=True) as bar:
        task = bar.add_task("scoring", total=len(chosen.pairs) + len(chosen.scenes))
        results = ev.score(sketcher, chosen, n_samples=n, sampling=sampling, groundtruth=groundtruth,
                           progress=lambda: bar.advance(task))
    console = Console(highlight=False, width=max(out.width, 120))  # never wrap a method's name
    for table in ev.score_tables(results, *chosen.titles(split.value)):
        console.print(table)
    if json_out:
        ev.write_report(json_out, results)


@app.command()
@cli_errors
def serve(host: str = o.Host, port: int = o.Port, weights: str | None = o.Weights,
          device: o.Device = o.DeviceChoice):
    """A web page to sketch photos in the browser, and the HTTP API it uses: sketchify serve, then open the address."""
    from .serve import serve as run

    run(lambda: load_sketcher(weights, device), host=host, port=port, log=lambda line: say(line, out))


def main():
    app()
