"""A training run folder that stays whole: the checkpoint never replaced by a broken one, the log and the checkpoint
in step, --overwrite that starts clean, a full disk that stops with one line, files written with the umask."""

from __future__ import annotations

import errno
import json
import os
import stat

import pytest
import torch
from conftest import cli, tiny_config, tiny_settings

import sketchify.files
import sketchify.train
from sketchify.config import LOSS_WEIGHTS, TrainConfig
from sketchify.errors import SketchifyError
from sketchify.model import SketchModel
from sketchify.serialization import CHECKPOINT_NAME, read_checkpoint, save_model


def train_cli(data, run, *extra, epochs=1):
    return cli("train", data, "-o", run, *tiny_settings(epochs=epochs), "--device", "cpu", *extra)


def resume(data, run, *extra):
    return cli("train", data, "-o", run, "--resume", "--device", "cpu", *extra)


def log_epochs(run):
    return [json.loads(line)["epoch"] for line in (run / "log.jsonl").read_text().splitlines()]


def one_error(result, *needles):
    assert result.code == 2, result.text
    errors = [line for line in result.lines if line.startswith("error: ")]
    assert errors == result.lines[-1:], result.text
    for needle in needles:
        assert needle in errors[0], result.text
    return errors[0]


# ---------------------------------------------------------------- a broken state never replaces a good checkpoint


def test_absurd_loss_weights_are_refused_before_any_work(pair_dir, tmp_path):
    for bad in ("loss_weights.kl=1e37", "loss_weights.adv=1e7", "kl_scales.16=1e30"):
        one_error(train_cli(pair_dir, tmp_path / "run", "--set", bad), "1,000,000")
        assert not (tmp_path / "run").exists()
    assert TrainConfig(loss_weights={**LOSS_WEIGHTS, "kl": 1e6}).check() == []  # the bound itself is fine


def test_infinite_optimizer_state_never_replaces_the_last_good_checkpoint(pair_dir, trained_run, monkeypatch):
    run = trained_run
    before = (run / CHECKPOINT_NAME).read_bytes()
    real = sketchify.train.train_step

    def overflowing(g_step, d_step, opt_g, opt_d, *args, **kwargs):  # finite losses, but Adam's moments overflow
        losses = real(g_step, d_step, opt_g, opt_d, *args, **kwargs)
        for state in opt_g.state.values():
            state["exp_avg_sq"].fill_(float("inf"))
        return losses

    monkeypatch.setattr(sketchify.train, "train_step", overflowing)
    error = one_error(resume(pair_dir, run, "--epochs", "2"), "NaN or infinite", "epoch 2", "intact")
    assert "opt_g" in error
    assert (run / CHECKPOINT_NAME).read_bytes() == before
    assert log_epochs(run) == [1]  # no line for an epoch whose checkpoint was not written
    monkeypatch.undo()
    assert resume(pair_dir, run, "--epochs", "2").code == 0  # the run goes on from its last good epoch
    assert log_epochs(run) == [1, 2]


# ---------------------------------------------------------------- the log and the checkpoint agree


def test_resume_drops_log_lines_past_the_checkpoint(pair_dir, trained_run):
    run = trained_run
    with (run / "log.jsonl").open("a") as f:  # killed after logging epoch 2, before its checkpoint
        f.write(json.dumps({"epoch": 2, "tone": 0.5}) + "\n" + '{"epoch": 3, "to')
    assert resume(pair_dir, run, "--epochs", "3").code == 0
    assert log_epochs(run) == [1, 2, 3]


def test_resume_restores_the_log_line_of_the_checkpoints_epoch(pair_dir, trained_run):
    run = trained_run
    assert resume(pair_dir, run, "--epochs", "2").code == 0
    lines = (run / "log.jsonl").read_text().splitlines()
    (run / "log.jsonl").write_text(lines[0] + "\n")  # killed after checkpoint 2, before its log line
    assert resume(pair_dir, run, "--epochs", "3").code == 0
    assert (run / "log.jsonl").read_text().splitlines()[:2] == lines
    assert log_epochs(run) == [1, 2, 3]


def test_overwrite_clears_the_old_runs_files_and_only_those(pair_dir, trained_run):
    run = trained_run
    assert resume(pair_dir, run, "--epochs", "2").code == 0
    (run / "notes.txt").write_text("mine")
    (run / "samples" / "favourite.png").write_bytes(b"mine")
    for _ in range(2):
        assert train_cli(pair_dir, run, "--overwrite").code == 0
    assert log_epochs(run) == [1]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "favourite.png"]
    assert (run / "notes.txt").read_text() == "mine"
    assert read_checkpoint(run / CHECKPOINT_NAME).epoch == 1


def test_a_killed_overwrite_leaves_no_old_checkpoint_for_resume(pair_dir, trained_run, monkeypatch):
    run = trained_run

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sketchify.train, "train_step", killed)
    assert train_cli(pair_dir, run, "--overwrite", "--set", "seed=5").code == 130
    monkeypatch.undo()
    assert not (run / CHECKPOINT_NAME).exists() and not (run / "model").exists()
    one_error(resume(pair_dir, run), "no checkpoint to resume from")


