#!/usr/bin/env bash
# Item promotion against robust aggregation (issue 15): trains the fedrec preset's bpr (or
# MODEL) on ml-100k-loo with 5% and 10% of the clients fake users promoting TARGET (its id in the data file:
# item 562, MovieLens item 563: 29 training interactions, about the median item's 26, far
# from the top items; its no-attack ER@10 is 0.0055 with FedAvg), with (promote-pop) and
# without (promote) knowledge of the popular items, and prints ER@10 (the share of real
# users not trained on TARGET with it in their top-10) and HR@10 (the real users' test
# items against their 99 negatives) of the final model, for FedAvg and each defence of
# AGGS (fedrec train --aggregator ...; skipped with a note when this build lacks it).
# Per aggregator the no-attack run (--exposure-item TARGET) gives the ER@10 baseline and
# the HR@10 the defence costs; the target: with the best defence ER@10 <= 2x its no-attack
# value, at a cost of <= 2% HR@10 (relative to FedAvg without attack).
# Usage: bench/run_attack.sh   (from the root after a build)
# Knobs: MODEL (bpr) TARGET (562) FRACTIONS ("0.05 0.10") KINDS ("promote-pop promote")
#        BOOST (2) AGGS ("median trimmed:0.1 rowtrim:0.2 normclip multikrum:105:838 rowguard"; f = 105
#        fakes at 10%, m = 1048 - 2f) THREADS (2) SEED (1) DATA (ml-100k-loo; a directory of the same
#        layout, e.g. a validation split cut from its training data, to tune on)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${FEDREC_BIN:-$ROOT/build/fedrec}
MODEL=${MODEL:-bpr} TARGET=${TARGET:-562} FRACTIONS=${FRACTIONS:-0.05 0.10} KINDS=${KINDS:-promote-pop promote}
BOOST=${BOOST:-2} AGGS=${AGGS-median trimmed:0.1 rowtrim:0.2 normclip multikrum:105:838 rowguard} THREADS=${THREADS:-2} SEED=${SEED:-1}
ML=${DATA:-$ROOT/../shared/data/ml-100k-loo}
[ -f "$ML/train.rating" ] || { echo "run_attack.sh: $ML not found: nothing to measure (skipped)"; exit 0; }
[ -x "$BIN" ] || { echo "run_attack.sh: $BIN not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
has_agg=false
help=$("$BIN" train --help 2>/dev/null || true) # whole, then searched (grep -q would cut the pipe)
case "$help" in *--aggregator*) has_agg=true ;; esac
echo "# $(date -u +%FT%TZ)  $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $MODEL (fedrec preset), ml-100k-loo, target item $TARGET, BOOST $BOOST, seed $SEED, $THREADS threads"
echo "# fedrec train --data $ML --model $MODEL --threads $THREADS --seed $SEED [--aggregator AGG] (--exposure-item $TARGET | --attack KIND:$TARGET:FRACTION:$BOOST)"
final() { python3 -c "
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{\"summary\"')][0]['final']
print(s['er@10'], s['hr@10'])" "$1"; }
printf '%-22s %-22s %8s %8s %9s %9s\n' aggregator attack er@10 hr@10 er/er0 hr_cost
hr_fedavg=
for agg in fedavg $AGGS; do
    aopt=()
    if [ "$agg" != fedavg ]; then
        $has_agg || { printf '%-22s (this build has no --aggregator: skipped)\n' "$agg"; continue; }
        aopt=(--aggregator "$agg")
    fi
    er0= 
    for atk in none $(for k in $KINDS; do for f in $FRACTIONS; do echo "$k:$TARGET:$f:$BOOST"; done; done); do
        m=$tmp/run.jsonl
        if [ "$atk" = none ]; then what=(--exposure-item "$TARGET"); else what=(--attack "$atk"); fi
        if ! "$BIN" train --data "$ML" --model "$MODEL" --threads "$THREADS" --seed "$SEED" "${aopt[@]}" "${what[@]}" \
            --eval-every 0 --metrics-out "$m" --quiet >/dev/null 2>"$tmp/err"; then
            printf '%-22s %-22s failed: %s\n' "$agg" "$atk" "$(tail -1 "$tmp/err")"
            continue
        fi
        read -r er hr < <(final "$m")
        [ "$atk" = none ] && er0=$er
        [ "$agg" = fedavg ] && [ "$atk" = none ] && hr_fedavg=$hr
        ratio=$(python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}x' if b>0 else ('0' if a==0 else 'inf'))" "$er" "${er0:-0}")
        cost=$(python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{(b-a)/b*100:+.2f}%')" "$hr" "$hr_fedavg")
        printf '%-22s %-22s %8.4f %8.4f %9s %9s\n' "$agg" "$atk" "$er" "$hr" "$ratio" "$cost"
    done
done
