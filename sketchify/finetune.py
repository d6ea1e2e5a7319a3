"""Starting a run from a trained model (`train --init-from`), growing it where its shape allows.

Growth is a no-op at the start: new blocks are the identity (their last convolution is zero), new channels feed
the next layer through zero weights, new style modulation scales by 1 and shifts by 0, and new styles get fresh
codes. So the grown model draws exactly what the old one drew until training moves it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import torch

from .config import ModelConfig
from .errors import SketchifyError
from .model import PatchDiscriminator, SketchModel
from .serialization import CHECKPOINT_NAME, load_model, load_strict, prefixed, read_checkpoint, restore

GROWABLE = ("encoder_blocks", "generator_blocks", "up_width", "up_modulated", "styles", "default_style",
            "disc_channels", "disc_layers")  # the discriminator restarts when its shape changes


@dataclass
class Source:
    model: SketchModel
    disc: dict[str, torch.Tensor] | None  # the discriminator's weights, when a checkpoint has them
    where: Path | str


def load_source(source: str | Path) -> Source:
    """A checkpoint file, a run folder (its checkpoint, else its model/), a model folder or a Hub repo id."""
    path = Path(source).expanduser()
    if path.is_dir() and (path / CHECKPOINT_NAME).is_file():
        path = path / CHECKPOINT_NAME
    elif path.is_dir() and (path / "model").is_dir():
        return Source(load_model(path / "model"), None, path / "model")
    if path.is_file():
        ckpt = read_checkpoint(path)
        model = SketchModel(ckpt.model)
        restore(path, ckpt, modules={"model": model}, optimizers={})
        return Source(model.eval(), prefixed(ckpt.tensors, "disc"), path)
    return Source(load_model(source), None, source)


def grow(old: SketchModel, config: ModelConfig) -> SketchModel:
    """A model of the new shape that draws what old draws, for old's styles."""
    before = old.config
    fixed = [f.name for f in fields(ModelConfig) if f.name not in GROWABLE
             and getattr(before, f.name) != getattr(config, f.name)]
    shrinks = [name for name, smaller in [
        ("encoder_blocks", config.encoder_blocks < before.encoder_blocks),
        ("generator_blocks", config.generator_blocks < before.generator_blocks),
        ("up_width", config.up_channels < before.up_channels),
        ("up_modulated", before.up_modulated and not config.up_modulated),
        ("styles", config.styles[:len(before.styles)] != before.styles),
    ] if smaller]
    if fixed or shrinks:
        name = (fixed or shrinks)[0]
        raise SketchifyError(f"--init-from: cannot change {name} from {getattr(before, name)} to "
                             f"{getattr(config, name)}; a model can only grow (more blocks, a wider or modulated "
                             "upsampling path, styles added at the end)")
    new = SketchModel(config)
    state = new.state_dict()
    for name, value in old.state_dict().items():
        state[name] = widen(state[name], value)
    new.load_state_dict(state)
    with torch.no_grad():
        for block in [*new.encoder.blocks[before.encoder_blocks:], *new.generator.blocks[before.generator_blocks:]]:
            block.conv2.weight.zero_()
            block.conv2.bias.zero_()
        if not before.up_modulated:
            for block in new.generator.up:
                if block.film is not None:
                    block.film.weight.zero_()
                    block.film.bias.zero_()
    if not draws_alike(old, new):
        raise SketchifyError("--init-from: this change of shape cannot start from the old weights as a no-op")
    return new


def widen(fresh: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """The old values in the leading block; inputs from new channels weigh 0, so the old outputs are unchanged."""
    out = fresh.clone()
    if out.dim() > 1:
        out[:, old.shape[1]:] = 0
    out[tuple(slice(0, n) for n in old.shape)] = old
    return out


@torch.no_grad()
def draws_alike(old: SketchModel, new: SketchModel) -> bool:
    old, new = old.eval(), new.eval()
    photo = torch.rand(len(old.config.styles), 3, 32, 32, generator=torch.Generator().manual_seed(0))
    style = torch.arange(len(old.config.styles))
    eps = torch.randn(len(style), old.config.latent_channels, 8, 8, generator=torch.Generator().manual_seed(1))
    return torch.allclose(old(photo, style, eps=eps), new(photo, style, eps=eps), atol=1e-5)


def start_from(source: Source, model: SketchModel, disc: PatchDiscriminator, log) -> None:
    """Copy (and grow) the source's weights into a fresh model, and its discriminator where shapes match."""
    model.load_state_dict(grow(source.model, model.config).state_dict())
    log(f"starting from {source.where}" + ("" if model.config == source.model.config else ", grown"))
    if source.disc is not None:
        try:
            load_strict(disc, source.disc, "discriminator")
        except SketchifyError:
            log("the discriminator's shape changed: it starts afresh")
