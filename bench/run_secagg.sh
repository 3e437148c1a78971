#!/bin/sh
# Secure aggregation cost for issue 13's target: "secure aggregation with 100 clients per
# round adds at most 50% to a plain round's wall time for mf d = 32 on ml-100k (report key
# agreement, masking, recovery separately); with 10% dropouts mid-round it still completes."
#   1. bench_secagg: the privacy layer alone, n = 100 clients, len = 55506 words (ml-100k's
#      1682 items × (32 + 1): mf d=32's whole shared prefix, dense), k and t from
#      fr_sa_params_choose(n, len, 0.1, 40); no dropout, 10% gone after ShareKeys, 10% gone
#      before Unmasking; each stage's seconds for the clients (summed) and the server,
#      beside a plain sum of the same vectors; the unmasked sum is checked exactly; the
#      slowest client's own seconds and the server's (a deployed round's critical path).
#      The rounds' k (correctness 2^-30, security 2^-40: k 46) and the previous one
#      (2^-40 for both: k 60), side by side twice.
#      Then the same with every pair (k = n-1, SecAgg) for comparison.
#   2. fedrec train on ml-100k u1.base / u1.test, mf d=32, 100 clients per round, one
#      thread, plain and with --secagg (same model, checked): CPU seconds per round (the
#      work of a simulated round: every client's in one process), and the wall seconds of
#      each round from --metrics-out, when the data is present.
# Seconds are CPU seconds (bench_secagg: its thread's; train: user + sys), which the load of
# a shared machine inflates far less than wall time.
# Usage: bench/run_secagg.sh [REPS=3]   (from the project root, after a build)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${FEDREC_DATA:-$ROOT/../shared/data}
REPS=${1:-3}
BIN=$ROOT/build/bench_secagg
[ -x "$BIN" ] || { echo "run_secagg.sh: $BIN not built (cmake --build build)"; exit 1; }
# side by side, one after the other (a shared machine: compare within a pass); TRAIN_ONLY=1 skips this
for pass in 1 2; do
    [ -n "${TRAIN_ONLY:-}" ] && break
    echo "# pass $pass: privacy layer, the rounds' choice (dropout 0.1, correctness eta 30, security sigma 40: k 46)"
    "$BIN" --n 100 --len 55506 --dropout 0.1 --sigma 40 --eta 30 --reps "$REPS"
    echo "# pass $pass: privacy layer, correctness at sigma too (eta = sigma = 40: k 60, the previous choice)"
    "$BIN" --n 100 --len 55506 --dropout 0.1 --sigma 40 --reps "$REPS"
done
[ -n "${TRAIN_ONLY:-}" ] || echo "# privacy layer, every pair (SecAgg, k = 99, t = 50)"
[ -n "${TRAIN_ONLY:-}" ] || "$BIN" --n 100 --len 55506 --dropout 0.1 --k 99 --t 50 --reps "$REPS"
if [ -f "$DATA/ml-100k/u1.base" ]; then
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    # CPU seconds of a simulated round on one thread (every client's work one after the other
    # and the server's; a shared machine inflates wall time): (CPU of 21 rounds - CPU of 1
    # round) / 20, so loading the data and the first round cancel (time(1) counts 10 ms). plain is also an upper bound
    # of a deployed plain round's critical path (one client's training and the server's sum).
    for mode in plain secagg; do
        flag=""; [ "$mode" = secagg ] && flag=--secagg
        for r in 1 21; do
            /usr/bin/time -f "%U %S" -o "$tmp/$mode.$r.time" "$ROOT/build/fedrec" train --data "$DATA/ml-100k/u1.base" \
                --test "$DATA/ml-100k/u1.test" --model mf --dim 32 --clients-per-round 100 --rounds $r --eval-every 0 \
                --threads 1 --quiet $flag --metrics-out "$tmp/$mode.$r.jsonl" --out "$tmp/$mode.$r.fr" >/dev/null
        done
        cpu=$(awk 'NR==FNR {a = $1 + $2; next} {print ($1 + $2 - a) / 20}' "$tmp/$mode.1.time" "$tmp/$mode.21.time")
        secs=$(grep '^{"round"' "$tmp/$mode.21.jsonl" | sed 's/.*"seconds":\([0-9.]*\).*/\1/' | tr '\n' ' ')
        echo "{\"train\":\"$mode\",\"model\":\"mf\",\"dim\":32,\"clients_per_round\":100,\"threads\":1,\"cpu_seconds_per_round\":$cpu,\"wall_round_seconds\":\"$secs\"}"
    done
    cmp -s "$tmp/plain.21.fr" "$tmp/secagg.21.fr" && echo "# the two models are identical, byte for byte" \
        || { echo "run_secagg.sh: the --secagg model differs from the plain one"; exit 1; }
else
    echo "# $DATA/ml-100k/u1.base absent: no plain round to compare with (skipped)"
fi
