#!/usr/bin/env bash
# Reproduce the synthetic deployment weights with one command: generate the synthetic datasets,
# train stage 1 and stage 2, evaluate (merger and plain averaging), export fp16 weights.
# Stage 1 grows its data: 140 epochs on a first dataset (125 objects per category, seed 0), then
# it continues on a larger, disjoint one (300 per category, seed 1), on which stage 2 trains and
# the test split is measured, once more on a third (300 per category, seed 2) that only stage 1
# sees, then on a fourth weighted towards the thin categories the network finds hardest
# (chair 600, table and airplane 450, the others 150; seed 3) and last on a fifth weighted the
# same way (chair 800, table and airplane 600, the others 200; seed 4). Re-running continues
# where a crashed run stopped (each step resumes from its last.pth; a finished step is skipped).
#
#   training/scripts/train_synthetic.sh                     # from the repository root
#   OUT=out/synthetic WEIGHTS=my.pth DEVICE=cuda training/scripts/train_synthetic.sh
#
# Environment: OUT (work folder, default out/synthetic), WEIGHTS (deployment file, default
# pix2voxpp_ros/weights/pix2voxpp_f_synthetic.pth), PER_CATEGORY and SEED (first dataset,
# 125 and 0), MORE_PER_CATEGORY and MORE_SEED (second dataset, 300 and 1), MORE_EPOCHS (stage 1
# on the second dataset, 45), MORE2_PER_CATEGORY, MORE2_SEED and MORE2_EPOCHS (third dataset, 300,
# 2 and 45), MORE3_PER_CATEGORY, MORE3_COUNTS, MORE3_SEED and MORE3_EPOCHS (fourth dataset, 150,
# "chair=600 table=450 airplane=450"; empty for none, 3 and 40), MORE4_PER_CATEGORY, MORE4_COUNTS,
# MORE4_SEED and MORE4_EPOCHS (fifth dataset, 200, "chair=800 table=600 airplane=600"; empty for
# none, 4 and 35), DEVICE (auto), SYNTH_WORKERS (2), CONFIG (training/configs/synthetic_f.yaml).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-out/synthetic}
WEIGHTS=${WEIGHTS:-pix2voxpp_ros/weights/pix2voxpp_f_synthetic.pth}
PER_CATEGORY=${PER_CATEGORY:-125}
SEED=${SEED:-0}
MORE_PER_CATEGORY=${MORE_PER_CATEGORY:-300}
MORE_SEED=${MORE_SEED:-1}
MORE_EPOCHS=${MORE_EPOCHS:-45}
MORE2_PER_CATEGORY=${MORE2_PER_CATEGORY:-300}
MORE2_SEED=${MORE2_SEED:-2}
MORE2_EPOCHS=${MORE2_EPOCHS:-45}
MORE3_PER_CATEGORY=${MORE3_PER_CATEGORY:-150}
MORE3_COUNTS=${MORE3_COUNTS-chair=600 table=450 airplane=450}  # set but empty: no weighting
MORE3_SEED=${MORE3_SEED:-3}
MORE3_EPOCHS=${MORE3_EPOCHS:-40}
MORE4_PER_CATEGORY=${MORE4_PER_CATEGORY:-200}
MORE4_COUNTS=${MORE4_COUNTS-chair=800 table=600 airplane=600}  # set but empty: no weighting
MORE4_SEED=${MORE4_SEED:-4}
MORE4_EPOCHS=${MORE4_EPOCHS:-35}
DEVICE=${DEVICE:-auto}
SYNTH_WORKERS=${SYNTH_WORKERS:-2}
CONFIG=${CONFIG:-training/configs/synthetic_f.yaml}
# Prefer the repository's virtual environment; fall back to whatever is on PATH.
BIN=""
if [ -x .venv/bin/pix2voxpp-train ]; then BIN=.venv/bin/; fi

DATA="$OUT/data"
MORE_DATA="$OUT/data_more"
MORE2_DATA="$OUT/data_more2"
MORE3_DATA="$OUT/data_more3"
MORE4_DATA="$OUT/data_more4"
resume_flag() { if [ -f "$1/checkpoints/last.pth" ]; then echo --resume; fi; }
step() { echo; echo "=== $(date '+%H:%M:%S') $*"; }

