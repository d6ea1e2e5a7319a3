"""The command line's options: names, metavars and help, declared once, so that cli.py reads as what each command
does. Nothing here imports torch: --help stays fast."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from .config import DEFAULT_STYLES, ModelConfig
from .images import DEFAULT_MAX_PIXELS
from .settings import DEFAULT_DRAW_MAX_SIDE, MAX_SEED


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Split(str, Enum):
    val = "val"
    train = "train"
    all = "all"


def hide_python_types() -> None:
    """Typer prints a parameter's Python annotation (<list[Path]>, <bool>) even beside a metavar, which already says
    what a value is; Typer has no setting for it, so its two display hooks are wrapped."""
    argument, option = typer.core.TyperArgument, typer.core.TyperOption
    shown_argument, shown_option = argument.display_type_rich, option.display_type_rich
    argument.display_type_rich = lambda self, ctx: None if self.metavar else shown_argument(self, ctx)
    option.display_type_rich = lambda self, ctx: None if self.is_flag else shown_option(self, ctx)


# shared by several commands

Weights = typer.Option(
    None, "--weights", "-w", metavar="FOLDER|REPO",
    help="Model folder, training run folder, Hugging Face Hub repo id, or default: the shipped weights (the default).")
Style = typer.Option(
    None, "--style", "-s", metavar="STYLE",
    help=f"Drawing style: {', '.join(DEFAULT_STYLES)}, or its number from 0 (default: the model's, "
         f"{ModelConfig.default_style}).")
DeviceChoice = typer.Option(
    Device.auto, "--device", metavar="auto|cpu|cuda|mps",
    help="Where the model runs; auto picks CUDA, then MPS, then CPU.")
Seed = typer.Option(
    None, "--seed", metavar="N", min=0, max=MAX_SEED,
    help="Seed for eps: the same seed gives the same sketches.")
Size = typer.Option(
    None, "--size", metavar="PX", min=0,
    help="Short side, in pixels, that photos are drawn at; the sketch is then enlarged to the photo's size. Default: "
         "the photo's own, at least the model's draw_size (240 for the shipped one, the scale its faces were learned "
         "at) and at most 3 times it; 0: each photo's own size. A size given is drawn as given unless --max-side is "
         "given too.")
LineWeight = typer.Option(
    0.0, "--line-weight", metavar="PX",
    help="Make strokes this many pixels wider at the sketch's size; negative: thinner (e.g. -2 to 4).")
MaxSide = typer.Option(
    None, "--max-side", metavar="PX",
    help=f"Never draw a photo's long side larger than this. Default: {DEFAULT_DRAW_MAX_SIDE} at the model's size, "
         "no limit with --size; 0: no limit (large drawings run tile by tile). Must not be below --size.")
MaxPixels = typer.Option(
    DEFAULT_MAX_PIXELS, "--max-pixels", metavar="N", min=1,
    help="Refuse images with more pixels than this (decompression-bomb guard).")

# convert

Inputs = typer.Argument(
    ..., readable=False, metavar="INPUT", help="Photos and folders of photos; - reads one photo from standard input.")
ConvertOutput = typer.Option(
    ..., "--output", "-o", metavar="DIR",
    help="Folder for the sketches (created if needed); - writes one sketch to standard output.")
Recursive = typer.Option(
    False, "--recursive", "-r", help="Descend into subfolders, keeping their structure under OUTPUT.")
Temperature = typer.Option(
    0.0, "--temperature", "-t", metavar="T", min=0.0, help="Noise scale; 0 gives the mean (cleanest) sketch.")
BatchSize = typer.Option(4, "--batch-size", "-b", metavar="N", min=1, help="Photos of one size drawn together.")
Format = typer.Option(
    "png", "--format", "-f", metavar="png|jpg|webp|svg",
    help="Output image format (jpeg and any case work too); svg traces the ink into vector paths "
         "(pip install 'sketchify\\[svg]').")
Quality = typer.Option(
    None, "--quality", "-q", metavar="Q", min=1, max=100,
    help="jpg/webp quality, 1-100 (default: jpg 92; webp lossless, exact grey like png).")
Suffix = typer.Option(
    "", "--suffix", metavar="TEXT", help="Appended to output names (photo.jpg -> photo{suffix}.png).")
Overwrite = typer.Option(
    False, "--overwrite",
    help="Redo sketches that already exist (never touches inputs, nor files sketchify did not draw).")
Shard = typer.Option(
    None, "--shard", metavar="K/N",
    help="Convert only shard K (0-based) of N, chosen by a hash of each file's path, for N parallel jobs.")

# sample

Photo = typer.Argument(..., readable=False, metavar="PHOTO", help="One photo.")
SampleCount = typer.Option(5, "--n", "-n", metavar="N", min=1, max=64, help="How many sketches.")
SampleOutput = typer.Option(
    Path("."), "--output", "-o", metavar="DIR", help="Folder for STEM_0.png ... and STEM_sheet.png.")
SampleTemperature = typer.Option(
    None, "--temperature", "-t", metavar="T", min=0.0,
    help="Noise scale: higher varies more (default: the model's sample_temperature).")
SampleOverwrite = typer.Option(
    False, "--overwrite", help="Replace existing samples (never a file that is not sketchify's).")
SampleFormat = typer.Option(
    "png", "--format", "-f", metavar="png|jpg|webp|svg", help="Format of the sketches (the sheet is png).")

# export

ExportOutput = typer.Option(
    ..., "--output", "-o", metavar="FILE.onnx",
    help="The ONNX file to write (a previous export is replaced; any other file only with --overwrite).")
ExportOverwrite = typer.Option(
    False, "--overwrite", help="Replace OUTPUT even if it is not a sketchify export.")

# train

TrainData = typer.Argument(
    ..., metavar="DATA",
    help="Folders with photos/ and sketches/ (matching names) and optional styles.csv (name,style).")
Run = typer.Option(
    ..., "--output", "-o", metavar="RUN",
    help="Run folder: training.json, checkpoint, log, sample grids, and the final model/.")
Config = typer.Option(
    None, "--config", metavar="TRAINING.json",
    help="A training.json to start from (e.g. weights/training.json); --set overrides it.")
Settings = typer.Option(
    [], "--set", metavar="KEY=VALUE",
    help="Override one setting of the model's shape or its training, e.g. --set lr=1e-4 --set loss_weights.adv=0.2; "
         "repeatable.")
Epochs = typer.Option(
    None, "--epochs", min=1, metavar="N",
    help="Same as --set epochs=N: passes over the training pairs (default 30).")
InitFrom = typer.Option(
    None, "--init-from", metavar="SOURCE",
    help="Start from a trained model: a model folder, a run folder, a checkpoint, a Hub repo id, or default (the "
         "shipped model); --set may grow it.")
TrainDefaultStyle = typer.Option(
    None, "--default-style", metavar="STYLE",
    help="Style of pairs that styles.csv does not name (default: the model's default).")
TrainContours = typer.Option(
    None, "--contours", metavar="PHOTOS BOUNDARIES",
    help="Scene photos and the boundary maps people drew on them (BSDS500 layout, NAME.png, 255 = every "
         "annotator): trains the contour style.")
TimeLimit = typer.Option(
    None, "--time-limit", metavar="MINUTES",
    help="Train for about this many minutes: the epochs are cut to what fits at the pace so far, so the learning "
         "rate still decays to the end; then export.")
Resume = typer.Option(
    False, "--resume",
    help="Continue OUTPUT's run from its checkpoint; settings given with --set or --config replace the "
         "checkpoint's, and each change is printed.")
TrainOverwrite = typer.Option(False, "--overwrite", help="Start again in an OUTPUT that holds a run.")
Workers = typer.Option(
    0, "--workers", min=0, metavar="N",
    help="Processes that prepare batches beside training; on a GPU machine 2-4 keep the GPU busy.")

# eval

EvalData = typer.Argument(
    None, metavar="[DATA]...", help="Folders with photos/ and sketches/ (and optional styles.csv).")
SplitChoice = typer.Option(
    Split.all, "--split", metavar="all|val|train",
    help="Score every pair (all), or, on the model's own training data, the held-out pairs (val) or the training "
         "pairs.")
EvalDefaultStyle = typer.Option(
    None, "--default-style", metavar="STYLE", help="Style of pairs that styles.csv does not name.")
EvalContours = typer.Option(
    None, "--contours", metavar="PHOTOS BOUNDARIES",
    help="Also score contour F of the contour style on scene photos against the boundary maps of the same names "
         "(same --split).")
EvalGroundtruth = typer.Option(
    None, "--groundtruth", metavar="GT_DIR",
    help="With --contours: BSDS500's NAME.mat files (every annotator apart); also scores the benchmark's ODS, OIS "
         "and AP.")
EvalSamples = typer.Option(4, "--n", min=2, metavar="N", help="Samples per photo for the diversity score.")
EvalSeed = typer.Option(0, "--seed", metavar="N", min=0, max=MAX_SEED, help="Seed for the samples' eps.")
EvalTemperature = typer.Option(
    None, "--temperature", "-t", min=0.0, metavar="T",
    help="Noise scale of the samples (default: the model's sample_temperature).")
Limit = typer.Option(
    None, "--limit", min=1, metavar="N",
    help="Score at most this many pairs of each style per folder (the first N in name order).")
JsonOut = typer.Option(
    None, "--json", metavar="FILE.json",
    help="Also write the scores to this JSON file (a new file, or one with JSON in it: never anything else).")

# serve

Host = typer.Option(
    "127.0.0.1", "--host", metavar="ADDRESS", help="Address to listen on; the default lets only this machine in.")
Port = typer.Option(
    8000, "--port", "-p", metavar="N", min=0, max=65535, help="Port to listen on (0: any free one).")
