"""What convert, sample and eval write, and what they never write over or lose (issue 23), and how the drawing
settings travel and are recorded (issue 21 item 2, issue 24 item 4)."""

from __future__ import annotations

import csv
import io
import json
import signal
import struct

import pytest
from conftest import cli, convert, drawing_model_dir, files, photo, sample, sketch_of, stop_convert_midway, tiny_config
from corpus import picture

from sketchify.errors import SketchifyError
from sketchify.evaluate import choose
from sketchify.images import read_description
from sketchify.settings import DrawSettings


def record(path) -> dict:
    return json.loads(read_description(path))


# names stay with their photos


def test_a_photo_added_later_never_takes_over_an_existing_sketch(photos, tmp_path, tiny_model_dir):
    photo(1).save(photos / "a.png")
    out = tmp_path / "out"
    assert convert(tiny_model_dir, photos, "-o", out).code == 0
    before = (out / "a.png").read_bytes()
    photo(2).save(photos / "a.jpg")  # sorts before a.png: it would get the plain name
    run = convert(tiny_model_dir, photos, "-o", out)
    assert run.code == 0 and run.counts() == (1, 1, 0), run.text
    assert (out / "a.png").read_bytes() == before and record(out / "a.png")["photo"] == "a.png"
    assert record(out / "a-jpg.png")["photo"] == "a.jpg"
    assert convert(tiny_model_dir, photos, "-o", out).counts() == (0, 2, 0)  # and it stays so


def test_a_file_and_a_folder_wanting_one_name_get_a_rename(photos, tmp_path, tiny_model_dir):
    photo(1).save(photos / "x.jpg")
    (photos / "x.png").mkdir()
    photo(2).save(photos / "x.png" / "y.jpg")
    out = tmp_path / "out"
    for counts in ((2, 0, 0), (0, 2, 0)):
        run = convert(tiny_model_dir, photos, "-o", out, "-r")
        assert run.code == 0 and run.counts() == counts, run.text
    assert files(out) == {"x-jpg.png", "x.png/y.png"}


# never written over


def test_recursive_output_inside_the_inputs_with_photos_is_refused(photos, tmp_path, tiny_model_dir):
    photo(1).save(photos / "x.jpg")
    (photos / "sub").mkdir()
    photo(2).save(photos / "sub" / "x.png")
    before = (photos / "sub" / "x.png").read_bytes()
    for extra in ((), ("--overwrite",)):
        run = convert(tiny_model_dir, photos, "-r", "-o", photos / "sub", *extra)
        assert run.code == 2 and "sub/x.png" in run.text and "leave out" in run.text, run.text
    assert (photos / "sub" / "x.png").read_bytes() == before


def test_overwrite_never_replaces_an_image_sketchify_did_not_draw(photos, tmp_path, tiny_model_dir):
    photo(1).save(photos / "x.jpg")
    out = tmp_path / "out"
    out.mkdir()
    photo(2).save(out / "x.png")  # someone's photo where the sketch would go
    before = (out / "x.png").read_bytes()
    run = convert(tiny_model_dir, photos, "-o", out, "--overwrite")
    assert run.code == 0 and run.counts() == (1, 0, 0) and run.lines_naming("renamed"), run.text
    assert (out / "x.png").read_bytes() == before and (out / "x-jpg.png").exists()


def test_sample_overwrite_never_replaces_a_photo_named_like_a_sample(photos, tiny_model_dir):
    photo(1).save(photos / "p001.jpg")
    photo(2).save(photos / "p001_1.png")
    before = (photos / "p001_1.png").read_bytes()
    run = sample(tiny_model_dir, photos / "p001.jpg", "-n", 2, "-o", photos, "--overwrite")
    assert run.code == 2 and "p001_1.png" in run.text, run.text
    assert (photos / "p001_1.png").read_bytes() == before
    (photos / "p001_1.png").unlink()
    for _ in range(2):  # samples carry a record: --overwrite replaces them
        run = sample(tiny_model_dir, photos / "p001.jpg", "-n", 2, "-o", photos, "--overwrite")
        assert run.code == 0, run.text
    assert record(photos / "p001_1.png")["photo"] == "p001.jpg"


def test_eval_json_never_writes_over_what_is_not_json(photos, pair_dir, tiny_model_dir, tmp_path):
    photo(1).save(photos / "scored.png")
    before = (photos / "scored.png").read_bytes()
    for target in (photos / "scored.png", "/dev/full"):
        run = cli("eval", pair_dir, "--weights", tiny_model_dir, "--device", "cpu", "--json", target)
        assert run.code == 2 and "--json" in run.text and "not a JSON file" in run.text, run.text
    assert (photos / "scored.png").read_bytes() == before


