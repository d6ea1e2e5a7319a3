"""Saving and loading: the model folder (config.json + model.safetensors) and the training checkpoint.

Both are safetensors files, never pickles: a bad or hostile file is an error, never code execution.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn

from .config import ModelConfig, TrainConfig
from .errors import SketchifyError
from .files import atomic_write
from .model import SketchModel

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CHECKPOINT_NAME = "checkpoint.safetensors"
DISCRIMINATOR_NAME = "discriminator.safetensors"  # beside a model's weights: training's adversary, to continue it


# the model folder, as huggingface_hub lays it out


def save_model(model: SketchModel, folder: str | Path) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(folder / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    atomic_write(folder / CONFIG_NAME, model.config.save)


def load_model(source: str | Path, *, device: str | torch.device = "cpu") -> SketchModel:
    """A model folder or a Hugging Face Hub repo id -> the model in eval mode. Loading is strict."""
    folder = resolve_model_folder(source)
    config = ModelConfig.load(folder / CONFIG_NAME)  # every number bounded
    with torch.device("meta"):  # shapes only: a config that disagrees with the weights allocates nothing
        check_shapes(SketchModel(config), header_shapes(folder / WEIGHTS_NAME), "weights do not match config.json")
    model = SketchModel(config)
    load_strict(model, load_weights(folder / WEIGHTS_NAME), "weights do not match config.json")
    return model.to(device).eval()


def save_discriminator(disc: nn.Module, folder: str | Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in disc.state_dict().items()}
    atomic_write(Path(folder) / DISCRIMINATOR_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"}))


def load_discriminator(folder: str | Path) -> dict[str, torch.Tensor] | None:
    """The discriminator's weights saved beside a model, if any (a model folder needs none to draw)."""
    path = Path(folder) / DISCRIMINATOR_NAME
    return load_weights(path) if path.is_file() else None


def header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensors' shapes from a safetensors file's header, without reading the tensors."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise SketchifyError(f"{path}: missing; a model folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        with safe_open(str(path), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise SketchifyError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]})") from None


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file (never a pickle)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise SketchifyError(f"{path}: missing; a model folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise SketchifyError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:  # NaN or inf weights draw black or blank pages; refuse them here
        raise SketchifyError(f"{path}: {bad} holds NaN or infinite values; the weights are broken")
    return tensors


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], context: str) -> None:
    """load_state_dict(strict=True) with a one-line error instead of PyTorch's multi-line one."""
    check_shapes(module, {k: tuple(v.shape) for k, v in state.items()}, context)
    module.load_state_dict(state, strict=True)


def check_shapes(module: nn.Module, shapes: dict[str, tuple[int, ...]], context: str) -> None:
    own = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = sorted(set(own) - set(shapes))
    unexpected = sorted(set(shapes) - set(own))
    wrong = sorted(k for k in set(own) & set(shapes) if own[k] != shapes[k])
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
    if wrong:
        k = wrong[0]
        parts.append(f"{k} has shape {shapes[k]}, config wants {own[k]}")
    if parts:
        raise SketchifyError(f"{context}: " + "; ".join(parts))


DEFAULT_SOURCE = "default"  # names the shipped model wherever sketchify is installed (./default is a folder)


def default_weights() -> Path:
    """The shipped model: sketchify/weights in an installed package, weights/ in a source checkout."""
    here = Path(__file__).resolve().parent
    for folder in (here / "weights", here.parent / "weights"):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise SketchifyError("the default weights are missing from this installation; pass --weights FOLDER")


def resolve_model_folder(source: str | Path | None) -> Path:
    """The one place a model's name becomes a folder: None or "default" the shipped model; a local folder as it
    is (a training run folder: its model/); otherwise a Hub repo id ("user/name")."""
    if source is None or source == DEFAULT_SOURCE:
        return default_weights()
    path = Path(source).expanduser()
    if path.is_dir() and not (path / CONFIG_NAME).exists() and (path / "model" / CONFIG_NAME).exists():
        path = path / "model"  # a run folder, as train prints it
    if path.exists():
        if not path.is_dir():
            raise SketchifyError(f"{path}: not a model folder (expected a folder with {CONFIG_NAME} and "
                                 f"{WEIGHTS_NAME})")
        if not (path / CONFIG_NAME).exists() and not (path / WEIGHTS_NAME).exists():
            raise SketchifyError(f"{path}: not a model folder (no {CONFIG_NAME} or {WEIGHTS_NAME})")
        return path
    text = str(source)
    if text.count("/") != 1 or text.startswith((".", "/", "~")) or Path(text.split("/")[0]).is_dir():
        # a local path (its first folder exists here) is never sent to the Hub as a repo id
        raise SketchifyError(f"{source}: no such model folder")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(text, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, "README.md"]))
    except Exception as e:  # the hub raises many kinds; all mean "could not get it"
        raise SketchifyError(f"{source}: no such local folder; as a Hugging Face Hub repo id it could not be fetched "
                             f"from the Hub ({type(e).__name__})") from None


# the training checkpoint: models, discriminator, optimisers and progress in one file


class Checkpoint(NamedTuple):
    model: ModelConfig
    train: TrainConfig
    epoch: int
    tensors: dict[str, torch.Tensor]
    meta: dict[str, str]


def save_checkpoint(path: Path, *, model: ModelConfig, train: TrainConfig, epoch: int, modules: dict,
                    optimizers: dict) -> None:
    from safetensors.torch import save_file

    tensors = {}
    meta = {"epoch": str(epoch), "model": json.dumps(model.to_dict()), "train": json.dumps(train.to_dict())}
    for name, module in modules.items():
        tensors.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    for name, opt in optimizers.items():
        state = opt.state_dict()
        for pid, entries in state["state"].items():
            for k, v in entries.items():
                tensors[f"{name}.{pid}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
        meta[name] = json.dumps(state["param_groups"])
    atomic_write(path, lambda p: save_file(tensors, str(p), metadata=meta))  # a killed run keeps the last one whole


def read_checkpoint(path: Path) -> Checkpoint:
    from safetensors import safe_open

    tensors = load_weights(path)
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        model = ModelConfig.from_dict(json.loads(meta["model"]))
        train = TrainConfig.from_dict(json.loads(meta["train"]))
        epoch = int(meta["epoch"])
    except (KeyError, ValueError, SketchifyError) as e:
        raise SketchifyError(f"{path}: not a sketchify training checkpoint ({e})") from None
    return Checkpoint(model, train, epoch, tensors, meta)


def prefixed(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint holds for one module, under their own names."""
    return {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")}


def restore(path: Path, ckpt: Checkpoint, *, modules: dict, optimizers: dict) -> None:
    tensors, meta = ckpt.tensors, ckpt.meta
    for name, module in modules.items():
        load_strict(module, prefixed(tensors, name), f"{path}: {name} does not match its config")
    for name, opt in optimizers.items():
        state: dict = defaultdict(dict)
        prefix = f"{name}."
        for k, v in tensors.items():
            if k.startswith(prefix):
                pid, key = k[len(prefix):].split(".", 1)
                state[int(pid)][key] = v
        try:
            opt.load_state_dict({"state": dict(state), "param_groups": json.loads(meta[name])})
        except (KeyError, ValueError, RuntimeError) as e:
            raise SketchifyError(f"{path}: optimizer state {name} is unreadable ({e})") from None
