#!/usr/bin/env bash
# The accelerator benchmark as one command on a bare accelerator machine (shared DEVICE.md):
# installs the wheels benchmarks/device/prepare.sh downloaded (carried with the working tree) into
# a folder of their own, puts it and the checkout on PYTHONPATH (jaxsets runs from the tree on the
# machine's own jax), prints the versions, and runs benchmarks/accelerator.py under a timeout.
# Writes $OUT/accelerator.json, $OUT/accelerator.md and $OUT/accelerator.log.
#
#   bash benchmarks/device/run_accelerator.sh [accelerator.py options, e.g. --tiny --only ...]
#
# On the machine (the `run` tool): command "bash benchmarks/device/run_accelerator.sh",
# carry ["benchmarks/device/wheels"], timeout_s 600. Here, a dry run on the CPU with a Python
# 3.12 whose packages stand in for the device's: PYTHON=/path/python3.12 OUT=/tmp/x \
#   bash benchmarks/device/run_accelerator.sh --tiny
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT to the folder the results go to}"
PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/jaxsets_device_site}
LIMIT=${LIMIT:-470}          # the benchmark's own time limit (seconds); the timeout adds a margin
mkdir -p "$OUT"
LOG="$OUT/accelerator.log"
{
  echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC') $(hostname) $(uname -m)"
  ls benchmarks/device/wheels/*.whl >/dev/null 2>&1 || {
    echo "no wheels in benchmarks/device/wheels: run benchmarks/device/prepare.sh and carry that folder"; exit 2; }
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" benchmarks/device/wheels/*.whl || { echo "wheel install failed"; exit 3; }
} 2>&1 | tee "$LOG"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export USE_TF=0 TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export JAXSETS_ACCEL_COMMAND="bash benchmarks/device/run_accelerator.sh $*"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"
  "$PYTHON" - <<'PY'
import importlib, importlib.metadata, sys
print("python", sys.version.split()[0])
for name in ("jax", "jaxlib", "flax", "optax", "diffusers", "transformers", "tokenizers",
             "huggingface_hub", "ml_collections", "distrax", "torch", "stable_baselines3",
             "gymnasium", "jaxsets"):
  try:
    module = importlib.import_module(name)
    print(f"{name:18} {getattr(module, '__version__', '?'):14} {module.__file__}")
  except Exception as e:  # noqa: BLE001  (a version list, not a check: the benchmark reports)
    print(f"{name:18} NOT IMPORTABLE: {type(e).__name__}: {e}")
import jax
print("jax devices:", jax.devices())
PY
} 2>&1 | tee -a "$LOG"
timeout --signal=TERM --kill-after=10 $((${LIMIT%.*} + 60)) \
  "$PYTHON" benchmarks/accelerator.py --out "$OUT/accelerator.json" \
  --markdown "$OUT/accelerator.md" --time-limit "$LIMIT" \
  --scratch "${SCRATCH:-/tmp/jaxsets_accel}" "$@" 2>&1 | tee -a "$LOG"
status=${PIPESTATUS[0]}
echo "== accelerator.py exit status $status" | tee -a "$LOG"
exit "$status"
