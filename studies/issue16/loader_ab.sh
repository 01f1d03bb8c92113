#!/bin/bash
# A/B of two loaders on the same real-size folder: OLD is a checkout of the earlier commit (e.g.
# `git worktree add /tmp/old 0621f8a`), the working tree is the new one. Each real_size.py child
# runs after a `warm` child, the two orders alternating between rounds.
#   OLD=/tmp/old N=4 [DT=bfloat16] [ARCH=sd21base] bash studies/issue16/loader_ab.sh
set -eu
cd "$(dirname "$0")/../.."
NEW=$PWD S=${SCRATCH:-/tmp/jaxsets_loader_ab} ARCH=${ARCH:-sd21base}
mkdir -p "$S"
child() {  # child tree result-tag
  PYTHONPATH=$2 USE_TF=0 USE_TORCH=0 python benchmarks/real_size.py --child "$1" \
    --folder "/tmp/jaxsets_real_size/$ARCH" --result "$S/$3.json" --arch "$ARCH" \
    --dtype "${DT:-float32}" --steps 0 --scratch "$S" 2>/dev/null
}
for i in $(seq 1 "${N:-3}"); do
  child warm "$NEW" warm; child read "$NEW" "read_$i"
  if [ $((i % 2)) = 1 ]; then order="old new"; else order="new old"; fi
  for v in $order; do
    tree=$NEW; [ "$v" = old ] && tree=$OLD
    child warm "$tree" warm; child jaxsets "$tree" "${v}_$i"
  done
  python - "$S" "$i" <<'PY'
import json, sys
folder, i = sys.argv[1:]
r = json.load(open(f"{folder}/read_{i}.json"))["read_s"]
for v in ("old", "new"):
  j = json.load(open(f"{folder}/{v}_{i}.json"))
  peak = j["peak_rss_after_load_gb"] * 2**30 / j["param_bytes"]
  print(f"{i} {v} read {r:.2f} weights {j['weights_s']:.2f} ({j['weights_s'] / r:.2f}x) "
        f"load {j['load_s']:.2f} ({j['load_s'] / r:.2f}x) peak/params {peak:.3f}", flush=True)
PY
done
