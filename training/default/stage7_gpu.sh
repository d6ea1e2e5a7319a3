#!/usr/bin/env bash
# Stage 7: does a discriminator that matters draw crisper, more varied strokes? Four fine-tunes of the shipped
# model (stage 4b) side by side on one GPU, each for MINUTES, then scored on the held-out pairs.
#
#     bash training/default/stage7_gpu.sh 5 .data runs/stage7
#
# In stage 4b the adversarial term weighs 0.05 against 10 x (1 - SSIM): about 1% of the generator's loss, and the
# discriminator wins outright (its loss ~0.001). These runs raise its weight:
# adv15, adv30, adv60:  adv_weight 0.15, 0.3, 0.6
# adv30-nodiv:          adv_weight 0.3 and no diversity term: does the adversarial term alone give varied samples?
set -u
MIN=${1:-5}
DATA=${2:-.data}
OUT=${3:-runs/stage7}
CKPT=training/default/checkpoint.safetensors
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
mkdir -p "$OUT"
RUNS="adv15 adv30 adv60 adv30-nodiv"

grow() { python3 training/default/grow.py "$CKPT" "$OUT/$1" --lr 5e-5 --epochs 400 "${@:2}"; }
grow adv15 --adv-weight 0.15
grow adv30 --adv-weight 0.3
grow adv60 --adv-weight 0.6
grow adv30-nodiv --adv-weight 0.3 --diversity-weight 0

common=("$DATA/fs2k" "$DATA/cufs" --default-style portrait --unpaired "$DATA/bsds" --workers 2 --time-limit "$MIN")
for run in $RUNS; do
    python3 -m sketchify train "${common[@]}" -o "$OUT/$run" --resume > "$OUT/$run.log" 2>&1 &
done
wait

for run in $RUNS; do
    timeout 60 python3 -m sketchify eval "$DATA/fs2k" "$DATA/cufs" --default-style portrait --split val \
        --weights "$OUT/$run/model" --json "$OUT/$run/eval_val.json" > "$OUT/$run/eval_val.txt" 2>&1 &
done
wait
for run in $RUNS; do
    tail -n 3 "$OUT/$run.log"
    cat "$OUT/$run/eval_val.txt"
done
