"""Start a fine-tuning run from a training checkpoint, with new settings and, if asked, a deeper encoder.

Settings not given keep the checkpoint's values. New encoder blocks start as the identity (their last convolution
is zero), so the grown model draws exactly what the old one drew on step 0. The discriminator keeps its weights;
both optimisers start fresh. Then `sketchify train ... -o RUN --resume` trains it.

    python training/default/grow.py training/default/checkpoint.safetensors runs/finetune \
        --encoder-blocks 3 --epochs 60 --lr 1e-4 --diversity-margin 0.06
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
SETTINGS = {"encoder_blocks": int, "epochs": int, "lr": float, "diversity_margin": float, "diversity_weight": float,
            "diversity_knee": float, "ssim_weight": float}
for name, kind in SETTINGS.items():
    parser.add_argument("--" + name.replace("_", "-"), type=kind)
parser.add_argument("--style-diversity-margin", metavar="STYLE=MARGIN", action="append", default=[],
                    help="a style's own diversity margin; repeat for several styles")
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
if cfg.encoder_blocks < old_cfg.encoder_blocks:
    parser.error(f"--encoder-blocks can only grow the encoder ({old_cfg.encoder_blocks} blocks now)")
model = SketchModel(cfg)
state = model.state_dict()
state.update(old.state_dict())  # every old tensor keeps its value; only the new blocks are fresh
model.load_state_dict(state)
for block in model.encoder.blocks[old_cfg.encoder_blocks:]:
    torch.nn.init.zeros_(block.conv2.weight)
    torch.nn.init.zeros_(block.conv2.bias)

photo, style = torch.rand(2, 3, 64, 64), torch.tensor([0, 1])
assert torch.equal(old.encode(photo, style)[0], model.encode(photo, style)[0]), "grown encoder must start as the old one"

opt_g, opt_d = make_optimizers(model, disc, cfg)
args.run.mkdir(parents=True, exist_ok=False)
save_checkpoint(args.run / "checkpoint.safetensors", config=cfg, epoch=0,
                modules={"model": model, "disc": disc}, optimizers={"opt_g": opt_g, "opt_d": opt_d})
print(f"{args.run}: encoder blocks {old_cfg.encoder_blocks} -> {cfg.encoder_blocks}, from epoch {epoch} of "
      f"{args.checkpoint}; resume it with sketchify train ... -o {args.run} --resume")
