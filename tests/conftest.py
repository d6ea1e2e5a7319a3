"""Shared fixtures and the CLI harness: a tiny model folder, tiny photo/sketch data sets, all made on the fly.

Every CLI run goes through typer's CliRunner on sketchify.cli.app. Exit codes: 0 all good, 1 the batch had
failures, 2 a usage/user error printed as `error: ...`.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
import signal
import traceback
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from sketchify.cli import app
from sketchify.config import ModelConfig, TrainConfig
from sketchify.model import SketchModel

torch.set_num_threads(1)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# running the CLI


class Run:
    """A finished CLI run: exit code and everything it printed (stdout and stderr)."""

    def __init__(self, result):
        self.code = result.exit_code
        text = result.output
        try:  # Click >= 8.2 keeps stderr apart as well as in output; older Click mixes it in or refuses
            err = result.stderr
        except ValueError:
            err = ""
        if err and err not in text:
            text += err
        self.text = ANSI.sub("", text)
        self.lines = [line for line in self.text.splitlines() if line.strip()]

    def lines_naming(self, name: str) -> list[str]:
        return [line for line in self.lines if name in line]

    def counts(self) -> tuple[int, int, int]:
        m = re.search(r"(\d+) converted, (\d+) skipped, (\d+) failed", self.text)
        assert m, f"no summary line in:\n{self.text}"
        return int(m[1]), int(m[2]), int(m[3])


def cli(*args, stdin: bytes | None = None) -> Run:
    """Run sketchify with args; fail the test on a traceback the user would see."""
    result = CliRunner().invoke(app, [str(a) for a in args], input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"uncaught exception (the user would see a traceback):\n{tb}\noutput:\n{result.output}")
    run = Run(result)
    assert "Traceback" not in run.text, run.text
    run.stdout_bytes = result.stdout_bytes
    return run


def convert(model: Path, *args, stdin: bytes | None = None) -> Run:
    return cli("convert", *args, "--weights", model, "--device", "cpu", stdin=stdin)


def sample(model: Path, *args) -> Run:
    return cli("sample", *args, "--weights", model, "--device", "cpu")


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging (CliRunner runs in this process, so a hang would stall the whole suite)."""
    def timeout(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def stop_convert_midway(photos: Path, out: Path, model: Path, sig: int,
                        times: int = 1) -> tuple[list[str], int, str, str]:
    """`sketchify convert` in a process of its own, sent sig (times times, 50 ms apart) once its first sketch is
    on disk: (the command, its exit code, stdout, stderr)."""
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "sketchify", "convert", str(photos), "-o", str(out), "--weights", str(model),
           "--batch-size", "1", "--max-side", "0", "--device", "cpu"]
    # as from a terminal: a job started in the background (`cmd &`, nohup, some CI runners) inherits SIGINT ignored,
    # and a process that starts with SIGINT ignored keeps ignoring it, as POSIX asks: Ctrl-C would never arrive
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    limit = time.monotonic() + 60
    while time.monotonic() < limit and not (out.exists() and any(out.glob("*.png"))):
        time.sleep(0.02)
    for i in range(times):
        time.sleep(0.05 if i else 0)
        proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return cmd, proc.returncode, stdout, stderr


