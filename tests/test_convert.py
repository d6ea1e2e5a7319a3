"""Where `sketchify convert` writes: output names, outputs that are inputs, re-runs, folder trees, shards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_no_part_files, convert, digests, files, sample
from corpus import picture

# output names


def test_names_that_would_collide_in_one_folder(photos, tmp_path, tiny_model_dir):
    for i, name in enumerate(("a.jpg", "a.png", "a-png.jpg", "A.webp")):
        picture(seed=i).save(photos / name)
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out)
    assert run.code == 0 and run.counts() == (4, 0, 0), run.text
    written = files(out)
    assert len(written) == 4 and len({n.casefold() for n in written}) == 4, written  # apart on any disk too
    assert len(run.lines_naming("renamed: ")) == 2, run.text


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


def test_one_folder_given_twice_is_drawn_once(photos, tmp_path, tiny_model_dir, monkeypatch):
    for i in range(3):
        picture(seed=i).save(photos / f"p{i}.jpg")
    os.link(photos / "p0.jpg", tmp_path / "hardlink.jpg")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    run = convert(tiny_model_dir, "photos", photos.resolve(), photos / "p1.jpg", "hardlink.jpg", "-o", out)
    assert run.code == 0 and run.counts() == (3, 0, 0), run.text
    assert files(out) == {"p0.png", "p1.png", "p2.png"}


def test_longest_file_name_converts(photos, tmp_path, tiny_model_dir):
    name = "n" * 251 + ".jpg"  # 255 bytes: the limit of most file systems
    picture().save(photos / name)
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "out")
    assert run.code == 0 and run.counts() == (1, 0, 0), run.text
    assert files(tmp_path / "out") == {"n" * 251 + ".png"}



# never write where an input lies


def test_output_folder_equal_to_input_is_refused(photos, tmp_path, tiny_model_dir):
    for i in range(2):
        picture(seed=i).save(photos / f"img{i}.png")  # PNG: the very names a sketch would take
    before = digests(photos)
    for args in ((photos,), (photos / "img0.png",), (photos, "--overwrite"), (photos, "--recursive")):
        run = convert(tiny_model_dir, *args, "-o", photos)
        assert run.code == 2, (args, run.text)
        assert run.lines[0].startswith("error: ") and "--suffix" in run.text, run.text
        assert digests(photos) == before


def test_output_folder_equal_to_input_with_suffix(photos, tmp_path, tiny_model_dir):
    for i in range(2):
        picture(seed=i).save(photos / f"img{i}.png")
    picture(seed=5).save(photos / "img0.jpg")  # same stem, other type: both get a sketch
    before = digests(photos)
    run = convert(tiny_model_dir, photos, "-o", photos, "--suffix", "_sketch")
    assert run.code == 0, run.text
    assert run.counts() == (3, 0, 0)
    assert set(digests(photos)) == set(before) | {"img0_sketch.png", "img1_sketch.png", "img0-png_sketch.png"}
    assert {k: v for k, v in digests(photos).items() if k in before} == before
    assert_no_part_files(photos)

    after_first = digests(photos)
    run = convert(tiny_model_dir, photos, "-o", photos, "--suffix", "_sketch")  # the sketches are not new photos
    assert run.code == 0, run.text
    assert run.counts() == (0, 3, 0)
    assert digests(photos) == after_first


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



# re-runs


def test_rerun_skips_and_overwrite_redoes(photos, tmp_path, tiny_model_dir):
    for i in range(3):
        picture(seed=i).save(photos / f"img{i}.jpg")
    out = tmp_path / "out"
    assert convert(tiny_model_dir, photos, "-o", out).code == 0
    inodes = {p.name: p.stat().st_ino for p in out.iterdir()}
    (out / "img1.png").unlink()

    run = convert(tiny_model_dir, photos, "-o", out)
    assert run.code == 0 and run.counts() == (1, 2, 0), run.text
    assert (out / "img0.png").stat().st_ino == inodes["img0.png"]  # left alone

    run = convert(tiny_model_dir, photos, "-o", out, "--overwrite")
    assert run.code == 0 and run.counts() == (3, 0, 0), run.text
    assert (out / "img0.png").stat().st_ino != inodes["img0.png"]  # written anew
    assert files(out) == {"img0.png", "img1.png", "img2.png"}
    assert_no_part_files(out)

    run = sample(tiny_model_dir, photos / "img0.jpg", "-n", 1, "-o", out)
    assert run.code == 0, run.text
    run = sample(tiny_model_dir, photos / "img0.jpg", "-n", 1, "-o", out)
    assert run.code == 2 and "--overwrite" in run.text, run.text
    assert sample(tiny_model_dir, photos / "img0.jpg", "-n", 1, "-o", out, "--overwrite").code == 0
    assert_no_part_files(out)


def test_a_skipped_sketch_drawn_otherwise_is_named(photos, tmp_path, tiny_model_dir):
    for i in range(3):
        picture(seed=i).save(photos / f"p{i}.jpg")
    out = tmp_path / "out"
    assert convert(tiny_model_dir, photos, "-o", out, "--style", "light-pencil").code == 0
    run = convert(tiny_model_dir, photos, "-o", out, "--style", "bold-ink")
    assert run.counts() == (0, 3, 0), run.text
    notes = run.lines_naming("drawn with other settings")
    assert len(notes) == 1 and "3 skipped" in notes[0] and "light-pencil" in notes[0] and "--overwrite" in notes[0]
    run = convert(tiny_model_dir, photos, "-o", out, "--style", "light-pencil")  # as drawn: no note
    assert run.counts() == (0, 3, 0) and not run.lines_naming("other settings"), run.text



# folder trees


@pytest.fixture
def tree(photos) -> set[str]:
    """photos/a.jpg, photos/trip/b.jpg, photos/trip/day 2/c.png, photos/trip/day 2/notes.txt"""
    picture(seed=1).save(photos / "a.jpg")
    (photos / "trip" / "day 2").mkdir(parents=True)
    picture(seed=2).save(photos / "trip" / "b.jpg")
    picture(seed=3).save(photos / "trip" / "day 2" / "c.png")
    (photos / "trip" / "day 2" / "notes.txt").write_text("not a photo, and not named like one")
    return {"a.png", "trip/b.png", "trip/day 2/c.png"}


def test_recursive_keeps_folder_structure(tree, photos, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out, "--recursive")
    assert run.code == 0 and run.counts() == (3, 0, 0), run.text
    assert files(out) == tree


def test_without_recursive_subfolders_are_ignored(tree, photos, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out)
    assert run.code == 0 and run.counts() == (1, 0, 0), run.text
    assert files(out) == {"a.png"}

    run = convert(tiny_model_dir, photos / "trip" / "day 2", photos / "trip", "-o", tmp_path / "out2")
    assert run.code == 0 and run.counts() == (2, 0, 0), run.text

    (photos / "a.jpg").unlink()
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "out3")
    assert run.code == 2 and "--recursive" in run.text, run.text
    assert files(tmp_path / "out3") == set()


def test_subfolders_left_out_are_counted(photos, tmp_path, tiny_model_dir):
    picture().save(photos / "a.jpg")
    for name in ("trip", "day 2"):
        (photos / name).mkdir()
        picture(seed=3).save(photos / name / "b.jpg")
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "out")
    assert run.counts() == (1, 0, 0), run.text
    summary = run.lines_naming("converted,")[0]
    assert "2 subfolders not searched" in summary and "--recursive" in summary, run.text


def test_output_inside_input_tree_is_not_reconverted(tree, photos, tmp_path, tiny_model_dir):
    out = photos / "sketches"
    run = convert(tiny_model_dir, photos, "-o", out, "--recursive")
    assert run.code == 0 and run.counts() == (3, 0, 0), run.text
    assert files(out) == tree

    run = convert(tiny_model_dir, photos, "-o", out, "--recursive")
    assert run.code == 0 and run.counts() == (0, 3, 0), run.text
    assert files(out) == tree

    shutil.rmtree(out)  # else its sketches are photos like any other for a different -o
    nested = photos / "trip" / "sketches"  # deeper in the tree, and given as a relative path
    cwd = os.getcwd()
    os.chdir(photos)
    try:
        for _ in range(2):
            run = convert(tiny_model_dir, ".", "-o", Path("trip") / "sketches", "--recursive")
            assert run.code == 0, run.text
    finally:
        os.chdir(cwd)
    assert run.counts() == (0, 3, 0), run.text
    assert files(nested) == tree



# shards


def test_shards_cover_every_file_once(tree, photos, tmp_path, tiny_model_dir):
    for i in range(5):
        picture(seed=10 + i).save(photos / "trip" / f"extra{i}.jpg")
    everything = tree | {f"trip/extra{i}.png" for i in range(5)}
    n = 3
    shards = []
    for k in range(n):
        out = tmp_path / f"shard{k}"
        run = convert(tiny_model_dir, photos, "-o", out, "--recursive", "--shard", f"{k}/{n}")
        assert run.code == 0, run.text
        shards.append(files(out))
        assert run.counts() == (len(shards[-1]), 0, 0)
    assert set().union(*shards) == everything
    assert sum(len(s) for s in shards) == len(everything)  # disjoint
    assert all(shards)

    shared = tmp_path / "shared"  # N jobs into one folder: nothing converted twice
    converted = 0
    for k in range(n):
        run = convert(tiny_model_dir, photos, "-o", shared, "--recursive", "--shard", f"{k}/{n}")
        converted += run.counts()[0]
        assert run.counts()[1] == 0, run.text
    assert converted == len(everything) and files(shared) == everything


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


@pytest.mark.parametrize("spec", ["3/2", "x", "2/2", "-1/2", "1/0", "1/2/3", "1", ""])
def test_bad_shard_spec(spec, photos, tmp_path, tiny_model_dir):
    picture().save(photos / "a.jpg")
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out, "--shard", spec)
    assert run.code == 2, run.text
    assert len(run.lines) == 1 and run.lines[0].startswith("error: ") and "--shard" in run.lines[0], run.text
    assert files(out) == set()
