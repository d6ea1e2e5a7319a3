"""Saving and loading: the model folder (config.json + model.safetensors) and the training checkpoint.

Both are safetensors files, never pickles: a bad or hostile file is an error, never code execution.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn

from .config import ModelConfig, TrainConfig, parse_json
from .errors import SketchifyError
from .files import atomic_write, check_regular, write_durably
from .model import SketchModel

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CHECKPOINT_NAME = "checkpoint.safetensors"
DISCRIMINATOR_NAME = "discriminator.safetensors"  # beside a model's weights: training's adversary, to continue it


# the model folder, as huggingface_hub lays it out


def save_model(model: SketchModel, folder: str | Path) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_tensors(folder / WEIGHTS_NAME, cpu_state(model), {"format": "pt"})
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
    write_tensors(Path(folder) / DISCRIMINATOR_NAME, cpu_state(disc), {"format": "pt"})


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


class NonFiniteState(SketchifyError):
    """Weights or optimizer state that hold NaN or infinity: never written (they would never load again)."""


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """A safetensors file, written as every output is: atomically, synced, with the mode the umask gives (safetensors'
    own save_file makes it owner-only, and its write errors are not OSErrors). Checked first: a broken state never
    replaces a good file."""
    from safetensors import SafetensorError
    from safetensors.torch import save

    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise NonFiniteState(f"{path}: not saved, {bad} holds NaN or infinite values")
    try:
        data = save(tensors, metadata=metadata)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise SketchifyError(f"{path}: cannot write ({first_line(e)})") from None
    write_durably(path, data)


def first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def load_discriminator(folder: str | Path) -> dict[str, torch.Tensor] | None:
    """The discriminator's weights saved beside a model, if any (a model folder needs none to draw)."""
    path = Path(folder) / DISCRIMINATOR_NAME
    return load_weights(path) if path.is_file() else None


