"""Starting a run from a trained model (`train --init-from`), growing it where its shape allows.

Growth is a no-op at the start: new deep blocks are the identity (their last convolution is zero) and new styles
get fresh codes, so the grown model draws exactly what the old one drew until training moves it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import torch

from .config import ModelConfig
from .errors import SketchifyError
from .model import Discriminator, SketchModel
from .serialization import (
    CHECKPOINT_NAME,
    DEFAULT_SOURCE,
    default_weights,
    load_discriminator,
    load_model,
    load_strict,
    prefixed,
    read_checkpoint,
    resolve_model_folder,
    restore,
)

GROWABLE = ("deep_blocks", "styles", "default_style", "draw_size",
            "disc_channels", "disc_layers")  # the discriminator restarts when its shape changes


@dataclass
class Source:
    model: SketchModel
    disc: dict[str, torch.Tensor] | None  # the discriminator's weights, when a checkpoint has them
    where: Path | str


def load_source(source: str | Path) -> Source:
    """A checkpoint file, a run folder (its checkpoint, else its model/), a model folder, "default" (the shipped
    model) or a Hub repo id."""
    if source == DEFAULT_SOURCE:
        return Source(load_model(source), load_discriminator(default_weights()), default_weights())
    path = Path(source).expanduser()
    if path.is_dir() and (path / CHECKPOINT_NAME).is_file():
        path = path / CHECKPOINT_NAME
    elif path.is_dir() and (path / "model").is_dir():
        path = path / "model"
    if path.is_file():
        ckpt = read_checkpoint(path, parts=("model",))  # checked on the meta device before anything is built
        model = SketchModel(ckpt.model)
        restore(path, ckpt, modules={"model": model}, optimizers={})
        return Source(model.eval(), prefixed(ckpt.tensors, "disc"), path)
    folder = resolve_model_folder(source if not path.is_dir() else path)
    return Source(load_model(folder), load_discriminator(folder), folder)


def grow(old: SketchModel, config: ModelConfig) -> SketchModel:
    """A model of the new shape that draws what old draws, for old's styles."""
    before = old.config
    fixed = [f.name for f in fields(ModelConfig) if f.name not in GROWABLE
             and getattr(before, f.name) != getattr(config, f.name)]
    shrinks = [name for name, smaller in [
        ("deep_blocks", config.deep_blocks < before.deep_blocks),
        ("styles", config.styles[:len(before.styles)] != before.styles),
    ] if smaller]
    if fixed or shrinks:
        name = (fixed or shrinks)[0]
        raise SketchifyError(f"--init-from: cannot change {name} from {getattr(before, name)} to "
                             f"{getattr(config, name)}; a model can only grow (more deep blocks, styles added at "
                             "the end)")
    new = SketchModel(config)
    state = new.state_dict()
    for name, value in old.state_dict().items():
        state[name][:len(value)] = value  # a style's code is a row: new styles keep their fresh rows
    new.load_state_dict(state)
    with torch.no_grad():
        for block in new.generator.blocks[before.deep_blocks:]:  # a residual block with a zero last conv is identity
            block.conv2.weight.zero_()
            block.conv2.bias.zero_()
    if not draws_alike(old, new):
        raise SketchifyError("--init-from: this change of shape cannot start from the old weights as a no-op")
    return new


@torch.no_grad()
def draws_alike(old: SketchModel, new: SketchModel) -> bool:
    old, new = old.eval(), new.eval()
    photo = torch.rand(len(old.config.styles), 3, 32, 32, generator=torch.Generator().manual_seed(0))
    style = torch.arange(len(old.config.styles))
    return torch.allclose(old(photo, style, temperature=0.0), new(photo, style, temperature=0.0), atol=1e-5)


def start_from(source: Source, model: SketchModel, disc: Discriminator, log) -> None:
    """Copy (and grow) the source's weights into a fresh model, and its discriminator where shapes match."""
    model.load_state_dict(grow(source.model, model.config).state_dict())
    log(f"starting from {source.where}" + ("" if model.config == source.model.config else ", grown"))
    if source.disc is not None:
        try:
            load_strict(disc, source.disc, "discriminator")
        except SketchifyError:
            log("the discriminator's shape changed: it starts afresh")
