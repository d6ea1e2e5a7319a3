"""Training checkpoints as one safetensors file: models, discriminator, optimizers and progress, no pickle."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import torch

from .config import SketchConfig
from .errors import SketchifyError
from .model import load_weights


def save_checkpoint(path: Path, *, config: SketchConfig, epoch: int, modules: dict, optimizers: dict) -> None:
    from safetensors.torch import save_file

    tensors, meta = {}, {"epoch": str(epoch), "config": json.dumps(config.to_dict())}
    for name, module in modules.items():
        tensors.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    for name, opt in optimizers.items():
        state = opt.state_dict()
        for pid, entries in state["state"].items():
            for k, v in entries.items():
                tensors[f"{name}.{pid}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
        meta[name] = json.dumps(state["param_groups"])
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)  # atomic: a killed run keeps the previous checkpoint whole


def read_checkpoint(path: Path) -> tuple[SketchConfig, int, dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    tensors = load_weights(path)
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        config = SketchConfig.from_dict(json.loads(meta["config"]))
        epoch = int(meta["epoch"])
    except (KeyError, ValueError, SketchifyError) as e:
        raise SketchifyError(f"{path}: not a sketchify training checkpoint ({e})") from None
    return config, epoch, tensors, meta


def restore(path: Path, tensors: dict, meta: dict, *, modules: dict, optimizers: dict) -> None:
    for name, module in modules.items():
        prefix = f"{name}."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(own, strict=True)
        except (RuntimeError, SketchifyError) as e:
            raise SketchifyError(f"{path}: {name} does not match its config ({str(e).splitlines()[0]})") from None
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
