#!/usr/bin/env bash
# The GPU check, in one script that a machine with a GPU runs in under 5 minutes (venv present):
#   1. the core tests, which run on CUDA too where it is present (the `device` fixture);
#   2. the model benchmark: /F and /A at 1, 3 and 8 views, PyTorch on CUDA in fp32, fp16 and bf16
#      (CUDA graphs, pinned host memory), against fp32 of the same run;
#   3. the node benchmark: a real node over Fast DDS, 3 cameras, on CUDA.
# Results land in $OUT/device_check (default out/device_check): logs and JSON.
#
#   benchmarks/device_check.sh            # on the GPU machine; fails when CUDA is missing
#   benchmarks/device_check.sh --dry-run  # the same steps on the CPU (OpenVINO and PyTorch in
#                                         # fp32 and bf16, one repeat, 5 node rounds)
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=0
case "${1:-}" in
  --dry-run) dry_run=1 ;;
  '') ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac

py=${PYTHON:-.venv/bin/python}
if [[ ! -x $py ]]; then
  make venv  # minutes, not counted in the 5 (PyTorch is large)
fi
out=${OUT:-out}/device_check
mkdir -p "$out"
export PIX2VOXPP_CACHE_DIR=${PIX2VOXPP_CACHE_DIR:-$out/model_cache}
export PYTHONUNBUFFERED=1

# Time limits per step (tests, model benchmark, node benchmark) add up to under 5 minutes on the
# GPU machine; the CPU dry run on a small machine gets more.
if (( dry_run )); then
  device=cpu backends='torch openvino' precisions='fp32 bf16' repeats=1 rounds=5 node_backend=auto
  limits=(420 300 150)
else
  device=cuda backends='torch' precisions='fp32 fp16 bf16' repeats=5 rounds=40 node_backend=torch
  limits=(110 110 70)
  if ! "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo 'device_check: CUDA is not available here (use --dry-run on a CPU machine)' >&2
    exit 1
  fi
fi

failed=()
step() {  # step NAME TIMEOUT_S COMMAND...: run with a time limit, log to $out/NAME.log
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  echo "== $name (limit ${limit} s): $*"
  if timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"; then
    echo "== $name: ok in $((SECONDS - start)) s"
  else
    echo "== $name: FAILED after $((SECONDS - start)) s (see $out/$name.log)"
    failed+=("$name")
  fi
}

"$py" - <<'EOF' | tee "$out/machine.txt"
import os, platform, torch
print('python', platform.python_version(), 'torch', torch.__version__, 'cpus', os.cpu_count())
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        print(f'cuda:{i}', torch.cuda.get_device_name(i), 'bf16',
              torch.cuda.is_bf16_supported(), 'CUDA', torch.version.cuda)
else:
    print('no CUDA device: CPU run')
EOF

# 1. Core tests: model, checkpoints, inference and backends (CUDA graphs on CUDA), -rs lists
#    skips so a missing CUDA case shows.
step core_tests "${limits[0]}" "$py" -m pytest -q -rs -m 'not slow' -p no:cacheprovider \
  test/test_model.py test/test_checkpoint.py test/test_inference.py test/test_backends.py

# 2. Model benchmark: every precision against PyTorch fp32 of the same run.
# shellcheck disable=SC2086  # the lists are meant to split into arguments
step bench_model "${limits[1]}" "$py" benchmarks/bench_model.py --device "$device" --variants F A \
  --views 1 3 8 --backends $backends --precisions $precisions --repeats "$repeats" \
  --json "$out/bench_model.json"

# 3. Node benchmark: 3 cameras at 640x480 over Fast DDS, latency and the node's own overhead.
step bench_node "${limits[2]}" "$py" benchmarks/bench_node.py --device "$device" --backend "$node_backend" \
  --rounds "$rounds" --warmup 3 --json "$out/bench_node.json"

if (( ${#failed[@]} )); then
  echo "device_check: failed steps: ${failed[*]}" >&2
  exit 1
fi
echo "device_check: all steps passed; results in $out"
