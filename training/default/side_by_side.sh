#!/usr/bin/env bash
# Train several runs side by side on one GPU for MINUTES each, score each on the held-out pairs, and print the
# scores. Used by the GPU stage scripts (stage6_gpu.sh, stage7_gpu.sh, stage10_gpu.sh).
#
#     bash training/default/side_by_side.sh MINUTES DATA OUT KEEP RUN [RUN ...]
#
# DATA is a packed data folder (training/pack_data.py). Each RUN is a folder under OUT that holds either a
# checkpoint (from training/default/grow.py), which is resumed, or only a config.json, which starts from scratch.
# KEEP (or "" for none) gets each run's checkpoint and log as two flat files, RUN.safetensors and RUN.jsonl: the
# device tool brings back only a few files, none deeper than two folders, so point KEEP at $OUT and OUT elsewhere.
set -u
MIN=$1 DATA=$2 OUT=$3 KEEP=$4
shift 4
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2

common=("$DATA/fs2k" "$DATA/cufs" --default-style portrait --unpaired "$DATA/bsds" --workers 2 --time-limit "$MIN")
for run in "$@"; do
    if [ -e "$OUT/$run/checkpoint.safetensors" ]; then start=(--resume); else start=(--config "$OUT/$run/config.json"); fi
    python3 -m sketchify train "${common[@]}" -o "$OUT/$run" "${start[@]}" > "$OUT/$run.log" 2>&1 &
done
wait

for run in "$@"; do
    timeout 120 python3 -m sketchify eval "$DATA/fs2k" "$DATA/cufs" --default-style portrait --split val \
        --weights "$OUT/$run/model" --json "$OUT/$run/eval_val.json" > "$OUT/$run/eval_val.txt" 2>&1 &
done
wait
for run in "$@"; do
    tail -n 3 "$OUT/$run.log"
    cat "$OUT/$run/eval_val.txt"
    if [ -n "$KEEP" ]; then
        cp "$OUT/$run/checkpoint.safetensors" "$KEEP/$run.safetensors"
        cp "$OUT/$run/log.jsonl" "$KEEP/$run.jsonl"
    fi
done
