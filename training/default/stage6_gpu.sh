#!/usr/bin/env bash
# Stage 6: four runs side by side on one GPU, each for MINUTES, then scored on the held-out pairs.
#
#     python training/pack_data.py ../shared/data/fs2k/train ../shared/data/cufs/train ../shared/data/photos/bsds -o .data
#     bash training/default/stage6_gpu.sh 6 .data runs/stage6 [KEEP]
#
# up:       the shipped model (stage 4b) with its upsampling path twice as wide (48 and 24 channels) and
#           modulated by style, grown as a no-op (grow.py) and trained on at lr 1e-4
# up-lp22:  the same, light-pencil's diversity margin raised from 0.14 to 0.22
# up-gen4:  the same as up, with two more generator blocks at 1/4 size (where the strokes are placed)
# scratch:  a wider model from scratch (channels 64, 3 generator blocks, the same upsampling path), lr 2e-4
# Each run's epochs are fitted to MINUTES (--time-limit), so that its learning rate decays to the end.
set -u
MIN=${1:-6}
DATA=${2:-.data}
OUT=${3:-runs/stage6}
KEEP=${4:-}
CKPT=training/default/checkpoint.safetensors
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
mkdir -p "$OUT"

grow() { python3 training/default/grow.py "$CKPT" "$OUT/$1" --up-width 1 --up-modulated --lr 1e-4 --epochs 400 "${@:2}"; }
grow up
grow up-lp22 --style-diversity-margin light-pencil=0.22
grow up-gen4 --generator-blocks 4
mkdir -p "$OUT/scratch"
python3 - "$OUT/scratch/config.json" <<'PY'
import sys
from dataclasses import replace
from sketchify.config import SketchConfig
cfg = SketchConfig.load("weights/config.json")
replace(cfg, channels=64, generator_blocks=3, up_width=1.0, up_modulated=True, lr=2e-4, epochs=400).save(sys.argv[1])
PY

bash training/default/side_by_side.sh "$MIN" "$DATA" "$OUT" "$KEEP" up up-lp22 up-gen4 scratch
