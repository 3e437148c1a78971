#!/usr/bin/env bash
# Fewer bytes per round (issue 15, compression): trains the fedrec preset's bpr and neumf on
# ml-100k-loo (../shared/data, when present) under each compression and prints, per run,
# the mean bytes up and down per round (the metrics' bytes_up/bytes_down: the real bytes of
# every RESULT and TASK), their ratio to the uncompressed run's, and HR@10 / NDCG@10 of the
# final model (the split's test users; nothing is tuned on them: every setting is the
# preset's, the compression options alone change).
# Usage: bench/run_compress.sh   (from the root after a build)
# Knobs: MODELS ("bpr neumf") BPR_ROUNDS (40) NEUMF_ROUNDS (30) THREADS (2) SEED (1)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${FEDREC_BIN:-$ROOT/build/fedrec}
MODELS=${MODELS:-bpr neumf} BPR_ROUNDS=${BPR_ROUNDS:-40} NEUMF_ROUNDS=${NEUMF_ROUNDS:-30}
THREADS=${THREADS:-2} SEED=${SEED:-1}
ML=$ROOT/../shared/data/ml-100k-loo
[ -f "$ML/train.rating" ] || { echo "run_compress.sh: $ML not found: nothing to measure (skipped)"; exit 0; }
[ -x "$BIN" ] || { echo "run_compress.sh: $BIN not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "# $(date -u +%FT%TZ)  $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for model in $MODELS; do
    if [ "$model" = bpr ]; then rounds=$BPR_ROUNDS; ups="none q16 q8"; else rounds=$NEUMF_ROUNDS;
        ups="none q16 q8 topk:300 topk:300,q8 topk:100,q8"; fi
    echo "# $model (fedrec preset), $rounds rounds, all clients, seed $SEED, $THREADS threads"
    echo "# fedrec train --data $ML --model $model --rounds $rounds --threads $THREADS --seed $SEED --compress UP --compress-down DOWN"
    printf '%-14s %-5s %12s %7s %12s %7s %8s %8s\n' up down bytes_up/rnd x_up bytes_dn/rnd x_down hr@10 ndcg@10
    base_up= base_dn=
    for down in none q16 q8; do
        for up in $ups; do
            # the downlink variants with the uplink ones that matter
            if [ "$down" != none ] && [ "$up" != none ] && [ "$up" != q8 ]; then continue; fi
            if [ "$model" = neumf ] && [ "$down" = q16 ]; then continue; fi
            m=$tmp/$model-$up-$down.jsonl
            "$BIN" train --data "$ML" --model "$model" --rounds "$rounds" --threads "$THREADS" --seed "$SEED" \
                --compress "$up" --compress-down "$down" --metrics-out "$m" --quiet >/dev/null
            read -r bu bd hr nd < <(python3 - "$m" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = [x for x in rows if "bytes_up" in x]
s = [x for x in rows if x.get("summary")][0]["final"]
print(sum(x["bytes_up"] for x in r) / len(r), sum(x["bytes_down"] for x in r) / len(r), s["hr@10"], s["ndcg@10"])
PY
)
            [ -n "$base_up" ] || { base_up=$bu; base_dn=$bd; }
            printf '%-14s %-5s %12.0f %6.2fx %12.0f %6.2fx %8.4f %8.4f\n' "$up" "$down" "$bu" \
                "$(echo "$base_up / $bu" | bc -l)" "$bd" "$(echo "$base_dn / $bd" | bc -l)" "$hr" "$nd"
        done
    done
done
