"""Start a fine-tuning run from a training checkpoint, with new settings and, if asked, a bigger model.

Settings not given keep the checkpoint's values. The model can grow a deeper encoder (--encoder-blocks) or
generator (--generator-blocks), a wider upsampling path (--up-width) and a style-modulated one (--up-modulated).
Each growth starts as a no-op: new blocks are the identity (their last convolution is zero), new channels feed the
next layer through zero weights, and new style modulation scales by 1 and shifts by 0. So the grown model draws
exactly what the old one drew on step 0. The discriminator keeps its weights; both optimisers start fresh. Then
`sketchify train ... -o RUN --resume` trains it.

    python training/default/grow.py training/default/checkpoint.safetensors runs/finetune \
        --encoder-blocks 3 --epochs 60 --lr 1e-4 --diversity-margin 0.06
    python training/default/grow.py training/default/checkpoint.safetensors runs/stage6 --up-width 1 --up-modulated
"""

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from sketchify.checkpoint import read_checkpoint, restore, save_checkpoint
from sketchify.model import PatchDiscriminator, SketchModel
from sketchify.train import make_optimizers

parser = argparse.ArgumentParser()
parser.add_argument("checkpoint", type=Path)
parser.add_argument("run", type=Path)
SETTINGS = {"encoder_blocks": int, "generator_blocks": int, "up_width": float, "epochs": int, "lr": float,
            "diversity_margin": float, "diversity_weight": float, "diversity_knee": float, "ssim_weight": float,
            "l1_weight": float, "edge_weight": float, "adv_weight": float}
for name, kind in SETTINGS.items():
    parser.add_argument("--" + name.replace("_", "-"), type=kind)
parser.add_argument("--style-diversity-margin", metavar="STYLE=MARGIN", action="append", default=[],
                    help="a style's own diversity margin; repeat for several styles")
parser.add_argument("--up-modulated", action="store_true", help="let the style modulate the upsampling path")
args = parser.parse_args()

old_cfg, epoch, tensors, meta = read_checkpoint(args.checkpoint)
old, disc = SketchModel(old_cfg), PatchDiscriminator(channels=old_cfg.disc_channels, layers=old_cfg.disc_layers)
restore(args.checkpoint, tensors, meta, modules={"model": old, "disc": disc}, optimizers={})

cfg = replace(old_cfg, **{k: getattr(args, k) for k in SETTINGS if getattr(args, k) is not None})
for item in args.style_diversity_margin:
    style, _, margin = item.partition("=")
    if style not in cfg.styles:
        parser.error(f"--style-diversity-margin {item}: the styles are {', '.join(cfg.styles)}")
    cfg.style_diversity_margin = {**cfg.style_diversity_margin, style: float(margin)}
cfg.up_modulated = cfg.up_modulated or args.up_modulated
if cfg.encoder_blocks < old_cfg.encoder_blocks:
    parser.error(f"--encoder-blocks can only grow the encoder ({old_cfg.encoder_blocks} blocks now)")
if cfg.generator_blocks < old_cfg.generator_blocks:
    parser.error(f"--generator-blocks can only grow the generator ({old_cfg.generator_blocks} blocks now)")
if cfg.up_channels < old_cfg.up_channels:
    parser.error(f"--up-width can only widen the upsampling path ({old_cfg.up_width} now)")


def widen(fresh: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """The old values in the leading block; inputs from new channels weigh 0, so the old outputs are unchanged."""
    out = fresh.clone()
    if out.dim() > 1:
        out[:, old.shape[1]:] = 0
    out[tuple(slice(0, n) for n in old.shape)] = old
    return out


model = SketchModel(cfg)
state = model.state_dict()
for name, value in old.state_dict().items():  # every old tensor keeps its value; only the new parts are fresh
    state[name] = widen(state[name], value)
model.load_state_dict(state)
for block in [*model.encoder.blocks[old_cfg.encoder_blocks:], *model.generator.blocks[old_cfg.generator_blocks:]]:
    torch.nn.init.zeros_(block.conv2.weight)
    torch.nn.init.zeros_(block.conv2.bias)
if not old_cfg.up_modulated:
    for block in model.generator.up:
        if block.film is not None:
            torch.nn.init.zeros_(block.film.weight)
            torch.nn.init.zeros_(block.film.bias)

photo, style = torch.rand(2, 3, 64, 64), torch.tensor([0, 1])
eps = torch.randn(2, cfg.latent_channels, 16, 16)
with torch.no_grad():
    assert torch.allclose(old(photo, style, eps=eps), model(photo, style, eps=eps), atol=1e-6), \
        "the grown model must start drawing what the old one drew"

opt_g, opt_d = make_optimizers(model, disc, cfg)
args.run.mkdir(parents=True, exist_ok=False)
save_checkpoint(args.run / "checkpoint.safetensors", config=cfg, epoch=0,
                modules={"model": model, "disc": disc}, optimizers={"opt_g": opt_g, "opt_d": opt_d})
print(f"{args.run}: encoder blocks {old_cfg.encoder_blocks} -> {cfg.encoder_blocks}, generator blocks "
      f"{old_cfg.generator_blocks} -> {cfg.generator_blocks}, upsampling width "
      f"{old_cfg.up_channels} -> {cfg.up_channels}{', style-modulated' if cfg.up_modulated else ''}, "
      f"from epoch {epoch} of {args.checkpoint}; resume it with sketchify train ... -o {args.run} --resume")
