#!/usr/bin/env bash
# Stage 7: does a discriminator that matters draw crisper, more varied strokes? Four fine-tunes of the shipped
# model (stage 4b) side by side on one GPU, each for MINUTES, then scored on the held-out pairs.
#
#     bash training/default/stage7_gpu.sh 5 .data runs/stage7 [KEEP]
#
# In stage 4b the adversarial term weighs 0.05 against 10 x (1 - SSIM): about 1% of the generator's loss, and the
# discriminator wins outright (its loss ~0.001). These runs raise its weight:
# adv15, adv30, adv60:  adv_weight 0.15, 0.3, 0.6
# adv30-nodiv:          adv_weight 0.3 and no diversity term: does the adversarial term alone give varied samples?
set -u
MIN=${1:-5}
DATA=${2:-.data}
OUT=${3:-runs/stage7}
KEEP=${4:-}
CKPT=training/default/checkpoint.safetensors
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
mkdir -p "$OUT"
RUNS="adv15 adv30 adv60 adv30-nodiv"

grow() { python3 training/default/grow.py "$CKPT" "$OUT/$1" --lr 5e-5 --epochs 400 "${@:2}"; }
grow adv15 --adv-weight 0.15
grow adv30 --adv-weight 0.3
grow adv60 --adv-weight 0.6
grow adv30-nodiv --adv-weight 0.3 --diversity-weight 0

bash training/default/side_by_side.sh "$MIN" "$DATA" "$OUT" "$KEEP" $RUNS
