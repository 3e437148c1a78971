#!/usr/bin/env bash
# Per-epoch CPU time of fedrec's whole-graph LightGCN (--model lightgcn-full, centralized)
# against RecBole's LightGCN on ml-100k-loo, at the same batch sizes, side by side: each
# round runs, for each batch size, fedrec (1 and 11 epochs: (t11 - t1) / 10 is one
# epoch's CPU with loading and the final evaluation taken out) and then RecBole (3
# epochs, the median of its per-epoch process CPU), so both see the same machine load;
# the report is the median over rounds of the per-round ratios. One thread each. Both
# propagate the whole graph every batch (2 K sweeps over the edges).
#
#   bench/lightgcn_full_speed.sh                 batches 2048 (RecBole's) and 4096 (fedrec's preset), 3 rounds
#   BATCHES="2048" ROUNDS=5 bench/lightgcn_full_speed.sh
# Needs the venv of bench/run_lightgcn.sh (VENV, default ~/.cache/fedrec-ref-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lightgcn_env.sh
BATCHES=${BATCHES:-"2048 4096"}
ROUNDS=${ROUNDS:-3}
out=$(mktemp -d /tmp/fedrec-lgf-speed.XXXXXX)
echo "data: $DATA; batches: $BATCHES; rounds: $ROUNDS; outputs in $out"

fed_cpu() { # batch epochs -> CPU seconds of the whole process
  /usr/bin/time -f "%U %S" -o "$out/t" "$FEDREC" train --data "$DATA" --model lightgcn-full --centralized \
    --threads 1 --quiet --batch "$1" --epochs "$2" --eval-every 0 --metrics-out /dev/null --out "$out/m.fr" > /dev/null
  awk '{print $1 + $2}' "$out/t"
}

declare -A ratios
for k in $(seq "$ROUNDS"); do
  for b in $BATCHES; do
    t1=$(fed_cpu "$b" 1)
    t11=$(fed_cpu "$b" 11)
    "$VENV/bin/python" bench/lightgcn_recbole.py "$DATA" --epochs 3 --eval-every 100 --threads 1 --batch "$b" \
      > "$out/rb.jsonl" 2> /dev/null
    read -r f r x < <(python3 - "$t1" "$t11" "$out/rb.jsonl" <<'PY'
import json, sys
t1, t11 = float(sys.argv[1]), float(sys.argv[2])
f = (t11 - t1) / 10
c = sorted(json.loads(l)["cpu_seconds"] for l in open(sys.argv[3]))
r = c[len(c) // 2]
print("%.4f %.4f %.1f" % (f, r, r / f))
PY
)
    echo "round $k batch $b: fedrec lightgcn-full $f CPU-s/epoch, RecBole $r: ${x}x"
    ratios[$b]="${ratios[$b]:-} $x"
  done
done
for b in $BATCHES; do
  m=$(printf '%s\n' ${ratios[$b]} | sort -g | sed -n "$(( (ROUNDS + 1) / 2 ))p")
  echo "batch $b: median speed-up per epoch by CPU time ${m}x (rounds:${ratios[$b]}; target >= 10x)"
done
