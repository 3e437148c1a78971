#!/usr/bin/env bash
# Which items did this user touch? (issue 13): trains bpr under each item-hiding variant
# on ml-100k-loo (../shared/data, when present) and on a generated data set, attacks each
# run with an honest-but-curious server (bench_hide: fr_attack on every RESULT it decodes;
# only the round's sum under secure aggregation) and prints a table per data set:
#   F1     the best attack's F1 guessing each observed user's t training items: the better
#          of the t items of highest score (rank) and the t most popular items among the
#          rows it saw (seenpop); under secure aggregation the t most popular items, all
#          the sum gives
#   rand   the F1 of guessing t items uniformly at random (exact: 2t^2/(N 2t) = t/N)
#   pop    the F1 of guessing the t most popular items (the public popularity alone)
#   pres   the F1 of guessing every row present non-zero in every round the user was seen
#   F1-pop the best attack's gain over what the public popularity alone gives
#   bytes  bytes up per client per round, HR@10 of the final model
# Usage: bench/run_hide.sh   (from the root after a build; ~10 minutes on 2 cores, most of
# it the secure rounds)   Knobs: MODEL ROUNDS CPR THREADS SEED GEN_USERS GEN_ITEMS GEN_INTER
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${FEDREC_BIN:-$ROOT/build/fedrec}
BENCH=${BENCH_BIN:-$ROOT/build/bench_hide}
MODEL=${MODEL:-bpr} ROUNDS=${ROUNDS:-40} CPR=${CPR:-100} THREADS=${THREADS:-2} SEED=${SEED:-1}
GEN_USERS=${GEN_USERS:-2000} GEN_ITEMS=${GEN_ITEMS:-1000} GEN_INTER=${GEN_INTER:-60000}
[ -x "$BENCH" ] || { echo "run_hide.sh: $BENCH not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "# $(date -u +%FT%TZ)  $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $MODEL (fedrec preset), $ROUNDS rounds, $CPR clients per round, seed $SEED"
sets=()
ML=$ROOT/../shared/data/ml-100k-loo
if [ -f "$ML/train.rating" ]; then sets+=("ml-100k-loo:$ML"); else echo "# ml-100k-loo not found at $ML: skipped"; fi
"$BIN" data generate --users "$GEN_USERS" --items "$GEN_ITEMS" --interactions "$GEN_INTER" --seed "$SEED" \
    --out "$tmp/gen.data" >/dev/null
"$BIN" data split "$tmp/gen.data" --loo --negatives 99 --seed "$SEED" --out "$tmp/gen" >/dev/null
sets+=("generated ${GEN_USERS}x${GEN_ITEMS}, ${GEN_INTER}:$tmp/gen")
variants=(
    "plain|"
    "dense (secagg)|--secagg 1"
    "decoys:1 zero|--decoys 1 --decoy-zero 1"
    "decoys:1|--decoys 1"
    "decoys:4|--decoys 4"
    "decoys:9|--decoys 9"
    "clip 1 (no noise)|--dp-clip 1"
    "ldp 0.05 (no decoys)|--dp-clip 1 --ldp-noise 0.05"
    "ldp:0.02 (decoys:1)|--dp-clip 1 --ldp-noise 0.02 --decoys 1"
    "ldp:0.05 (decoys:1)|--dp-clip 1 --ldp-noise 0.05 --decoys 1"
    "ldp:0.2 (decoys:1)|--dp-clip 1 --ldp-noise 0.2 --decoys 1"
)
for s in "${sets[@]}"; do
    name=${s%%:*} dir=${s#*:}
    echo
    echo "## $name"
    printf '%-22s %7s %7s %7s %7s %7s %7s %7s %7s %9s %7s %6s\n' variant F1 rand F1-rand pop F1-pop rank \
        seenpop pres bytes_up hr@10 secs
    for v in "${variants[@]}"; do
        label=${v%%|*} args=${v#*|}
        # shellcheck disable=SC2086
        "$BENCH" --ncf "$dir" --model "$MODEL" --rounds "$ROUNDS" --clients "$CPR" --threads "$THREADS" \
            --seed "$SEED" $args > "$tmp/out.json"
        python3 - "$label" "$tmp/out.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
secagg = d["secagg"] == 1
nan = float("nan")
rank = nan if secagg else d["ranked"]["f1"]
seenpop = nan if secagg else d["seen_popular_f1"]
f1 = d["popular_f1"] if secagg else max(rank, seenpop)   # under secagg: the sum's best guess
rnd = d["random_f1_all"] if secagg else d["ranked"]["random_f1"]
pres = nan if secagg else d["present"]["f1"]
pop = d["popular_f1"]
print(f'{sys.argv[1]:<22} {f1:7.4f} {rnd:7.4f} {f1 - rnd:7.4f} {pop:7.4f} {f1 - pop:7.4f} {rank:7.4f} {seenpop:7.4f} '
      f'{pres:7.4f} {d["bytes_up_per_client"]:9.0f} {d["hr@10"]:7.4f} {d["train_s"]:6.1f}')
PY
    done
done
