#!/bin/bash
# How far N minutes of a GPU take the shipped model: fine-tune it on the packed training data, then keep the model.
#
#   python -m sketchify.pack DATA/fs2k/train DATA/cufs/train DATA/photos/bsds DATA/photos/bsds-boundaries -o packed
#   PACK=packed OUT=results bash scripts/train_on_gpu.sh 7
#
# For a machine without network access, carry the repository, the pack (38 MB) and, unless sketchify[train] is
# installed there, AlexNet's ST-LPIPS weights from the stlpips-pytorch wheel laid out as in the wheel under SITE:
# SITE/stlpips_pytorch/weights/vST0.0/alex_shift_tolerant.pth (10 MB; VGG's are 59 MB). Run from the repository's
# root. OUT receives train.log, log.jsonl, training.json, config.json + model.safetensors (the model: copy both into
# a folder and pass it to --weights) and checkpoint.safetensors (to resume). DEVICE=cpu WORKERS=1 checks the script
# on a small pack.
set -uo pipefail
MINUTES=${1:-7}
PACK=${PACK:-packed} OUT=${OUT:-results} RUN=${RUN:-/tmp/sketchify-gpu-run}
export PYTHONPATH=$PWD${SITE:+:$SITE} PYTHONUNBUFFERED=1
mkdir -p "$OUT" && rm -rf "$RUN"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader 2>/dev/null
# batch 32 at twice the rate: a GPU step costs about the same at 8 or 32; epochs=400 is cut to what fits the time
python3 -m sketchify train "$PACK/fs2k/train" "$PACK/cufs/train" --default-style portrait \
  --contours "$PACK/photos/bsds" "$PACK/photos/bsds-boundaries" -o "$RUN" --init-from default \
  --config weights/training.json --set epochs=400 --set batch_size=32 --set lr=4e-4 \
  --time-limit "$MINUTES" --workers "${WORKERS:-6}" --device "${DEVICE:-cuda}" 2>&1 | tee "$OUT/train.log"
cp "$RUN/model/config.json" "$RUN/model/model.safetensors" "$RUN/log.jsonl" "$RUN/training.json" \
   "$RUN/checkpoint.safetensors" "$OUT/"
ls -la "$OUT"