generate() {  # generate DIR PER_CATEGORY SEED [NAME=N ...]
  if [ ! -f "$1/ShapeNet.json" ]; then
    local dir=$1 per_category=$2 seed=$3 count counts=()
    shift 3
    for count in "$@"; do counts+=(--count "$count"); done
    step "generating $per_category objects per category${*:+ ($*)} (seed $seed) into $dir"
    # ${counts[@]+...}: an empty array is "unbound" to set -u in bash before 4.4.
    "${BIN}pix2voxpp-synth" --out "$dir" --per-category "$per_category" --seed "$seed" \
      ${counts[@]+"${counts[@]}"} --workers "$SYNTH_WORKERS" --quiet
  fi
}

start=$(date +%s)
generate "$DATA" "$PER_CATEGORY" "$SEED"
generate "$MORE_DATA" "$MORE_PER_CATEGORY" "$MORE_SEED"
generate "$MORE2_DATA" "$MORE2_PER_CATEGORY" "$MORE2_SEED"
# shellcheck disable=SC2086  # MORE3_COUNTS and MORE4_COUNTS are lists of NAME=N words
generate "$MORE3_DATA" "$MORE3_PER_CATEGORY" "$MORE3_SEED" $MORE3_COUNTS
# shellcheck disable=SC2086  # word splitting wanted, as above
generate "$MORE4_DATA" "$MORE4_PER_CATEGORY" "$MORE4_SEED" $MORE4_COUNTS

step 'stage 1: single view, merger off'
"${BIN}pix2voxpp-train" --config "$CONFIG" --data "$DATA" --out "$OUT/stage1" --stage 1 \
  --device "$DEVICE" --no-progress $(resume_flag "$OUT/stage1")

continue_stage1() {  # continue_stage1 DATA RUN_FOLDER INIT EPOCHS LR
  # The learning rate restarts at LR and is halved after 5/9 and 5/6 of the epochs.
  step "stage 1 continued on $1: $4 epochs, lr $5"
  "${BIN}pix2voxpp-train" --config "$CONFIG" --data "$1" --out "$2" --stage 1 --init "$3" \
    --epochs "$4" --set "stage1.lr.encoder=$5" --set "stage1.lr.decoder=$5" \
    --set "stage1.milestones=[$(( $4 * 5 / 9 )),$(( $4 * 5 / 6 ))]" \
    --device "$DEVICE" --no-progress $(resume_flag "$2")
}

# Different seeds give different objects, so nothing of the first, third, fourth or fifth dataset
# is in the second's validation or test split.
continue_stage1 "$MORE_DATA" "$OUT/stage1_more" "$OUT/stage1/checkpoints/best.pth" \
  "$MORE_EPOCHS" 5.0e-4
continue_stage1 "$MORE2_DATA" "$OUT/stage1_more2" "$OUT/stage1_more/checkpoints/best.pth" \
  "$MORE2_EPOCHS" 2.5e-4
continue_stage1 "$MORE3_DATA" "$OUT/stage1_more3" "$OUT/stage1_more2/checkpoints/best.pth" \
  "$MORE3_EPOCHS" 2.5e-4
continue_stage1 "$MORE4_DATA" "$OUT/stage1_more4" "$OUT/stage1_more3/checkpoints/best.pth" \
  "$MORE4_EPOCHS" 2.5e-4

step 'stage 2: multi-view, merger on, encoder and decoder frozen'
# A resumed stage 2 keeps its own start, not --init: a stage 2 older than the stage-1 checkpoint
# it should start from (a work folder of an earlier version of this script) would be skipped
# and its old weights exported.
if [ -f "$OUT/stage2/checkpoints/last.pth" ] \
    && [ "$OUT/stage1_more4/checkpoints/best.pth" -nt "$OUT/stage2/checkpoints/last.pth" ]; then
  echo "$0: $OUT/stage2 was trained from an older stage 1 than $OUT/stage1_more4;" \
    "move $OUT/stage2 and $OUT/eval away and run again" >&2
  exit 1
fi
"${BIN}pix2voxpp-train" --config "$CONFIG" --data "$MORE_DATA" --out "$OUT/stage2" --stage 2 \
  --init "$OUT/stage1_more4/checkpoints/best.pth" --device "$DEVICE" --no-progress \
  $(resume_flag "$OUT/stage2")

step 'evaluation on the test split: merger against the plain average of the same views'
"${BIN}pix2voxpp-eval" --weights "$OUT/stage2/checkpoints/best.pth" --data "$MORE_DATA" \
  --views 1 2 3 4 5 8 --device "$DEVICE" --compare-average --json "$OUT/eval/test.json" \
  --no-progress

step "export to $WEIGHTS"
"${BIN}pix2voxpp-export" --weights "$OUT/stage2/checkpoints/best.pth" --out "$WEIGHTS" --half \
  --test-json "$OUT/eval/test.json"
echo "done in $(( ($(date +%s) - start) / 60 )) min"
