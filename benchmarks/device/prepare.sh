#!/usr/bin/env bash
# Downloads, for the accelerator machines' Python 3.12 (x86-64, no network there), the wheels that
# jaxsets and the accelerator benchmark need and that machine lacks (shared DEVICE.md lists what it
# has), into benchmarks/device/wheels/ (ignored by git), checks that they stay well under the 64 MiB
# that travels with the working tree, and prints the `run` command to use.
#
#   bash benchmarks/device/prepare.sh
#
# The versions are this project's (pyproject.toml, shared STACK.md): diffusers 0.39.0 and
# transformers 4.57.6 are the last with Flax. The device's own huggingface_hub (1.x) and
# tokenizers (0.23.2) are outside what transformers 4.57.6 accepts (<1.0; >=0.22,<=0.23.0), so
# versions it accepts travel too and shadow them on PYTHONPATH. jax, flax, optax, orbax, chex,
# numpy, torch, accelerate, safetensors, pillow, regex, requests, httpx, pyyaml, absl-py, attrs,
# wrapt, six and cloudpickle are there already and stay the device's.
set -euo pipefail
cd "$(dirname "$0")"
WHEELS=wheels
PY_ONLY=(  # pure-Python wheels (py3-none-any)
  diffusers==0.39.0 transformers==4.57.6 huggingface_hub==0.36.2 ml-collections==1.1.0
  distrax==0.1.9 tfp-nightly==0.26.0.dev20261027 gast==0.7.0 decorator==5.2.1
  importlib_metadata==8.7.0 stable-baselines3==2.9.2 gymnasium==1.4.0 farama-notifications==0.0.4
  open_clip_torch==3.3.0  # only its BPE file: sd_hub_layout.py builds CLIP's real tokenizer from it
)
COMPILED=(  # built for CPython 3.12 (tokenizers: abi3) on manylinux x86-64
  tokenizers==0.22.2 dm-tree==0.1.10
)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done
rm -rf "$WHEELS.tmp"
mkdir -p "$WHEELS.tmp"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --abi cp312 --abi abi3 --abi none "${PLATFORMS[@]}" --platform any -d "$WHEELS.tmp" \
  "${PY_ONLY[@]}" "${COMPILED[@]}"
rm -rf "$WHEELS"
mv "$WHEELS.tmp" "$WHEELS"
ls -l "$WHEELS"
# One version of each (two stop the whole install there), and the size that travels.
python3 - "$WHEELS" <<'PY'
import collections, os, sys
folder = sys.argv[1]
names = collections.Counter(f.split("-")[0].lower().replace("_", "-") for f in os.listdir(folder))
twice = [n for n, c in names.items() if c > 1]
assert not twice, f"two versions of {twice} in {folder}"
total = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
print(f"{len(names)} wheels, {total / 2**20:.1f} MiB")
assert total < 40 * 2**20, "the wheels must leave room in the 64 MiB that travels"
PY
(cd ../.. && git ls-files -co --exclude-standard -z | python3 -c '
import os, sys
paths = [p for p in sys.stdin.read().split("\0") if p and os.path.isfile(p)]
tree = sum(os.path.getsize(p) for p in paths)
wheels = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk("benchmarks/device/wheels") for f in fs)
print(f"working tree that travels: {tree / 2**20:.1f} MiB + wheels {wheels / 2**20:.1f} MiB")
assert tree + wheels < 60 * 2**20, "over the 64 MiB that travels: ignore or remove large files"
')
cat <<'MSG'

Device command (the `run` tool; timeout_s 600, carry ["benchmarks/device/wheels"]):

  bash benchmarks/device/run_accelerator.sh

Its JSON, markdown table and log come back under $OUT (accelerator.json, accelerator.md,
accelerator.log). Dry run here, on the CPU with tiny models: OUT=/tmp/x bash benchmarks/device/run_accelerator.sh --tiny
MSG