# broken outputs


@pytest.mark.parametrize("broken", [b"", "cut"])
def test_an_empty_or_cut_short_sketch_is_drawn_again(broken, photos, tmp_path, tiny_model_dir):
    photo(1).save(photos / "a.jpg")
    out = tmp_path / "out"
    assert convert(tiny_model_dir, photos, "-o", out).code == 0
    whole = (out / "a.png").read_bytes()
    (out / "a.png").write_bytes(whole[:100] if broken == "cut" else broken)
    run = convert(tiny_model_dir, photos, "-o", out)
    assert run.code == 0 and run.counts() == (1, 0, 0), run.text
    assert (out / "a.png").read_bytes() == whole


def test_a_file_that_is_not_our_sketch_is_never_written_over(photos, tmp_path, tiny_model_dir):
    # a text file at the sketch's name is not an image cut short: not ours to replace; the sketch takes another name
    photo(1).save(photos / "a.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_text("my notes")
    run = convert(tiny_model_dir, photos, "-o", out)
    assert run.code == 0 and run.counts() == (1, 0, 0), run.text
    assert (out / "a.png").read_text() == "my notes"
    assert {p.name for p in out.iterdir()} == {"a.png", "a-jpg.png"}, run.text


# the drawing settings: validated once, recorded whole


def test_size_and_max_side_are_recorded_and_a_rerun_with_others_says_so(photos, tmp_path, tiny_model_dir):
    photo(1, (96, 64)).save(photos / "a.jpg")
    out = tmp_path / "out"
    assert convert(tiny_model_dir, photos, "-o", out, "--style", "2").code == 0
    assert {k: record(out / "a.png")[k] for k in ("size", "max_side", "style")} == \
        {"size": 32, "max_side": 1024, "style": "shaded-pencil"}  # the model's size, the default cap, a name
    run = convert(tiny_model_dir, photos, "-o", out, "--style", "shaded-pencil", "--size", 48)
    assert run.counts() == (0, 1, 0), run.text
    note = run.lines_naming("note:")
    assert note and "size 32, now 48" in note[0] and "max_side 1024, now 0" in note[0], run.text


def test_line_weight_is_recorded_and_a_rerun_with_another_says_so(photos, tmp_path, tiny_model_dir):
    photo(1, (96, 64)).save(photos / "a.jpg")
    out = tmp_path / "out"
    assert convert(tiny_model_dir, photos, "-o", out, "--line-weight", "2").code == 0
    assert record(out / "a.png")["line_weight"] == 2.0
    run = convert(tiny_model_dir, photos, "-o", out)
    assert run.counts() == (0, 1, 0), run.text
    note = run.lines_naming("note:")
    assert note and "line_weight 2.0, now 0.0" in note[0], run.text


def test_the_library_draws_with_the_line_weight_it_records(photos, tmp_path):
    # settings given to convert.run, not the Sketcher's own line weight, draw each sketch and go into its EXIF
    import numpy as np
    from PIL import Image

    from sketchify.convert import Job, run
    from sketchify.inference import Sketcher

    photo(1, (96, 64)).save(photos / "a.jpg")
    sketcher = Sketcher.from_pretrained(drawing_model_dir(tmp_path / "model"), device="cpu", line_weight=0.0)
    ink = {}
    for weight in (0.0, 3.0):
        dst = tmp_path / f"{weight}.png"
        assert [r.status for r in run(sketcher, [Job(photos / "a.jpg", dst)], sketcher.settings(line_weight=weight))
                ] == ["converted"]
        assert record(dst)["line_weight"] == weight
        ink[weight] = 255 - np.asarray(Image.open(dst).convert("L"), float).mean()
    assert ink[3.0] > ink[0.0] + 5, ink


def test_size_and_max_side_never_contradict_in_silence(photos, tmp_path, tiny_model_dir):
    photo(1, (96, 64)).save(photos / "a.jpg")
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "o1", "--size", 64, "--max-side", 48)
    assert run.code == 2 and "size 64" in run.text and "max_side 48" in run.text, run.text
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "o1", "--max-side", 16)  # no --size: say whose it is
    assert run.code == 2 and "the model's draw_size 32 (the default size)" in run.text, run.text
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "o2", "--size", 0)  # the photo's own size, uncapped
    assert run.code == 0 and record(tmp_path / "o2" / "a.png")["max_side"] == 0, run.text


