#!/usr/bin/env bash
# SASRec, fedrec centralized and federated against RecBole's SASRec, side by side on the
# same split: a per-user temporal leave-one-out (each user's latest interaction by time is
# its test item) with 100 sampled negatives per user (the SASRec paper's protocol), made
# by `fedrec data split --loo --negatives 100`, of ml-100k (u.data) and of the ml-1m
# partial set (users 1-2999). RecBole reads the same split (bench/recbole_sasrec.py: its
# leave-one-out by time holds out the same test item, and its model is also scored on
# fedrec's 100 negatives). Reports HR@10/NDCG@10 and seconds per epoch, wall and CPU, of
# the training pass (evaluation excluded). A federated "epoch" is 943/128 rounds of 128
# clients (as many examples as a centralized epoch).
# Run from the repository root after building (build/fedrec); ../shared beside the repo;
# RecBole in the venv ~/.cache/fedrec-ref-venv.
# Usage: bench/run_sasrec.sh [DATASETS (ml100k ml1m)]   env: RB_EPOCHS (RecBole's epoch
# budget, default 200 with early stopping), RB_BUDGET (seconds after which RecBole starts
# no new epoch and its best model on validation so far is tested; default 0: none),
# THREADS (1), OUT (a directory to keep results). A RecBole run stopped by hand can be
# scored from its last checkpoint: recbole_sasrec.py SPLIT --from-checkpoint FILE.pth
set -euo pipefail
shared=../shared
bin=${FEDREC_BIN:-build/fedrec}
py=${RB_PY:-$HOME/.cache/fedrec-ref-venv/bin/python}
threads=${THREADS:-1}
rb_epochs=${RB_EPOCHS:-200}
rb_budget=${RB_BUDGET:-0}
sets=${1:-ml100k ml1m}
# OpenBLAS mistakes this machine's CPU for a Prescott (SSE3) without it; set it only where
# the CPU has AVX2
if grep -q avx2 /proc/cpuinfo && [ -z "${OPENBLAS_CORETYPE:-}" ]; then export OPENBLAS_CORETYPE=Haswell; fi
if [ ! -d "$shared/data" ]; then
    echo "run_sasrec: $shared/data is absent; nothing to benchmark (see DESIGN.md, 'Reference data')"
    exit 0
fi
[ -x "$bin" ] || { echo "run_sasrec: $bin not found; build first" >&2; exit 1; }
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
echo "# $(date -u +%FT%TZ)  $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg); results in $out"

cpu_of() { awk '{print $1 + $2}' "$1"; } # user + sys seconds of /usr/bin/time -f '%U %S'

for s in $sets; do
    case $s in
        ml100k) src=$shared/data/ml-100k/u.data ;;
        ml1m) src=$shared/data/ml-1m/ratings.partial-users-0001-2999.dat ;;
        *) echo "unknown data set $s" >&2; exit 1 ;;
    esac
    [ -f "$src" ] || { echo "## $s: $src absent, skipped"; continue; }
    d=$out/$s
    echo "## $s: $src"
    echo "+ $bin data split $src --loo --negatives 100 --out $d/split"
    "$bin" data split "$src" --loo --negatives 100 --out "$d/split" >/dev/null
    users=$(wc -l < "$d/split/test.rating")
    echo "+ $bin train --data $d/split --model sasrec --centralized --threads $threads --eval-every 0"
    /usr/bin/time -f '%U %S' -o "$d/c.time" "$bin" train --data "$d/split" --model sasrec --centralized \
        --threads "$threads" --eval-every 0 --quiet --metrics-out "$d/c.jsonl" --out "$d/c.fr" >"$d/c.log" 2>&1
    echo "+ $bin train --data $d/split --model sasrec --threads $threads --eval-every 0"
    /usr/bin/time -f '%U %S' -o "$d/f.time" "$bin" train --data "$d/split" --model sasrec \
        --threads "$threads" --eval-every 0 --quiet --metrics-out "$d/f.jsonl" --out "$d/f.fr" >"$d/f.log" 2>&1
    echo "+ $py bench/recbole_sasrec.py $d/split --epochs $rb_epochs --threads $threads"
    "$py" bench/recbole_sasrec.py "$d/split" --epochs "$rb_epochs" --threads "$threads" --work "$d/rb" \
        --time-budget "$rb_budget" \
        >"$d/rb.json" 2>"$d/rb.err" || { echo "RecBole failed: $(tail -3 "$d/rb.err")"; }
    python3 - "$d" "$users" "$(cpu_of "$d/c.time")" "$(cpu_of "$d/f.time")" <<'PY'
import json, sys
d, users, ccpu, fcpu = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
def rows(p): return [json.loads(l) for l in open(p) if l.strip()]
c, f = rows(f"{d}/c.jsonl"), rows(f"{d}/f.jsonl")
cl = [r for r in c if "hr@10" in r][-1]; fl = [r for r in f if "hr@10" in r][-1]
ce = max(r.get("epoch", 0) for r in c); fr_ = max(r.get("round", 0) for r in f)
cw = sum(r.get("seconds", 0) for r in c) / ce
fepochs = fr_ * 128 / users           # 128 clients a round: rounds per example-epoch
fw = sum(r.get("seconds", 0) for r in f) / fepochs
try: rb = json.load(open(f"{d}/rb.json"))
except Exception: rb = None
print(f"{'':22s} {'HR@10':>7s} {'NDCG@10':>8s} {'s/epoch wall':>13s} {'s/epoch cpu':>12s}  epochs")
print(f"{'fedrec centralized':22s} {cl['hr@10']:7.4f} {cl['ndcg@10']:8.4f} {cw:13.2f} {ccpu / ce:12.2f}  {ce}")
print(f"{'fedrec federated':22s} {fl['hr@10']:7.4f} {fl['ndcg@10']:8.4f} {fw:13.2f} {fcpu / fepochs:12.2f}  {fepochs:.0f} ({fr_} rounds x 128 clients)")
if rb:
    print(f"{'RecBole SASRec':22s} {rb['hr@10']:7.4f} {rb['ndcg@10']:8.4f} {rb['seconds_per_epoch']:13.2f} {rb['cpu_seconds_per_epoch']:12.2f}  {rb['epochs']}"
          f"  (its own uni100 test: HR@10 {rb['recbole_test_uni100'].get('hit@10', float('nan')):.4f}, NDCG@10 {rb['recbole_test_uni100'].get('ndcg@10', float('nan')):.4f})")
    print(f"centralized / RecBole: HR@10 {cl['hr@10'] / rb['hr@10']:.3f}x, NDCG@10 {cl['ndcg@10'] / rb['ndcg@10']:.3f}x, "
          f"speed per epoch {rb['seconds_per_epoch'] / cw:.1f}x wall, {rb['cpu_seconds_per_epoch'] / (ccpu / ce):.1f}x cpu")
print(f"federated / centralized HR@10: {fl['hr@10'] / cl['hr@10']:.3f}")
PY
done
