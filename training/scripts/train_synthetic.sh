#!/usr/bin/env bash
# Reproduce the synthetic deployment weights with one command: generate the synthetic dataset,
# train stage 1 and stage 2, evaluate (merger and plain averaging), export fp16 weights.
# Re-running continues where a crashed run stopped (each stage resumes from its last.pth).
#
#   training/scripts/train_synthetic.sh                     # from the repository root
#   OUT=out/synthetic WEIGHTS=my.pth DEVICE=cuda training/scripts/train_synthetic.sh
#
# Environment: OUT (work folder, default out/synthetic), WEIGHTS (deployment file, default
# pix2voxpp_ros/weights/pix2voxpp_f_synthetic.pth), PER_CATEGORY (default 125), SEED (0),
# DEVICE (auto), SYNTH_WORKERS (2), CONFIG (training/configs/synthetic_f.yaml).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-out/synthetic}
WEIGHTS=${WEIGHTS:-pix2voxpp_ros/weights/pix2voxpp_f_synthetic.pth}
PER_CATEGORY=${PER_CATEGORY:-125}
SEED=${SEED:-0}
DEVICE=${DEVICE:-auto}
SYNTH_WORKERS=${SYNTH_WORKERS:-2}
CONFIG=${CONFIG:-training/configs/synthetic_f.yaml}
# Prefer the repository's virtual environment; fall back to whatever is on PATH.
BIN=""
if [ -x .venv/bin/pix2voxpp-train ]; then BIN=.venv/bin/; fi

DATA="$OUT/data"
resume_flag() { if [ -f "$1/checkpoints/last.pth" ]; then echo --resume; fi; }
step() { echo; echo "=== $(date '+%H:%M:%S') $*"; }

start=$(date +%s)
if [ ! -f "$DATA/ShapeNet.json" ]; then
  step "generating $PER_CATEGORY objects per category into $DATA"
  "${BIN}pix2voxpp-synth" --out "$DATA" --per-category "$PER_CATEGORY" --seed "$SEED" \
    --workers "$SYNTH_WORKERS" --quiet
fi

step 'stage 1: single view, merger off'
"${BIN}pix2voxpp-train" --config "$CONFIG" --data "$DATA" --out "$OUT/stage1" --stage 1 \
  --device "$DEVICE" --no-progress $(resume_flag "$OUT/stage1")

step 'stage 2: multi-view, merger on, encoder and decoder frozen'
"${BIN}pix2voxpp-train" --config "$CONFIG" --data "$DATA" --out "$OUT/stage2" --stage 2 \
  --init "$OUT/stage1/checkpoints/best.pth" --device "$DEVICE" --no-progress \
  $(resume_flag "$OUT/stage2")

step 'evaluation on the test split: merger against the plain average of the same views'
"${BIN}pix2voxpp-eval" --weights "$OUT/stage2/checkpoints/best.pth" --data "$DATA" \
  --views 1 2 3 4 5 8 --device "$DEVICE" --compare-average --json "$OUT/eval/test.json" \
  --no-progress

step "export to $WEIGHTS"
"${BIN}pix2voxpp-export" --weights "$OUT/stage2/checkpoints/best.pth" --out "$WEIGHTS" --half \
  --test-json "$OUT/eval/test.json"
echo "done in $(( ($(date +%s) - start) / 60 )) min"
