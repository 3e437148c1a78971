#!/usr/bin/env bash
# Robust aggregators without attack or faults (issue 15): trains the fedrec preset's bpr and
# neumf on ml-100k-loo (../shared/data, when present) with each --aggregator and prints the
# final HR@10 / NDCG@10 (the split's test users, 99 negatives each), their difference to
# FedAvg's after the same rounds, and the wall time of the run (the robust rules keep every
# result and sort per coordinate; Krum compares every pair of clients). Nothing is tuned:
# every setting is the preset's, --aggregator alone changes.
# Usage: bench/run_robust.sh   (from the root after a build)
# Knobs: MODELS ("bpr neumf") BPR_ROUNDS (40) NEUMF_ROUNDS (30) THREADS (2) SEED (1)
#        AGGS (the list below; f = 47 is 5% of the 943 clients, m = 943 - 2f)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${FEDREC_BIN:-$ROOT/build/fedrec}
MODELS=${MODELS:-bpr neumf} BPR_ROUNDS=${BPR_ROUNDS:-40} NEUMF_ROUNDS=${NEUMF_ROUNDS:-30}
THREADS=${THREADS:-2} SEED=${SEED:-1}
AGGS=${AGGS:-fedavg median trimmed:0.1 trimmed:0.2 rowtrim:0.1 rowtrim:0.2 normclip normclip:1 krum:47 multikrum:47:849}
ML=$ROOT/../shared/data/ml-100k-loo
[ -f "$ML/train.rating" ] || { echo "run_robust.sh: $ML not found: nothing to measure (skipped)"; exit 0; }
[ -x "$BIN" ] || { echo "run_robust.sh: $BIN not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "# $(date -u +%FT%TZ)  $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for model in $MODELS; do
    if [ "$model" = bpr ]; then rounds=$BPR_ROUNDS; else rounds=$NEUMF_ROUNDS; fi
    echo "# $model (fedrec preset), $rounds rounds, all clients, seed $SEED, $THREADS threads"
    echo "# fedrec train --data $ML --model $model --rounds $rounds --threads $THREADS --seed $SEED --aggregator AGG"
    printf '%-18s %8s %8s %9s %9s %8s\n' aggregator hr@10 ndcg@10 d_hr@10 d_ndcg sec
    base_hr= base_nd=
    for agg in $AGGS; do
        m=$tmp/$model-$agg.jsonl
        t0=$(date +%s.%N)
        "$BIN" train --data "$ML" --model "$model" --rounds "$rounds" --threads "$THREADS" --seed "$SEED" \
            --aggregator "$agg" --eval-every 0 --metrics-out "$m" --quiet >/dev/null
        t1=$(date +%s.%N)
        read -r hr nd < <(python3 - "$m" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
s = [x for x in rows if x.get("summary")][0]["final"]
print(s["hr@10"], s["ndcg@10"])
PY
)
        [ -n "$base_hr" ] || { base_hr=$hr; base_nd=$nd; }
        printf '%-18s %8.4f %8.4f %+9.4f %+9.4f %8.1f\n' "$agg" "$hr" "$nd" "$(echo "$hr - $base_hr" | bc -l)" \
            "$(echo "$nd - $base_nd" | bc -l)" "$(echo "$t1 - $t0" | bc -l)"
    done
done
