"""One line, not a traceback: values that can only fail or make garbage are refused before any work."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from conftest import cli, convert, deadline, files, sample, tiny_settings
from corpus import picture

from sketchify.config import ModelConfig
from sketchify.data import find_pairs
from sketchify.errors import SketchifyError


def one_error(run, *needles: str) -> None:
    assert run.code == 2, run.text
    assert len(run.lines) == 1 and run.lines[0].startswith("error: "), run.text
    for needle in needles:
        assert needle in run.lines[0], run.text


@pytest.fixture
def one_photo(photos) -> Path:
    picture().save(photos / "a.jpg")
    return photos / "a.jpg"


@pytest.mark.parametrize("args, needle", [
    (("--seed", "99999999999999999999", "-t", "1"), "--seed"),
    (("-t", "inf"), "temperature"),
    (("-t", "nan"), "temperature"),
    (("--max-side", "2"), "max_side"),
    (("--max-side", "-5"), "max_side"),
    (("--suffix", "x/y"), "--suffix"),
    (("--line-weight", "1e9"), "line_weight"),  # a filter as wide as that would run for hours
    (("--line-weight", "nan"), "line_weight"),
])
def test_convert_refuses_values_that_make_garbage(args, needle, one_photo, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    run = convert(tiny_model_dir, one_photo, "-o", out, *args)
    assert run.code == 2 and needle in run.text, run.text
    assert "Traceback" not in run.text and files(out) == set()


@pytest.mark.parametrize("args", [("--seed", "99999999999999999999"), ("-t", "inf"), ("--max-side", "3"),
                                  ("--line-weight", "-40")])
def test_sample_refuses_values_that_make_garbage(args, one_photo, tmp_path, tiny_model_dir):
    run = sample(tiny_model_dir, one_photo, "-n", 1, "-o", tmp_path / "s", *args)
    assert run.code == 2, run.text
    assert files(tmp_path / "s") == set()


def test_output_that_is_a_file_is_a_usage_error(one_photo, tmp_path, tiny_model_dir):
    target = tmp_path / "sketches.png"
    target.write_bytes(b"keep me")
    one_error(convert(tiny_model_dir, one_photo, "-o", target), "is a file")
    one_error(sample(tiny_model_dir, one_photo, "-o", target), "is a file")
    assert target.read_bytes() == b"keep me"


def test_a_newline_in_a_file_name_stays_on_one_line(photos, tmp_path, tiny_model_dir):
    (photos / "bad\nname.jpg").write_text("not a photo")
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "out")
    assert run.code == 1, run.text
    lines = run.lines_naming("bad\\nname.jpg")
    assert len(lines) == 1 and lines[0].startswith("failed: "), run.text


def test_eval_json_into_a_missing_folder_fails_before_scoring(pair_dir, tmp_path, tiny_model_dir):
    run = cli("eval", pair_dir, "--weights", tiny_model_dir, "--device", "cpu", "--json", tmp_path / "no" / "s.json")
    one_error(run, "--json")
    assert "blank page" not in run.text  # nothing was scored


@pytest.mark.parametrize("args, needle", [(("--set", "lr=-1"), "lr"), (("--time-limit", "nan"), "--time-limit"),
                                          (("--set", "seed=99999999999999999999999"), "seed"),
                                          (("--set", "seed=-1"), "seed")])
def test_train_refuses_bad_numbers(args, needle, pair_dir, tmp_path):
    one_error(cli("train", pair_dir, "-o", tmp_path / "run", "--device", "cpu", *args), needle)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_training_onto_a_full_or_read_only_disk(err, pair_dir, tmp_path, monkeypatch):
    import sketchify.train

    def refuse(path, **kwargs):  # as saving the first checkpoint would fail
        raise OSError(err, os.strerror(err), str(path))

    monkeypatch.setattr(sketchify.train, "save_checkpoint", refuse)
    run = cli("train", pair_dir, "-o", tmp_path / "run", "--device", "cpu", *tiny_settings(epochs=1))
    assert run.code == 2, run.text
    errors = [line for line in run.lines if line.startswith("error: ")]
    assert errors == run.lines[-1:] and "checkpoint.safetensors" in errors[0] and os.strerror(err) in errors[0]


def test_a_training_config_nested_too_deeply(pair_dir, tmp_path):
    (tmp_path / "t.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    one_error(cli("train", pair_dir, "-o", tmp_path / "run", "--config", tmp_path / "t.json"), "t.json", "nested")


def test_a_long_thin_training_photo_is_refused_by_name(pair_dir, tmp_path):
    from PIL import Image

    Image.new("RGB", (1, 2000), "white").save(pair_dir / "photos" / "thin.png")  # 240 x 480,000 at the load size
    Image.new("L", (1, 2000), 255).save(pair_dir / "sketches" / "thin.png")
    run = cli("train", pair_dir, "-o", tmp_path / "run", *tiny_settings(epochs=1), "--device", "cpu")
    assert run.code == 2 and run.lines[-1].startswith("error: "), run.text
    assert "thin.png" in run.lines[-1] and "1x2000" in run.lines[-1], run.text


@pytest.mark.skipif(not Path("/dev/full").is_char_device(), reason="no /dev/full here")
def test_a_sketch_to_a_full_standard_output(one_photo, tmp_path, tiny_model_dir):
    import subprocess
    import sys

    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "sketchify", "convert", str(one_photo), "-o", "-", "--weights",
                               str(tiny_model_dir), "--device", "cpu"], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = proc.stderr.splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and "standard output" in lines[0], proc.stderr
    assert os.strerror(errno.ENOSPC) in lines[0]


def write_styles(data: Path, raw: bytes) -> None:
    (data / "styles.csv").write_bytes(raw)


def test_styles_csv_with_a_byte_order_mark_just_works(pair_dir):
    rows = "".join(f"p{i:02d},{'portrait' if i % 2 else 'light-pencil'}\n" for i in range(12))
    write_styles(pair_dir, ("\ufeffname,style\n" + rows).encode("utf-8"))
    pairs = find_pairs(pair_dir, ModelConfig())
    assert [p.style for p in pairs] == [3 if i % 2 else 0 for i in range(12)]


@pytest.mark.parametrize("raw, needle", [
    (b"name,style\np00,bold-ink\np01\n", "line 3"),
    ("name,style\ncafé,bold-ink\n".encode("latin-1"), "UTF-8"),
])
def test_bad_styles_csv_is_one_line(raw, needle, pair_dir, tmp_path):
    write_styles(pair_dir, raw)
    with pytest.raises(SketchifyError, match=needle):
        find_pairs(pair_dir, ModelConfig())
    one_error(cli("train", pair_dir, "-o", tmp_path / "run", "--device", "cpu"), "styles.csv")


def test_config_json_that_is_a_pipe(one_photo, pair_dir, tmp_path, tiny_model_dir):
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    with deadline(30):
        one_error(cli("train", pair_dir, "-o", tmp_path / "run", "--config", fifo), "not a regular file")
        (tiny_model_dir / "config.json").unlink()
        os.mkfifo(tiny_model_dir / "config.json")
        one_error(convert(tiny_model_dir, one_photo, "-o", tmp_path / "out"), "not a regular file")
