"""Nothing lost, nothing overwritten: formats that cannot hold a photo, colliding names, outputs that are inputs
under another path, pipes, shards of a growing folder, killed runs' leftovers, SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest
from conftest import assert_no_part_files, convert, deadline, digests, files, sample, stop_convert_midway
from corpus import picture
from PIL import Image

import sketchify.convert as conv
from sketchify.files import HOST, PART_PREFIX, PART_SUFFIX
from sketchify.sheet import contact_sheet

# ---------------------------------------------------------------- 1. one file's failure is one line


def test_a_photo_the_format_cannot_hold_fails_alone(photos, tmp_path, tiny_model_dir):
    for i in range(4):
        picture(seed=i).save(photos / f"p{i}.jpg")
    picture((20000, 50)).save(photos / "panorama.png")  # WebP holds at most 16383 px a side
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out, "-f", "webp")
    assert run.code == 1 and run.counts() == (4, 0, 1), run.text
    lines = run.lines_naming("panorama")
    assert len(lines) == 1 and lines[0].startswith("failed: ") and "webp" in lines[0], run.text
    assert files(out) == {f"p{i}.webp" for i in range(4)}
    assert_no_part_files(out)


def test_an_encoder_failure_is_that_file_only(photos, tmp_path, tiny_model_dir, monkeypatch):
    for i in range(4):
        picture(seed=i).save(photos / f"p{i}.jpg")
    real = conv.save_atomic

    def picky(img, path, fmt, **options):
        if path.name == "p1.png":
            raise ValueError("encoding error 5: the encoder gave up")
        real(img, path, fmt, **options)

    monkeypatch.setattr(conv, "save_atomic", picky)
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out, "--batch-size", "1")
    assert run.code == 1 and run.counts() == (3, 0, 1), run.text
    assert len(run.lines_naming("p1.png")) == 1 and "encoder gave up" in run.lines_naming("p1.png")[0]
    assert files(out) == {"p0.png", "p2.png", "p3.png"}


# ---------------------------------------------------------------- 2. names planned before drawing


def test_same_name_in_three_folders_gives_three_sketches(tmp_path, tiny_model_dir):
    folders = [tmp_path / name for name in ("x", "y", "z")]
    for i, folder in enumerate(folders):
        folder.mkdir()
        picture(seed=i).save(folder / "I.jpg")
    out = tmp_path / "out"
    run = convert(tiny_model_dir, *folders, "-o", out)
    assert run.code == 0 and run.counts() == (3, 0, 0), run.text
    assert files(out) == {"I.png", "I-jpg.png", "I-jpg-2.png"}
    assert len(run.lines_naming("renamed: ")) == 2, run.text
    first = digests(out)
    again = convert(tiny_model_dir, *folders, "-o", tmp_path / "again")  # the same names for the same command
    assert digests(tmp_path / "again") == first, again.text
    run = convert(tiny_model_dir, *folders, "-o", out)
    assert run.counts() == (0, 3, 0), run.text


def test_names_that_would_collide_in_one_folder(photos, tmp_path, tiny_model_dir):
    for i, name in enumerate(("a.jpg", "a.png", "a-png.jpg", "A.webp")):
        picture(seed=i).save(photos / name)
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out)
    assert run.code == 0 and run.counts() == (4, 0, 0), run.text
    written = files(out)
    assert len(written) == 4 and len({n.casefold() for n in written}) == 4, written  # apart on any disk too
    assert len(run.lines_naming("renamed: ")) == 2, run.text


def test_one_folder_given_twice_is_drawn_once(photos, tmp_path, tiny_model_dir, monkeypatch):
    for i in range(3):
        picture(seed=i).save(photos / f"p{i}.jpg")
    os.link(photos / "p0.jpg", tmp_path / "hardlink.jpg")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    run = convert(tiny_model_dir, "photos", photos.resolve(), photos / "p1.jpg", "hardlink.jpg", "-o", out)
    assert run.code == 0 and run.counts() == (3, 0, 0), run.text
    assert files(out) == {"p0.png", "p1.png", "p2.png"}


# ---------------------------------------------------------------- 3. never write where an input lies


def test_overwrite_never_replaces_a_photo_named_like_a_sketch(photos, tmp_path, tiny_model_dir):
    picture(seed=1).save(photos / "beach.jpg")
    picture(seed=2).save(photos / "beach_s.png")  # a photo that happens to carry a sketch's name
    before = digests(photos)
    for extra in ((), ("--overwrite",)):
        run = convert(tiny_model_dir, photos, "-o", photos, "--suffix", "_s", *extra)
        assert run.code == 0, run.text
        assert {k: v for k, v in digests(photos).items() if k in before} == before  # photos untouched
    assert files(photos) == {"beach.jpg", "beach_s.png", "beach-jpg_s.png", "beach_s_s.png"}
    run = convert(tiny_model_dir, photos, "-o", photos, "--suffix", "_s")  # the sketches are not new photos
    assert run.counts() == (0, 2, 0), run.text


def test_output_folder_that_is_the_input_under_another_path(photos, tmp_path, tiny_model_dir):
    """A bind mount shows the input folder under a path that resolve() cannot see through."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("no mount namespaces here")
    for i in range(2):
        picture(seed=i).save(photos / f"img{i}.png")
    before = digests(photos)
    other = tmp_path / "elsewhere"
    other.mkdir()
    script = (f"mount --bind {photos} {other} && {sys.executable} -m sketchify convert {photos} -o {other} "
              f"--weights {tiny_model_dir} --device cpu")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--suffix" in done.stderr, done.stdout + done.stderr
    assert digests(photos) == before


