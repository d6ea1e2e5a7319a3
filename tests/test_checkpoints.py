"""Hostile or broken checkpoints for `train --resume` and `train --init-from FILE`: every config number, tensor
name, shape and dtype checked on the meta device before anything is built; one line each, never a traceback."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import cli, tiny_settings
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import sketchify.model
from sketchify.serialization import CHECKPOINT_NAME


@pytest.fixture
def run(trained_run):
    return trained_run


def edit(path, tensors=None, **meta):
    """Rewrite a checkpoint with some tensors and metadata entries changed (a value of None drops a tensor)."""
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    state = load_file(str(path))
    for k, v in (tensors or {}).items():
        state.pop(k) if v is None else state.__setitem__(k, v)
    save_file(state, str(path), metadata={**metadata, **meta})


def one_error(result, *needles):
    assert result.code == 2, result.text
    assert len(result.lines) == 1 and result.lines[0].startswith("error: "), result.text
    for needle in needles:
        assert needle in result.lines[0], result.text


def both_ways(pair_dir, run, tmp_path, *needles):
    """--resume and --init-from the checkpoint: the same one-line error, and nothing trained."""
    before = (run / CHECKPOINT_NAME).read_bytes()
    one_error(cli("train", pair_dir, "-o", run, "--resume", "--epochs", "2", "--device", "cpu"), CHECKPOINT_NAME,
              *needles)
    one_error(cli("train", pair_dir, "-o", tmp_path / "new", "--init-from", run / CHECKPOINT_NAME,
                  *tiny_settings(epochs=1), "--device", "cpu"), CHECKPOINT_NAME, *needles)
    assert (run / CHECKPOINT_NAME).read_bytes() == before and not (tmp_path / "new").exists()


@pytest.mark.parametrize("model", ["5", "null", "[1, 2]", '"widths"', "[" * 100_000 + "]" * 100_000],
                         ids=["number", "null", "list", "string", "nested"])
def test_a_model_config_that_is_not_an_object(model, pair_dir, run, tmp_path):
    edit(run / CHECKPOINT_NAME, model=model)
    both_ways(pair_dir, run, tmp_path, "model")


def test_a_huge_declared_model_is_never_built(pair_dir, run, tmp_path, monkeypatch):
    config = json.loads(load_meta(run / CHECKPOINT_NAME)["model"])
    edit(run / CHECKPOINT_NAME, model=json.dumps({**config, "widths": [4096] * 5, "deep_blocks": 64}))
    real = sketchify.model.SketchModel.__init__

    def only_on_meta(self, config):  # a real model of this config would take tens of GB
        assert config.widths[0] < 4096 or torch.empty(0).device.type == "meta", "built a real model first"
        real(self, config)

    monkeypatch.setattr(sketchify.model.SketchModel, "__init__", only_on_meta)
    both_ways(pair_dir, run, tmp_path, "shape")


def load_meta(path):
    with safe_open(str(path), "pt") as f:
        return f.metadata()


@pytest.mark.parametrize("name", ["opt_g.notanint.exp_avg", "opt_g.0.momentum", "opt_d.99999.exp_avg",
                                  "opt_g." + "9" * 5000 + ".exp_avg", "scheduler.0.x"],
                         ids=["word", "entry", "past_the_end", "5000_digits", "prefix"])
def test_an_optimizer_tensor_with_a_bad_name(name, pair_dir, run):
    edit(run / CHECKPOINT_NAME, {name: torch.zeros(3)})
    one_error(cli("train", pair_dir, "-o", run, "--resume", "--epochs", "2", "--device", "cpu"), name[:20])


@pytest.mark.parametrize("name", ["opt_g.0.exp_avg", "opt_d.1.exp_avg_sq"])
def test_a_wrong_shaped_optimizer_moment_fails_before_training(name, pair_dir, run):
    edit(run / CHECKPOINT_NAME, {name: torch.zeros(7, 7)})
    one_error(cli("train", pair_dir, "-o", run, "--resume", "--epochs", "2", "--device", "cpu"), name, "shape")
    assert not (run / "samples" / "epoch_002.png").exists()  # refused before the epoch, not in it


@pytest.mark.parametrize("groups", ["5", "[]", '[{"params": [0]}]', "not json"])
def test_optimizer_settings_that_do_not_fit(groups, pair_dir, run):
    edit(run / CHECKPOINT_NAME, opt_g=groups)
    one_error(cli("train", pair_dir, "-o", run, "--resume", "--epochs", "2", "--device", "cpu"), "opt_g")


def test_an_optimizer_setting_of_the_wrong_type(pair_dir, run):
    groups = json.loads(load_meta(run / CHECKPOINT_NAME)["opt_g"])
    groups[0]["betas"] = "fast"
    edit(run / CHECKPOINT_NAME, opt_g=json.dumps(groups))
    one_error(cli("train", pair_dir, "-o", run, "--resume", "--epochs", "2", "--device", "cpu"), "opt_g", "betas")


def test_integer_weights_in_a_checkpoint(pair_dir, run, tmp_path):
    state = load_file(str(run / CHECKPOINT_NAME))
    name = next(k for k in state if k.startswith("model.generator."))
    edit(run / CHECKPOINT_NAME, {name: state[name].to(torch.int32)})
    both_ways(pair_dir, run, tmp_path, name, "int32")


@pytest.mark.parametrize("epoch", ["-1", "x", "1e9"])
def test_a_bad_epoch(epoch, pair_dir, run):
    edit(run / CHECKPOINT_NAME, epoch=epoch)
    one_error(cli("train", pair_dir, "-o", run, "--resume", "--device", "cpu"), "epoch")