def files(folder: Path) -> set[str]:
    """Relative paths of the plain files under folder."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_no_part_files(folder: Path):
    leftovers = [str(p) for p in folder.rglob("*") if p.name.endswith(".part")] if folder.exists() else []
    assert not leftovers, leftovers


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


# models and data


TINY_MODEL = dict(latent_channels=(1, 1, 1, 2), widths=(4, 4, 4, 4, 4), deep_blocks=1, style_dim=4, draw_size=32,
                  disc_channels=4, disc_layers=2)
# no ImageNet weights and no perceptual network: the tests train a few steps of tiny models, offline and fast
TINY_TRAIN = dict(image_size=32, load_size=40, batch_size=4, epochs=2, val_fraction=0.2, pretrained=False)
TINY_LOSSES = {"perceptual": 0.0, "sample_div": 0.0, "adv_features": 0.0}


def tiny_config(**overrides) -> ModelConfig:
    return ModelConfig(**{**TINY_MODEL, **overrides})


def tiny_training(**overrides) -> TrainConfig:
    weights = {**TrainConfig().loss_weights, **TINY_LOSSES, **overrides.pop("loss_weights", {})}
    return TrainConfig(**{**TINY_TRAIN, "loss_weights": weights, **overrides})


def tiny_settings(**overrides) -> list[str]:
    """`train` arguments for a tiny model trained briefly: --set KEY=VALUE for each setting."""
    items = {**TINY_MODEL, **TINY_TRAIN, **{f"loss_weights.{k}": v for k, v in TINY_LOSSES.items()}, **overrides}
    text = lambda v: ",".join(map(str, v)) if isinstance(v, tuple) else str(v)
    return [arg for k, v in items.items() for arg in ("--set", f"{k}={text(v)}")]


def lively(model: SketchModel) -> SketchModel:
    """Untrained weights draw near-blank paper; larger random weights make outputs depend on photo, z and style.
    The encoder's EfficientNet keeps its own initialisation: larger weights would saturate its ReLU6s."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("encoder.backbone."):
                p.normal_(0, 0.4 if p.dim() > 1 else 0.1)
    return model


@pytest.fixture
def tiny_model_dir(tmp_path) -> Path:
    torch.manual_seed(0)
    model = SketchModel(tiny_config())
    folder = tmp_path / "tiny_model"
    model.save_pretrained(folder)
    return folder


def photo(seed: int, size=(48, 40)) -> Image.Image:
    """A random 'photo': a coloured background with a few shapes, so that edges exist."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        x0, y0 = rng.integers(0, size[0] // 2 + 1), rng.integers(0, size[1] // 2 + 1)
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        draw.ellipse([x0, y0, x0 + size[0] // 2, y0 + size[1] // 2], fill=colour)
    return img


def sketch_of(img: Image.Image) -> Image.Image:
    """A learnable 'sketch': dark where the photo has edges, white elsewhere."""
    grey = np.asarray(img.convert("L"), dtype=np.float32)
    gx = np.abs(np.diff(grey, axis=1, prepend=grey[:, :1]))
    gy = np.abs(np.diff(grey, axis=0, prepend=grey[:1]))
    return Image.fromarray((255 - np.clip((gx + gy) * 2, 0, 255)).astype(np.uint8), "L")


@pytest.fixture
def pair_dir(tmp_path) -> Path:
    return make_pairs(tmp_path / "data")


def make_pairs(data: Path) -> Path:
    """DATA/photos + DATA/sketches (+ styles.csv) with 12 pairs in two styles."""
    (data / "photos").mkdir(parents=True)
    (data / "sketches").mkdir()
    rows = []
    for i in range(12):
        img = photo(i)
        img.save(data / "photos" / f"p{i:02d}.jpg")
        sketch_of(img).save(data / "sketches" / f"p{i:02d}.png")
        rows.append({"name": f"p{i:02d}", "style": str(i % 2)})
    with (data / "styles.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["name", "style"])
        writer.writeheader()
        writer.writerows(rows)
    return data


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    result = cli("train", make_pairs(root / "data"), "-o", root / "run", *tiny_settings(epochs=1), "--device", "cpu")
    assert result.code == 0, result.text
    return root / "run"


@pytest.fixture
def trained_run(trained_once, tmp_path) -> Path:
    """RUN/ after one epoch of a tiny model on pair_dir's pairs: trained once per test module, copied for each test."""
    return Path(shutil.copytree(trained_once, tmp_path / "run"))


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        photo(100 + i).save(folder / f"img{i}.jpg")
    return folder


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    return folder


def drawing_model_dir(folder: Path, *, generator_scale: float = 1.0) -> Path:
    """A lively tiny model saved to folder; generator_scale < 1 shrinks its convolutions, so that fewer of its
    pixels saturate at 0 or 1 (0.8: three quarters of bold-ink's are in between)."""
    torch.manual_seed(0)  # the backbone keeps its own random initialisation: the same in every run
    model = lively(SketchModel(tiny_config()))
    with torch.no_grad():
        for p in model.generator.parameters():
            if p.dim() == 4:
                p.mul_(generator_scale)
    model.save_pretrained(folder)
    return folder