# ---------------------------------------------------------------- 5. regular files only


def test_a_pipe_among_the_photos_is_reported_not_read(photos, tmp_path, tiny_model_dir):
    picture().save(photos / "a.jpg")
    os.mkfifo(photos / "pipe.jpg")
    out = tmp_path / "out"
    with deadline(60):
        run = convert(tiny_model_dir, photos, "-o", out)
        alone = convert(tiny_model_dir, photos / "pipe.jpg", "-o", tmp_path / "out2")
    assert run.code == 0 and run.counts() == (1, 1, 0), run.text
    assert len(run.lines_naming("pipe.jpg")) == 1 and "not a regular file" in run.text, run.text
    assert files(out) == {"a.png"}
    assert alone.counts() == (0, 1, 0) and "not a regular file" in alone.text, alone.text


# ---------------------------------------------------------------- 6. shards that survive added files


def test_shards_hold_when_files_are_added_between_jobs(photos, tmp_path, tiny_model_dir):
    for i in range(9):
        picture(seed=i).save(photos / f"p{i}.jpg")
    first = {f"p{i}.png" for i in range(9)}
    out = tmp_path / "out"
    assert convert(tiny_model_dir, photos, "-o", out, "--shard", "0/3").code == 0
    picture(seed=20).save(photos / "a.jpg")  # a new photo arrives, sorting before the old ones
    for k in (1, 2):
        run = convert(tiny_model_dir, photos, "-o", out, "--shard", f"{k}/3")
        assert run.code == 0 and run.counts()[1] == 0, run.text
    assert first <= files(out)


# ---------------------------------------------------------------- 7. killed runs, long names


def part_name(pid: int) -> str:
    return f"{PART_PREFIX}{HOST}-{pid}-0123abcd{PART_SUFFIX}"


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_leftovers_are_removed(photos, tmp_path, tiny_model_dir):
    picture().save(photos / "a.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / part_name(dead_pid())).write_bytes(b"half a sketch")
    (out / part_name(1)).write_bytes(b"a running job's")  # pid 1 is alive: a shard job writing beside us
    (out / "notes.part").write_text("the user's")
    run = convert(tiny_model_dir, photos, "-o", out)
    assert run.code == 0, run.text
    assert files(out) == {"a.png", part_name(1), "notes.part"}


def test_longest_file_name_converts(photos, tmp_path, tiny_model_dir):
    name = "n" * 251 + ".jpg"  # 255 bytes: the limit of most file systems
    picture().save(photos / name)
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "out")
    assert run.code == 0 and run.counts() == (1, 0, 0), run.text
    assert files(tmp_path / "out") == {"n" * 251 + ".png"}


def test_sigterm_stops_like_ctrl_c_and_the_count_is_whats_on_disk(tmp_path, tiny_model_dir):
    photos = tmp_path / "many"
    photos.mkdir()
    for i in range(30):
        picture(seed=i).resize((320, 240)).save(photos / f"p{i:02d}.jpg")
    out = tmp_path / "out"
    _, code, stdout, stderr = stop_convert_midway(photos, out, tiny_model_dir, signal.SIGTERM)
    assert code == 130, stdout + stderr
    assert "interrupted" in stderr and "SIGTERM" in stderr and "Traceback" not in stderr, stderr
    on_disk = len(list(out.glob("*.png")))
    assert f"{on_disk} converted before" in stderr, (on_disk, stderr)
    assert not list(out.glob("*.part")) and not list(out.glob(".*"))


# ---------------------------------------------------------------- 8. bounded contact sheets


def test_contact_sheet_is_bounded():
    sheet = contact_sheet([Image.new("L", (50000, 1)), Image.new("L", (1, 3000)), Image.new("L", (40, 30))],
                          height=16, max_side=64)
    assert max(sheet.size) <= 64


def test_sample_sheet_of_a_thin_strip_is_bounded(photos, tmp_path, tiny_model_dir, monkeypatch):
    import sketchify.sheet

    monkeypatch.setattr(sketchify.sheet, "MAX_SIDE", 64)  # the shipped bound is 8192; a tiny one shows it holds
    Image.new("RGB", (2000, 1), (120, 80, 40)).save(photos / "strip.png")
    run = sample(tiny_model_dir, photos / "strip.png", "-n", 2, "-o", tmp_path / "s")
    assert run.code == 0, run.text
    with Image.open(tmp_path / "s" / "strip_sheet.png") as sheet:
        assert max(sheet.size) <= 64
