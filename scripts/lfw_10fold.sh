#!/usr/bin/env bash
# The decisive LFW reproduction (issue #19): the A-Softmax pair (λ_r = 0 and
# λ_r = 2, fixed in advance) on each of the ten held-out folds, SphereFace-4 at
# 3x56x48, 2000 steps of 32, seed 1, 2 threads. Each fold is one resumable
# invocation; its ablation.json is copied to docs/reports/ablation_lfw_10fold/
# and the parts are summarised into docs/reports/ablation_lfw_10fold.json.
# Run it again after an interruption: finished runs are only re-evaluated,
# unfinished ones continue from their last checkpoint (every 200 steps).
#
#   scripts/lfw_10fold.sh [RUN_DIR] [LOSSES]     (defaults: runs/lfw_10fold, asoftmax)
#   REGULARFACE=path/to/binary scripts/lfw_10fold.sh   (default: target/release/regularface)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=${1:-runs/lfw_10fold}
LOSSES=${2:-asoftmax}
BIN=${REGULARFACE:-target/release/regularface}
LFW=${LFW:-../shared/data/lfw}
PARTS=docs/reports/ablation_lfw_10fold
mkdir -p "$PARTS"
for K in ${FOLDS:-0 1 2 3 4 5 6 7 8 9}; do
    for LOSS in ${LOSSES//,/ }; do
        OUT="$RUN_DIR/$LOSS/fold$K"
        "$BIN" --threads 2 ablation --lfw "$LFW" --fold "$K" --steps 2000 --lambda-r 2 \
            --seeds 1 --losses "$LOSS" --out "$OUT" --quiet
        cp "$OUT/ablation.json" "$PARTS/${LOSS}_fold$K.json"
    done
done
"$BIN" ablation summarize "$PARTS"/*.json --out docs/reports/ablation_lfw_10fold.json
