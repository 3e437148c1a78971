#!/bin/sh
# Secure aggregation cost for issue 13's target: "secure aggregation with 100 clients per
# round adds at most 50% to a plain round's wall time for mf d = 32 on ml-100k (report key
# agreement, masking, recovery separately); with 10% dropouts mid-round it still completes."
#   1. bench_secagg: the privacy layer alone, n = 100 clients, len = 55506 words (ml-100k's
#      1682 items × (32 + 1): mf d=32's whole shared prefix, dense), k and t from
#      fr_sa_params_choose(n, len, 0.1, 40); no dropout, 10% gone after ShareKeys, 10% gone
#      before Unmasking; each stage's seconds for the clients (summed) and the server,
#      beside a plain sum of the same vectors; the unmasked sum is checked exactly.
#      Then the same with every pair (k = n-1, SecAgg) for comparison.
#   2. bench_fed: a plain simulated round of mf d=32 on ml-100k u1.base with 100 clients per
#      round (the wall time secure aggregation is compared with), when the data is present.
# Usage: bench/run_secagg.sh [REPS=3]   (from the project root, after a build)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${FEDREC_DATA:-$ROOT/../shared/data}
REPS=${1:-3}
BIN=$ROOT/build/bench_secagg
[ -x "$BIN" ] || { echo "run_secagg.sh: $BIN not built (cmake --build build)"; exit 1; }
echo "# privacy layer, k from the dropout bound (sigma 40, dropout 0.1)"
"$BIN" --n 100 --len 55506 --dropout 0.1 --reps "$REPS"
echo "# privacy layer, every pair (SecAgg, k = 99, t = 50)"
"$BIN" --n 100 --len 55506 --dropout 0.1 --k 99 --t 50 --reps "$REPS"
if [ -f "$DATA/ml-100k/u1.base" ] && [ -x "$ROOT/build/bench_fed" ]; then
    echo "# plain simulated rounds: mf d=32, ml-100k u1.base, 100 clients per round"
    "$ROOT/build/bench_fed" --train "$DATA/ml-100k/u1.base" --test "$DATA/ml-100k/u1.test" --model mf --dim 32 \
        --clients 100 --rounds 5
else
    echo "# $DATA/ml-100k/u1.base absent: no plain round to compare with (skipped)"
fi