def test_an_overwrite_with_bad_data_keeps_the_old_run(pair_dir, trained_run, tmp_path):
    run = trained_run
    before = (run / CHECKPOINT_NAME).read_bytes()
    (tmp_path / "empty" / "photos").mkdir(parents=True)
    one_error(train_cli(tmp_path / "empty", run, "--overwrite"), "sketches/")
    assert (run / CHECKPOINT_NAME).read_bytes() == before and log_epochs(run) == [1]


# ---------------------------------------------------------------- a full disk, odd files, modes


@pytest.mark.parametrize("what", ["checkpoint", "model"])
def test_a_full_disk_while_saving_stops_with_one_line_and_keeps_the_checkpoint(what, pair_dir, trained_run,
                                                                               monkeypatch):
    run = trained_run
    before = (run / CHECKPOINT_NAME).read_bytes()
    real = sketchify.files.os.fsync

    def full(fd):  # the disk fills while the checkpoint (or the model's weights) is written
        with open(f"/proc/self/fd/{fd}", "rb") as f:  # the file being written, opened again to read
            head = f.read(1 << 16)
        if b"opt_g" in head if what == "checkpoint" else b"encoder." in head and b"opt_g" not in head:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(sketchify.files.os, "fsync", full)
    epochs = "2" if what == "checkpoint" else "1"  # epoch 1 is done: resuming it only exports the model
    error = one_error(resume(pair_dir, run, "--epochs", epochs), os.strerror(errno.ENOSPC), "--resume")
    assert ("model.safetensors" if what == "model" else CHECKPOINT_NAME) in error
    monkeypatch.undo()
    assert (run / CHECKPOINT_NAME).read_bytes() == before
    assert not [p for p in run.rglob("*.part")]


def test_safetensors_errors_while_saving_are_one_line(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    def refuse(tensors, metadata=None):
        raise SafetensorError("Error while serializing: IoError(StorageFull)")

    monkeypatch.setattr("safetensors.torch.save", refuse)
    with pytest.raises(SketchifyError, match="model.safetensors.*StorageFull"):
        save_model(SketchModel(tiny_config()), tmp_path / "m")


def test_checkpoint_and_model_are_written_with_the_umask(pair_dir, tmp_path):
    old = os.umask(0o022)
    try:
        assert train_cli(pair_dir, tmp_path / "run").code == 0
    finally:
        os.umask(old)
    for path in [tmp_path / "run" / CHECKPOINT_NAME, *(tmp_path / "run" / "model").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_a_checkpoint_that_is_not_a_file_is_named_as_what_it_is(pair_dir, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / CHECKPOINT_NAME).mkdir()
    one_error(resume(pair_dir, run), CHECKPOINT_NAME, "folder")
    one_error(train_cli(pair_dir, run, "--overwrite"), CHECKPOINT_NAME, "folder")
    (run / CHECKPOINT_NAME).rmdir()
    os.mkfifo(run / CHECKPOINT_NAME)
    one_error(resume(pair_dir, run), CHECKPOINT_NAME, "not a regular file")


def test_train_into_a_file_fails_before_loading_data(pair_dir, tmp_path, monkeypatch):
    (tmp_path / "run").write_text("not a folder")

    def never(*args, **kwargs):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(sketchify.train, "load_data", never)
    error = one_error(train_cli(pair_dir, tmp_path / "run"), "not a folder")
    assert "checkpoint is whole" not in error


def test_a_write_error_before_any_checkpoint_does_not_claim_one(pair_dir, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sketchify.train.TrainConfig, "save", full)  # training.json, written before epoch 1
    error = one_error(train_cli(pair_dir, tmp_path / "run"), os.strerror(errno.ENOSPC))
    assert "checkpoint is whole" not in error and "no checkpoint" in error


def test_nan_weights_in_a_model_are_never_saved(tmp_path):
    model = SketchModel(tiny_config())
    with torch.no_grad():
        next(iter(model.parameters())).fill_(float("nan"))
    with pytest.raises(SketchifyError, match="NaN or infinite"):
        save_model(model, tmp_path / "m")
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_a_new_model_draws_at_the_size_it_learned_at(pair_dir, tmp_path):
    # draw_size follows load_size for a new run (the scale faces were learned at), unless --set names it
    from conftest import cli, tiny_settings

    from sketchify.config import ModelConfig

    given = tiny_settings(epochs=1)
    pairs = [(given[i], given[i + 1]) for i in range(0, len(given), 2)]
    args = [a for flag, value in pairs if not value.startswith("draw_size=") for a in (flag, value)]
    run = tmp_path / "run"
    result = cli("train", pair_dir, "-o", run, *args)
    assert result.code == 0, result.text
    assert "draw_size follows load_size: 240 -> 40" in result.text
    assert ModelConfig.load(run / "model" / "config.json").draw_size == 40
