#!/usr/bin/env bash
# LightGCN on ml-100k-loo, side by side: fedrec centralized, fedrec federated (every
# user its own client, its items and embedding private), fedrec's whole-graph LightGCN
# (--model lightgcn-full, centralized only) and RecBole's LightGCN (PyPI
# recbole, PyTorch on the CPU), all scored by HR@10 and NDCG@10 of the test item among
# the split's 99 given negatives, and their training seconds per epoch (round).
#
#   bench/run_lightgcn.sh                  quality runs and the timing rounds
#   THREADS=2 bench/run_lightgcn.sh        both libraries on two threads (default 1)
#   RB_EPOCHS=300 bench/run_lightgcn.sh    RecBole's epochs (default 200; lr 0.001)
#   TIMING=0 bench/run_lightgcn.sh         skip the back-to-back timing rounds
#
# fedrec runs its presets (`fedrec train --data DIR --model lightgcn [--centralized]`,
# nothing else; tuned on a validation cut of train.rating, docs/ARCHITECTURE.md). RecBole
# runs its LightGCN defaults (dim 64, 2 layers, Adam 0.001, batch 2048, reg 1e-5) for
# RB_EPOCHS epochs; its figures are those of the last epoch and, as an upper bound that
# favours it, the best of its evaluations every 10 epochs (picked on the test split).
# Seconds per epoch: medians; the timing rounds run fedrec (10 epochs) and RecBole (3
# epochs) back to back TIMING_ROUNDS times (default 3) so both see the same machine load,
# and report the median of the per-round ratios.
# Needs a venv with recbole and torch: VENV (default ~/.cache/fedrec-ref-venv), e.g.
#   scripts/install-deps.sh --bench   # Debian's python3-torch
#   python3 -m venv --system-site-packages ~/.cache/fedrec-ref-venv
#   ~/.cache/fedrec-ref-venv/bin/pip install recbole "numpy<2" "pandas<2.3"
# (RecBole 1.2.1 uses np.float_, gone in NumPy 2, which pip would otherwise bring, with a
# pandas that needs it.)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lightgcn_env.sh
THREADS=${THREADS:-1}
RB_EPOCHS=${RB_EPOCHS:-200}
TIMING=${TIMING:-1}
TIMING_ROUNDS=${TIMING_ROUNDS:-3}
out=$(mktemp -d /tmp/fedrec-lightgcn.XXXXXX)
echo "data: $DATA; threads: $THREADS; outputs in $out"

