"""Loading a model folder: config checked against the weights' header before anything is built, every number
bounded, broken weights refused, run folders accepted, local paths never sent to the Hub."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import convert
from corpus import picture
from safetensors.torch import load_file, save_file

import sketchify.serialization as serialization
from sketchify.errors import SketchifyError
from sketchify.serialization import load_model


def edit_config(folder, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def test_config_that_disagrees_with_the_weights_builds_nothing(tiny_model_dir, monkeypatch):
    widths = json.loads((tiny_model_dir / "config.json").read_text())["widths"]
    edit_config(tiny_model_dir, widths=[4 * w for w in widths])  # within bounds, but not what the weights hold
    devices = []
    real = serialization.SketchModel

    def recording(config):
        devices.append(torch.empty(0).device.type)  # where this model's tensors would live
        return real(config)

    monkeypatch.setattr(serialization, "SketchModel", recording)
    with pytest.raises(SketchifyError, match="config wants"):
        load_model(tiny_model_dir)
    assert devices == ["meta"]  # shapes compared on the meta device; no real model was allocated


@pytest.mark.parametrize("key, value", [("widths", [8192] * 5), ("widths", [-8] * 5), ("latent_channels", [10**9] * 4),
                                        ("draw_size", 10**9), ("deep_blocks", 10**6), ("disc_layers", 0),
                                        ("styles", [f"s{i}" for i in range(1000)])])
def test_every_config_number_is_bounded(key, value, tiny_model_dir, photos, tmp_path):
    edit_config(tiny_model_dir, **{key: value}, **({"default_style": "s0"} if key == "styles" else {}))
    picture().save(photos / "a.jpg")
    run = convert(tiny_model_dir, photos, "-o", tmp_path / "out")
    assert run.code == 2 and len(run.lines) == 1 and run.lines[0].startswith("error: "), run.text
    assert key.split("_")[0] in run.lines[0], run.text


def test_nan_in_config_is_one_line(tiny_model_dir):
    edit_config(tiny_model_dir, draw_size=math.nan)
    with pytest.raises(SketchifyError, match="draw_size"):
        load_model(tiny_model_dir)


def test_nan_weights_are_refused_at_load(tiny_model_dir):
    weights = tiny_model_dir / "model.safetensors"
    state = load_file(str(weights))
    name = sorted(state)[0]
    state[name] = torch.full_like(state[name], float("nan"))
    save_file(state, str(weights))
    with pytest.raises(SketchifyError, match="NaN"):
        load_model(tiny_model_dir)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_integer_or_bool_weights_are_refused_at_load(dtype, tiny_model_dir, photos, tmp_path):
    weights = tiny_model_dir / "model.safetensors"
    state = load_file(str(weights))
    name = sorted(state)[-1]
    state[name] = state[name].to(dtype)
    save_file(state, str(weights))
    with pytest.raises(SketchifyError, match=f"{name}.*floating point"):
        load_model(tiny_model_dir)
    picture().save(photos / "a.jpg")
    result = convert(tiny_model_dir, photos, "-o", tmp_path / "out")
    assert result.code == 2 and len(result.lines) == 1 and name in result.text, result.text


def test_a_config_nested_too_deeply_is_one_line(tiny_model_dir):
    (tiny_model_dir / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SketchifyError, match="config.json.*nested"):
        load_model(tiny_model_dir)


def test_a_training_run_folder_works_as_its_model(tiny_model_dir, tmp_path, photos):
    run = tmp_path / "run"
    run.mkdir()
    tiny_model_dir.rename(run / "model")
    (run / "training.json").write_text("{}")
    picture().save(photos / "a.jpg")
    result = convert(run, photos, "-o", tmp_path / "out")
    assert result.code == 0 and result.counts() == (1, 0, 0), result.text


def test_a_mistyped_local_path_is_not_sent_to_the_hub(tmp_path, monkeypatch, photos):
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("a local path was sent to the Hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    picture().save(photos / "a.jpg")
    run = convert("runs/mdoel", photos, "-o", tmp_path / "out")
    assert run.code == 2 and "no such model folder" in run.text, run.text


def test_default_names_the_shipped_model_from_any_folder(tmp_path, monkeypatch):
    from sketchify.finetune import load_source

    monkeypatch.chdir(tmp_path)  # not a clone: no weights/ here
    shipped = serialization.default_weights()
    assert serialization.resolve_model_folder("default") == shipped == serialization.resolve_model_folder(None)
    source = load_source("default")  # train --init-from default
    assert source.where == shipped and source.model.config == load_model(shipped).config
    (tmp_path / "default").mkdir()  # a folder of that name is ./default
    with pytest.raises(SketchifyError, match="not a model folder"):
        load_model("./default")