def test_settings_are_checked_once_when_built():
    config = tiny_config()
    s = DrawSettings.build(config, style=2, seed=3, temperature=1)
    assert (s.style, s.seed, s.temperature, s.size, s.max_side) == ("shaded-pencil", 3, 1.0, 32, 1024)
    for bad in (dict(seed=-1), dict(seed=2**64), dict(temperature=float("nan")), dict(temperature=-1),
                dict(style="crayon"), dict(size=5), dict(max_side=-1)):
        with pytest.raises(SketchifyError):
            DrawSettings.build(config, **bad)


def test_style_names_made_of_digits_are_refused():
    assert any("whole numbers" in problem for problem in tiny_config(styles=("0", "1"), default_style="0").check())


# standard output, sample -o -, printed names


def test_a_bad_photo_on_standard_input_exits_1_as_in_a_batch(tiny_model_dir):
    run = convert(tiny_model_dir, "-", "-o", "-", stdin=b"not a photo")
    assert run.code == 1 and "failed:" in run.text, run.text


def test_sample_to_standard_output_is_refused_without_a_folder_named_dash(photos, tiny_model_dir, monkeypatch):
    photo(1).save(photos / "a.jpg")
    monkeypatch.chdir(photos)
    run = sample(tiny_model_dir, "a.jpg", "-o", "-")
    assert run.code == 2 and "give a folder" in run.text, run.text
    assert not (photos / "-").exists()


def test_names_that_reorder_text_are_printed_escaped(photos, tmp_path, tiny_model_dir):
    (photos / "a\u202egpj.exe.jpg").write_bytes(b"not a photo")
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "out")
    assert "\u202e" not in run.text and "a\\u202egpj" in run.text, run.text


def test_a_corrupt_exif_warning_is_one_line_naming_the_file(photos, tmp_path, tiny_model_dir):
    # an ImageDescription said to be 5000 bytes long, in a file far shorter: Pillow warns and skips the tag
    tiff = b"MM\x00*" + struct.pack(">IHHHII", 8, 1, 0x010E, 2, 5000, 100) + b"\x00" * 4
    buffer = io.BytesIO()
    photo(1).save(buffer, "JPEG", exif=b"Exif\x00\x00" + tiff)
    (photos / "odd.jpg").write_bytes(buffer.getvalue())
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "out")
    assert run.code == 0, run.text
    warned = [line for line in run.lines if "Skipping tag" in line]
    assert warned and all(line.startswith("warning: ") and "odd.jpg" in line for line in warned), run.text
    assert not run.lines_naming("warnings.warn"), run.text


@pytest.mark.slow
def test_a_second_sigterm_still_exits_130(tmp_path, tiny_model_dir):
    many = tmp_path / "many"
    many.mkdir()
    for i in range(20):
        picture(seed=i).resize((320, 240)).save(many / f"p{i:02d}.jpg")
    _, code, stdout, stderr = stop_convert_midway(many, tmp_path / "out", tiny_model_dir, signal.SIGTERM, times=2)
    assert code == 130 and "Traceback" not in stderr, stdout + stderr


# eval


def test_eval_limit_takes_n_of_each_style(tmp_path):
    data = tmp_path / "data"
    (data / "photos").mkdir(parents=True)
    (data / "sketches").mkdir()
    rows = []
    for i in range(8):  # sorted by style: the first four are all style 0
        img = photo(i)
        img.save(data / "photos" / f"p{i}.jpg")
        sketch_of(img).save(data / "sketches" / f"p{i}.png")
        rows.append({"name": f"p{i}", "style": str(i // 4)})
    with (data / "styles.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["name", "style"])
        writer.writeheader()
        writer.writerows(rows)
    chosen = choose([data], None, tiny_config(), limit=2)
    assert sorted(p.style for p in chosen.pairs) == [0, 0, 1, 1]


def test_serve_and_convert_record_the_same_settings(tiny_model_dir):
    from sketchify.inference import Sketcher

    sketcher = Sketcher.from_pretrained(tiny_model_dir, device="cpu")
    settings = sketcher.settings(style="contour", seed=5, temperature=0.5)
    assert sketcher.sketch(photo(1), settings).tobytes() == \
        sketcher.sketch(photo(1), style="contour", seed=5, temperature=0.5).tobytes()
    with pytest.raises(TypeError):
        sketcher.sketch(photo(1), settings, style="contour")