summ() { # metrics.jsonl -> "hr ndcg median_seconds"
  python3 - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
s = [r for r in rows if r.get("summary")][-1]
secs = sorted(r["seconds"] for r in rows if "seconds" in r and not r.get("summary"))
print("%.4f %.4f %.4f" % (s["final"]["hr@10"], s["final"]["ndcg@10"], secs[len(secs) // 2]))
PY
}

echo "== fedrec centralized: $FEDREC train --data $DATA --model lightgcn --centralized --threads $THREADS"
"$FEDREC" train --data "$DATA" --model lightgcn --centralized --threads "$THREADS" --quiet \
  --metrics-out "$out/central.jsonl" --out "$out/central.fr" > /dev/null
read -r c_hr c_nd c_s < <(summ "$out/central.jsonl")
echo "== fedrec federated:   $FEDREC train --data $DATA --model lightgcn --threads $THREADS"
"$FEDREC" train --data "$DATA" --model lightgcn --threads "$THREADS" --quiet --eval-every 10 \
  --metrics-out "$out/fed.jsonl" --out "$out/fed.fr" > /dev/null
read -r f_hr f_nd f_s < <(summ "$out/fed.jsonl")
echo "== fedrec full LightGCN: $FEDREC train --data $DATA --model lightgcn-full --centralized --threads $THREADS"
"$FEDREC" train --data "$DATA" --model lightgcn-full --centralized --threads "$THREADS" --quiet \
  --metrics-out "$out/full.jsonl" --out "$out/full.fr" > /dev/null
read -r g_hr g_nd g_s < <(summ "$out/full.jsonl")
echo "== RecBole LightGCN:   bench/lightgcn_recbole.py $DATA --epochs $RB_EPOCHS --threads $THREADS"
"$VENV/bin/python" bench/lightgcn_recbole.py "$DATA" --epochs "$RB_EPOCHS" --eval-every 10 --threads "$THREADS" \
  > "$out/recbole.jsonl" 2> "$out/recbole.err"
read -r r_hr r_nd r_bhr r_bnd r_be r_s < <(python3 - "$out/recbole.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ev = [r for r in rows if "hr@10" in r]
best = max(ev, key=lambda r: r["hr@10"])
secs = sorted(r["seconds"] for r in rows)
print(ev[-1]["hr@10"], ev[-1]["ndcg@10"], best["hr@10"], best["ndcg@10"], best["epoch"], secs[len(secs) // 2])
PY
)

ratio="-"
cratio="-"
gratio="-"
gcratio="-"
if [[ $TIMING == 1 ]]; then
  echo "== timing: fedrec 10 epochs and RecBole 3 epochs back to back, $TIMING_ROUNDS rounds"
  ratios=()
  cratios=()
  gratios=()
  gcratios=()
  for k in $(seq "$TIMING_ROUNDS"); do
    /usr/bin/time -f "%U %S" -o "$out/t_fed$k.cpu" "$FEDREC" train --data "$DATA" --model lightgcn --centralized \
      --threads "$THREADS" --quiet --epochs 10 --eval-every 0 --metrics-out "$out/t_fed$k.jsonl" > /dev/null
    /usr/bin/time -f "%U %S" -o "$out/t_full$k.cpu" "$FEDREC" train --data "$DATA" --model lightgcn-full \
      --centralized --threads "$THREADS" --quiet --epochs 10 --eval-every 0 --metrics-out "$out/t_full$k.jsonl" > /dev/null
    "$VENV/bin/python" bench/lightgcn_recbole.py "$DATA" --epochs 3 --eval-every 100 --threads "$THREADS" \
      > "$out/t_rb$k.jsonl" 2> /dev/null
    r=$(python3 - "$out/t_fed$k.jsonl" "$out/t_rb$k.jsonl" "$out/t_fed$k.cpu" <<'PY'
import json, sys
f = sorted(json.loads(l)["seconds"] for l in open(sys.argv[1]) if '"epoch"' in l and "summary" not in l)
rb = [json.loads(l) for l in open(sys.argv[2])]
b = sorted(r["seconds"] for r in rb)
bc = sorted(r["cpu_seconds"] for r in rb)
# fedrec's CPU: the whole process (loading, 10 epochs, the final evaluation) over 10: an upper bound
fc = sum(map(float, open(sys.argv[3]).read().split()[:2])) / 10
print("%.4f %.4f %.1f %.4f %.4f %.1f" % (f[len(f) // 2], b[len(b) // 2], b[len(b) // 2] / f[len(f) // 2],
                                       fc, bc[len(bc) // 2], bc[len(bc) // 2] / fc))
PY
)
    read -r fw bw rw fcpu bcpu rc <<< "$r"
    echo "   round $k: wall fedrec $fw s/epoch, RecBole $bw: ${rw}x;  CPU fedrec <= $fcpu s/epoch, RecBole $bcpu: ${rc}x"
    ratios+=("$rw")
    cratios+=("$rc")
    r=$(python3 - "$out/t_full$k.jsonl" "$out/t_rb$k.jsonl" "$out/t_full$k.cpu" <<'PY'
import json, sys
f = sorted(json.loads(l)["seconds"] for l in open(sys.argv[1]) if '"epoch"' in l and "summary" not in l)
rb = [json.loads(l) for l in open(sys.argv[2])]
b = sorted(r["seconds"] for r in rb)
bc = sorted(r["cpu_seconds"] for r in rb)
fc = sum(map(float, open(sys.argv[3]).read().split()[:2])) / 10
print("%.4f %.1f %.4f %.1f" % (f[len(f) // 2], b[len(b) // 2] / f[len(f) // 2], fc, bc[len(bc) // 2] / fc))
PY
)
    read -r gw grw gcpu grc <<< "$r"
    echo "   round $k: lightgcn-full wall $gw s/epoch: ${grw}x;  CPU <= $gcpu s/epoch: ${grc}x (against the same RecBole run)"
    gratios+=("$grw")
    gcratios+=("$grc")
  done
  ratio=$(printf '%s\n' "${ratios[@]}" | sort -g | sed -n "$(( (${#ratios[@]} + 1) / 2 ))p")
  cratio=$(printf '%s\n' "${cratios[@]}" | sort -g | sed -n "$(( (${#cratios[@]} + 1) / 2 ))p")
  gratio=$(printf '%s\n' "${gratios[@]}" | sort -g | sed -n "$(( (${#gratios[@]} + 1) / 2 ))p")
  gcratio=$(printf '%s\n' "${gcratios[@]}" | sort -g | sed -n "$(( (${#gcratios[@]} + 1) / 2 ))p")
fi

echo
printf '%-34s %8s %8s %10s\n' "ml-100k-loo, 99 negatives" "HR@10" "NDCG@10" "s/epoch"
printf '%-34s %8s %8s %10s\n' "fedrec lightgcn centralized" "$c_hr" "$c_nd" "$c_s"
printf '%-34s %8s %8s %10s\n' "fedrec lightgcn federated" "$f_hr" "$f_nd" "$f_s (round)"
printf '%-34s %8s %8s %10s\n' "fedrec lightgcn-full (centralized)" "$g_hr" "$g_nd" "$g_s"
printf '%-34s %8s %8s %10s\n' "RecBole LightGCN ($RB_EPOCHS epochs)" "$r_hr" "$r_nd" "$r_s"
printf '%-34s %8s %8s\n' "RecBole best (epoch $r_be, on test)" "$r_bhr" "$r_bnd"
python3 - "$c_hr" "$f_hr" "$r_hr" "$r_bhr" "$c_nd" "$r_nd" "$g_hr" "$g_nd" <<'PY'
import sys
c, f, r, rb, cn, rn, g, gn = map(float, sys.argv[1:])
print("federated / centralized HR@10: %.3f (target >= 0.95)" % (f / c))
print("centralized - RecBole HR@10: %+.4f (last), %+.4f (its best); NDCG@10 %+.4f" % (c - r, c - rb, cn - rn))
print("lightgcn-full - RecBole HR@10: %+.4f (last), %+.4f (its best); NDCG@10 %+.4f" % (g - r, g - rb, gn - rn))
PY
echo "per-epoch speed-up over RecBole (timing rounds, median): ${ratio}x wall clock, ${cratio}x CPU time (target >= 10x)"
echo "lightgcn-full per-epoch speed-up over RecBole (same rounds, median): ${gratio}x wall clock, ${gcratio}x CPU time"
