"""Where `sketchify convert` writes: outputs beside inputs, re-runs, unwritable folders, folder trees, shards, Ctrl-C."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import assert_no_part_files, convert, digests, files, sample, stop_convert_midway
from corpus import picture

# ---------------------------------------------------------------- outputs


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


def writable_by_us(folder: Path) -> bool:
    try:
        (folder / ".probe").touch()
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


def test_read_only_output_folder(photos, tmp_path, tiny_model_dir):
    for i in range(3):
        picture(seed=i).save(photos / f"img{i}.jpg")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        if writable_by_us(out):
            pytest.skip("running as root: chmod 555 does not stop writing")
        run = convert(tiny_model_dir, photos, "-o", out)
        assert run.code != 0, run.text
        errors = [line for line in run.lines if line.startswith("error: ")]
        assert len(errors) == 1 and str(out) in errors[0], run.text
        assert not run.lines_naming("failed:"), run.text  # one error, not one per photo
        assert files(out) == set()

        run = convert(tiny_model_dir, photos, "-o", out / "sub")  # a folder that cannot be created
        assert run.code != 0 and len([ln for ln in run.lines if ln.startswith("error: ")]) == 1, run.text

        run = sample(tiny_model_dir, photos / "img0.jpg", "-n", 1, "-o", out)
        assert run.code == 2 and len(run.lines) == 1 and run.lines[0].startswith("error: "), run.text
        assert files(out) == set()
    finally:
        out.chmod(0o755)


def test_full_disk_stops_the_batch_with_one_error(photos, tmp_path, tiny_model_dir, monkeypatch):
    """Runs as root too: the disk is full from the third sketch on (ENOSPC from the real write path).

    Saves run in a thread pool, so which sketches besides img0 and img1 got written before the stop depends on
    timing; what must hold is one error, and every file on disk whole and accounted for.
    """
    import errno

    import sketchify.convert as conv

    for i in range(5):
        picture(seed=i).save(photos / f"img{i}.jpg")
    real_save, written, full = conv.save_atomic, [], []

    def filling_up(img, path, fmt, **options):
        if full or path.name == "img2.png":
            full.append(path.name)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(img, path, fmt, **options)
        written.append(path.name)

    monkeypatch.setattr(conv, "save_atomic", filling_up)
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out, "--batch-size", "1")
    assert run.code == 2, run.text
    errors = [line for line in run.lines if line.startswith("error: ")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "stopped" in errors[0], run.text
    assert not run.lines_naming("failed:"), run.text
    assert files(out) == set(written) and {"img0.png", "img1.png"} <= set(written)  # what was written stays, whole
    assert "img2.png" not in written


# ---------------------------------------------------------------- folders


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


# ---------------------------------------------------------------- shards


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


@pytest.mark.parametrize("spec", ["3/2", "x", "2/2", "-1/2", "1/0", "1/2/3", "1", ""])
def test_bad_shard_spec(spec, photos, tmp_path, tiny_model_dir):
    picture().save(photos / "a.jpg")
    out = tmp_path / "out"
    run = convert(tiny_model_dir, photos, "-o", out, "--shard", spec)
    assert run.code == 2, run.text
    assert len(run.lines) == 1 and run.lines[0].startswith("error: ") and "--shard" in run.lines[0], run.text
    assert files(out) == set()


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(tmp_path, tiny_model_dir):
    import signal
    import subprocess

    photos = tmp_path / "many"
    photos.mkdir()
    for i in range(40):
        picture(seed=i).resize((400, 300)).save(photos / f"p{i:02d}.jpg")
    out = tmp_path / "out"
    cmd, code, stdout, stderr = stop_convert_midway(photos, out, tiny_model_dir, signal.SIGINT)
    assert code == 130, stdout + stderr
    assert "interrupted" in stderr and "converted before Ctrl-C" in stderr and "Traceback" not in stderr
    assert not list(out.glob("*.part")) and not list(out.glob(".*"))
    done = len(list(out.glob("*.png")))
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{40 - done} converted, {done} skipped, 0 failed" in rerun.stdout