def header(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """The tensors' shapes and the metadata from a safetensors file's header, without reading the tensors."""
    from safetensors import SafetensorError, safe_open

    check_file(path)
    try:
        with safe_open(str(path), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}, f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise SketchifyError(f"{path}: not a readable safetensors file ({first_line(e)})") from None


def header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    return header(path)[0]


def check_file(path: Path) -> None:
    """A missing file is named as missing; a folder, pipe or device as what it is (a pipe is never opened)."""
    if not path.exists():
        raise SketchifyError(f"{path}: missing; a model folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    check_regular(path)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file (never a pickle): floating-point numbers only, all finite."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    check_file(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise SketchifyError(f"{path}: not a readable safetensors file ({first_line(e)})") from None
    for name, v in tensors.items():
        if not v.is_floating_point():  # integer or bool weights would load (cast to float) and draw a black page
            raise SketchifyError(f"{path}: {name} holds {str(v.dtype).removeprefix('torch.')} values, not floating "
                                 "point; the weights are broken")
        if not torch.isfinite(v).all():  # NaN or inf weights draw black or blank pages; refuse them here
            raise SketchifyError(f"{path}: {name} holds NaN or infinite values; the weights are broken")
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


MODULES = ("model", "disc")  # what a checkpoint holds, as its tensors' prefixes
OPTIMIZERS = ("opt_g", "opt_d")
ADAM_STATE = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")  # step is a scalar, the rest its parameter's shape


def save_checkpoint(path: Path, *, model: ModelConfig, train: TrainConfig, epoch: int, modules: dict,
                    optimizers: dict, log: dict | None = None) -> None:
    """All that --resume needs, in one file; log (the epoch's line of log.jsonl) goes with it, so that the log
    can be made to agree with the checkpoint whatever was killed when."""
    tensors = {}
    meta = {"epoch": str(epoch), "model": json.dumps(model.to_dict()), "train": json.dumps(train.to_dict())}
    if log is not None:
        meta["log"] = json.dumps(log)
    for name, module in modules.items():
        tensors.update({f"{name}.{k}": v for k, v in cpu_state(module).items()})
    for name, opt in optimizers.items():
        state = opt.state_dict()
        for pid, entries in state["state"].items():
            for k, v in entries.items():
                tensors[f"{name}.{pid}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
        meta[name] = json.dumps(state["param_groups"])
    write_tensors(path, tensors, meta)  # a killed run keeps the last one whole


def read_checkpoint(path: Path, *, parts: tuple[str, ...] = MODULES + OPTIMIZERS) -> Checkpoint:
    """A training checkpoint: its configs (every number bounded) and epoch from the metadata, then the name and
    shape of every tensor of `parts` checked against what those configs build on the meta device, and only then
    the tensors read. A hostile file allocates nothing. --init-from needs only the model's part."""
    shapes, meta = header(path)
    try:
        model = ModelConfig.from_dict(json_object(meta, "model"))
        train = TrainConfig.from_dict(json_object(meta, "train"))
        epoch = int(meta.get("epoch", "none"))
        if epoch < 0:
            raise ValueError(f"epoch {epoch}")
    except (ValueError, SketchifyError) as e:
        raise SketchifyError(f"{path}: not a sketchify training checkpoint ({first_line(e)})") from None
    check_checkpoint(path, shapes, meta, model, train, parts)
    return Checkpoint(model, train, epoch, load_weights(path), meta)


def json_object(meta: dict[str, str], key: str) -> dict:
    if key not in meta:
        raise SketchifyError(f"no {key} config in its metadata")
    d = parse_json(meta[key], f"its {key} config")
    if not isinstance(d, dict):
        raise SketchifyError(f"its {key} config is not a JSON object")
    return d


def check_checkpoint(path: Path, shapes: dict[str, tuple[int, ...]], meta: dict[str, str], model_cfg: ModelConfig,
                     train_cfg: TrainConfig, parts: tuple[str, ...]) -> None:
    """Every tensor's name and shape against the models and optimizers the configs build, on the meta device."""
    from .model import Discriminator
    from .perceptual import NETS
    from .step import make_optimizers

    with torch.device("meta"):  # shapes only: nothing is allocated, however large the configs say the model is
        model = SketchModel(model_cfg)
        disc = Discriminator(model_cfg, feature_channels=NETS["alex"][1])  # as training builds it
        opt_g, opt_d = make_optimizers(model, disc, train_cfg)
    strangers = sorted(k for k in shapes if k.split(".", 1)[0] not in MODULES + OPTIMIZERS)
    if strangers:
        raise SketchifyError(f"{path}: not a sketchify training checkpoint (a tensor named {strangers[0]})")
    for name, module in {"model": model, "disc": disc}.items():
        if name in parts:
            check_shapes(module, prefixed(shapes, name), f"{path}: {name} does not match its config")
    for name, opt in {"opt_g": opt_g, "opt_d": opt_d}.items():
        if name in parts:
            check_optimizer(path, name, opt, prefixed(shapes, name), meta.get(name))


def check_optimizer(path: Path, name: str, opt: torch.optim.Optimizer, shapes: dict[str, tuple[int, ...]],
                    groups: str | None) -> None:
    """State tensors named <parameter index>.<Adam's entry>, each of its parameter's shape; saved settings of the
    optimizer's own structure and types (load_state_dict checks neither: a wrong one fails mid-epoch)."""
    params = [p for group in opt.param_groups for p in group["params"]]
    for key, shape in shapes.items():
        pid, _, entry = key.partition(".")
        # int() of thousands of digits is itself an error: a parameter number has a few
        if not (pid.isdecimal() and len(pid) < 10 and int(pid) < len(params) and entry in ADAM_STATE):
            raise SketchifyError(f"{path}: optimizer state {name}.{key} is not <parameter number>.<"
                                 f"{' or '.join(ADAM_STATE)}> of {name}'s {len(params)} parameters")
        want = () if entry == "step" else tuple(params[int(pid)].shape)
        if shape != want:
            raise SketchifyError(f"{path}: optimizer state {name}.{key} has shape {shape}, its parameter wants {want}")
    where = f"{path}: optimizer settings {name}"
    saved, own = parse_json(groups or "null", where), opt.state_dict()["param_groups"]
    if not isinstance(saved, list) or len(saved) != len(own):
        raise SketchifyError(f"{where}: expected a list of {len(own)} parameter groups")
    for group, mine in zip(saved, own):
        problem = group_problem(group, mine)
        if problem:
            raise SketchifyError(f"{where}: {problem}")


def group_problem(saved, own: dict) -> str | None:
    """What is wrong with a saved parameter group, if anything: its keys the optimizer's own (or fewer), each value
    of the same type, its parameters the same."""
    if not isinstance(saved, dict):
        return "a parameter group is not an object"
    unknown = sorted(set(saved) - set(own))
    if unknown:
        return f"unknown setting {unknown[0][:40]!r}"
    wrong = next((k for k, v in saved.items() if not same_kind(v, own[k])), None)
    if wrong is not None:
        return f"setting {wrong!r} is of the wrong type (like {own[wrong]!r})"
    if saved.get("params") != own["params"]:
        return "its parameters are not the model's"
    return None


def same_kind(value, want) -> bool:
    """value (from JSON) is of want's type: a finite number for a number, a bool for a bool, the same length of
    list for a tuple; None (foreach, fused: "let torch choose") takes a bool too."""
    if isinstance(want, bool) or want is None:
        return isinstance(value, bool) or (want is None and value is None)
    if isinstance(want, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(want, (list, tuple)):
        return isinstance(value, list) and len(value) == len(want) and all(map(same_kind, value, want))
    return isinstance(value, type(want))


def prefixed(tensors: dict, name: str) -> dict:
    """What a checkpoint holds for one module (tensors or their shapes), under their own names."""
    return {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")}


def restore(path: Path, ckpt: Checkpoint, *, modules: dict, optimizers: dict) -> None:
    """Load a checkpoint that read_checkpoint checked into the modules and optimizers training built."""
    tensors, meta = ckpt.tensors, ckpt.meta
    for name, module in modules.items():
        load_strict(module, prefixed(tensors, name), f"{path}: {name} does not match its config")
    for name, opt in optimizers.items():
        state: dict = defaultdict(dict)
        for key, v in prefixed(tensors, name).items():
            pid, entry = key.split(".", 1)
            state[int(pid)][entry] = v
        try:
            opt.load_state_dict({"state": dict(state), "param_groups": json.loads(meta[name])})
        except (KeyError, ValueError, RuntimeError) as e:
            raise SketchifyError(f"{path}: optimizer state {name} is unreadable ({e})") from None
