#!/usr/bin/env bash
# `regularface bench` and PyTorch's side of the same workloads, back to back on this
# machine with 2 threads each, so that the ratios compare like with like.
#
#   scripts/bench_vs_pytorch.sh [TAG]      (needs `pip install torch numpy`)
#
# Writes docs/reports/bench_regularface_TAG.txt and docs/reports/bench_pytorch_TAG.jsonl
# (TAG defaults to today's date) and prints the img/s ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-$(date +%F)}
torch_bench=${TORCH_BENCH:-../shared/bench/torch_bench.py}
ours=docs/reports/bench_regularface_$tag.txt
theirs=docs/reports/bench_pytorch_$tag.jsonl
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 BENCH_THREADS=2

cargo build --release --quiet
./target/release/regularface bench --threads 2 | tee "$ours.tmp"
mv "$ours.tmp" "$ours"

: > "$theirs.tmp"
for args in "--net sphere20 --batch 32 --classes 10572 --head asoftmax" \
            "--net sphere20 --batch 8 --classes 10572 --head asoftmax" \
            "--net sphere20 --batch 32 --classes 10572 --head asoftmax_excl" \
            "--net sphere4 --batch 64 --classes 1000 --head asoftmax" \
            "--net lenet --batch 128 --classes 10 --head softmax"; do
  # shellcheck disable=SC2086
  python3 "$torch_bench" train $args | tee -a "$theirs.tmp"
done
python3 "$torch_bench" excl --mode chunked | tee -a "$theirs.tmp"
mv "$theirs.tmp" "$theirs"

python3 - "$ours" "$theirs" <<'PY'
import json, sys
# median img/s is the second column of the table
ours = {l.split()[0]: float(l.split()[1]) for l in open(sys.argv[1]) if l.split()[:1] and "_train_" in l.split()[0]}
theirs = [json.loads(l) for l in open(sys.argv[2]) if l.strip().startswith("{")]
names = ["sphere20_train_b32", "sphere20_train_b8", "sphere20_train_exclusive_b32",
         "sphere4_train_b64", "lenetpp_train_b128"]
torch_rows = [t for t in theirs if t["workload"] == "train"]
print(f"\n{'workload':<30} {'ours img/s':>11} {'torch img/s':>12} {'ratio':>7}")
for name, t in zip(names, torch_rows):
    print(f"{name:<30} {ours[name]:>11.2f} {t['ips_median']:>12.2f} {ours[name] / t['ips_median']:>7.2f}")
PY
