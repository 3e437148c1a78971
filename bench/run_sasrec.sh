#!/usr/bin/env bash
# SASRec, fedrec centralized and federated against RecBole's SASRec, side by side on the
# same split: a per-user temporal leave-one-out (each user's latest interaction by time is
# its test item) with 100 sampled negatives per user (the SASRec paper's protocol), made
# by `fedrec data split --loo --negatives 100`, of ml-100k (u.data) and of the ml-1m
# partial set (users 1-2999). RecBole reads the same split (bench/recbole_sasrec.py: its
# leave-one-out by time holds out the same test item, and its model is also scored on
# fedrec's 100 negatives). Reports HR@10/NDCG@10 and seconds per epoch, wall and CPU, of
# the training pass (evaluation excluded). A federated "epoch" is 943/32 rounds of 32
# clients (as many examples as a centralized epoch).
# fedrec is also trained and scored on the validation cut of the same split (`fedrec data
# split TRAIN --loo --negatives 100`: each user's last training item, the item RecBole
# validates on), which is where any tuning of fedrec's preset belongs, never the test item.
# RecBole 1.2.1 imports its SINE model, which turns torch's autograd anomaly mode on for
# the whole process (about 2x the CPU time, same results): recbole_sasrec.py turns it off.
# RecBole runs at `nice -n 19` in the background while fedrec runs (a sequential RecBole
# epoch is two orders of magnitude slower); its per-epoch CPU seconds do not depend on nice.
# Run from the repository root after building (build/fedrec); ../shared beside the repo;
# RecBole in the venv ~/.cache/fedrec-ref-venv (made as bench/run_lightgcn.sh's header says).
# Usage: bench/run_sasrec.sh [DATASETS (ml100k ml1m)]   env: RB_EPOCHS (RecBole's epoch
# budget, default 200 with early stopping), RB_STOP (evaluations without a better validation
# NDCG@10 before RecBole stops, default 5), RB_EVAL_STEP (RecBole validates every K epochs,
# default 2: its sampled evaluation repeats the sequence for each of the 101 candidates,
# which costs about half a training epoch), RB_LOSS (CE, RecBole's default softmax over all
# items, or BPR with one sampled negative), RB_BUDGET (seconds after which RecBole starts
# no new epoch and its best model on validation so far is tested; default 0: none),
# THREADS (1), FED_ROUNDS (also a federated run of that many rounds on test; the preset's
# rounds are 40.7 epochs' worth of clients, 32 a round: 1200 on ml-100k, 3815 on the ml-1m partial set),
# OUT (a directory to keep
# results), REPORT_ONLY=1 (no run: print the tables
# of the results already in OUT). A RecBole run stopped by hand can be
# scored from its last checkpoint: recbole_sasrec.py SPLIT --from-checkpoint FILE.pth, or trained
# on from it (model, optimizer, epoch and early-stopping state): recbole_sasrec.py SPLIT ... --resume FILE.pth
set -euo pipefail
shared=../shared
bin=${FEDREC_BIN:-build/fedrec}
py=${RB_PY:-$HOME/.cache/fedrec-ref-venv/bin/python}
threads=${THREADS:-1}
rb_epochs=${RB_EPOCHS:-200}
rb_budget=${RB_BUDGET:-0}
rb_stop=${RB_STOP:-5}
rb_eval_step=${RB_EVAL_STEP:-2}
rb_loss=${RB_LOSS:-CE}
sets=${1:-ml100k ml1m}
# OpenBLAS mistakes this machine's CPU for a Prescott (SSE3) without it; set it only where
# the CPU has AVX2
if grep -q avx2 /proc/cpuinfo && [ -z "${OPENBLAS_CORETYPE:-}" ]; then export OPENBLAS_CORETYPE=Haswell; fi
if [ ! -d "$shared/data" ]; then
    echo "run_sasrec: $shared/data is absent; nothing to benchmark (see DESIGN.md, 'Reference data')"
    exit 0
fi
[ -x "$bin" ] || { echo "run_sasrec: $bin not found; build first" >&2; exit 1; }
[ -x "$py" ] || { echo "run_sasrec: $py not found; RecBole's venv is missing (see the header)" >&2; exit 1; }
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
    if [ -z "${REPORT_ONLY:-}" ]; then
        echo "+ $bin data split $src --loo --negatives 100 --out $d/split"
        "$bin" data split "$src" --loo --negatives 100 --out "$d/split" >/dev/null
        "$bin" data split "$d/split/train.rating" --loo --negatives 100 --out "$d/val" >/dev/null
        echo "+ (cd $d/rb && nice -n 19 $py bench/recbole_sasrec.py $d/split --epochs $rb_epochs --threads $threads" \
             "--eval-step $rb_eval_step --stopping-step $rb_stop --loss $rb_loss --time-budget $rb_budget) &"
        mkdir -p "$d/rb"
        rbpy=$(realpath bench/recbole_sasrec.py)
        (cd "$d/rb" && exec nice -n 19 "$py" "$rbpy" "$d/split" --epochs "$rb_epochs" --threads "$threads" \
            --eval-step "$rb_eval_step" --stopping-step "$rb_stop" --loss "$rb_loss" --time-budget "$rb_budget" \
            --work "$d/rb" >"$d/rb.json" 2>"$d/rb.err") &
        rbpid=$!
        for w in split val; do
            echo "+ $bin train --data $d/$w --model sasrec --centralized --threads $threads --eval-every 5"
            /usr/bin/time -f '%U %S' -o "$d/c-$w.time" "$bin" train --data "$d/$w" --model sasrec --centralized \
                --threads "$threads" --eval-every 5 --quiet --metrics-out "$d/c-$w.jsonl" --out "$d/c-$w.fr" >"$d/c-$w.log" 2>&1
            echo "+ $bin train --data $d/$w --model sasrec --threads $threads --eval-every 200"
            /usr/bin/time -f '%U %S' -o "$d/f-$w.time" "$bin" train --data "$d/$w" --model sasrec \
                --threads "$threads" --eval-every 200 --quiet --metrics-out "$d/f-$w.jsonl" --out "$d/f-$w.fr" >"$d/f-$w.log" 2>&1
        done
        if [ -n "${FED_ROUNDS:-}" ]; then
            echo "+ $bin train --data $d/split --model sasrec --rounds $FED_ROUNDS --threads $threads --eval-every 150"
            /usr/bin/time -f '%U %S' -o "$d/f$FED_ROUNDS-split.time" "$bin" train --data "$d/split" --model sasrec \
                --rounds "$FED_ROUNDS" --threads "$threads" --eval-every 150 --quiet \
                --metrics-out "$d/f$FED_ROUNDS-split.jsonl" --out "$d/f$FED_ROUNDS-split.fr" >"$d/f$FED_ROUNDS-split.log" 2>&1
        fi
        echo "waiting for RecBole (pid $rbpid; its progress in $d/rb.err)"
        wait "$rbpid" || { echo "RecBole failed: $(tail -3 "$d/rb.err")"; }
    fi
    users=$(wc -l < "$d/split/test.rating")
    python3 - "$d" "$users" <<'PY'
import glob, json, os, sys
d, users = sys.argv[1], int(sys.argv[2])
def rows(p): return [json.loads(l) for l in open(p) if l.strip()]
def cpu(p): return sum(float(x) for x in open(p).read().split()[:2])
def run(name, fed):
    r = rows(f"{d}/{name}.jsonl")
    last = [x for x in r if "hr@10" in x][-1]
    if fed:
        n = max(x.get("round", 0) for x in r); ep = n * 32 / users  # 32 clients a round (the preset)
    else:
        n = ep = max(x.get("epoch", 0) for x in r)
    return last, ep, n, sum(x.get("seconds", 0) for x in r) / ep, cpu(f"{d}/{name}.time") / ep
print(f"{'':30s} {'HR@10':>7s} {'NDCG@10':>8s} {'s/epoch wall':>13s} {'s/epoch cpu':>12s}  epochs")
res = {}
for w, what in (("val", "validation (last training item)"), ("split", "test (latest item)")):
    print(f"-- {what}; fedrec's cpu includes loading and its evaluations")
    try:
        c, ce, _, cw, cc = run(f"c-{w}", False)
        f, fe, fr_, fw, fc = run(f"f-{w}", True)
    except (OSError, IndexError, ValueError):
        print("  (not run or not finished)"); continue
    res[w] = (c, f)
    print(f"{'fedrec centralized':30s} {c['hr@10']:7.4f} {c['ndcg@10']:8.4f} {cw:13.2f} {cc:12.2f}  {ce}")
    print(f"{'fedrec federated':30s} {f['hr@10']:7.4f} {f['ndcg@10']:8.4f} {fw:13.2f} {fc:12.2f}  {fe:.1f} ({fr_} rounds x 32 clients)")
    print(f"federated / centralized HR@10: {f['hr@10'] / c['hr@10']:.3f}")
for fn in sorted(glob.glob(f"{d}/f[0-9]*-split.jsonl")):
    name = os.path.basename(fn)[:-6]
    try: f, fe, fr_, fw, fc = run(name, True)
    except (OSError, IndexError, ValueError): continue
    print(f"{'fedrec federated, test':30s} {f['hr@10']:7.4f} {f['ndcg@10']:8.4f} {fw:13.2f} {fc:12.2f}  {fe:.1f} ({fr_} rounds x 32 clients)"
          + (f", {f['hr@10'] / res['split'][0]['hr@10']:.3f} of centralized" if "split" in res else ""))
try: rb = json.load(open(f"{d}/rb.json"))
except Exception: rb = None
if rb and "split" in res:
    v = rb.get("valid_curve", [])
    print("RecBole validation curve (its own 100 negatives; epoch HR@10 NDCG@10): "
          + ", ".join(f"{x['epoch']} {x['hit@10']:.4f} {x['ndcg@10']:.4f}" for x in v))
    stop = "stopped by the time budget" if rb["stopped_by_budget"] else "early stopping"
    print(f"{'RecBole SASRec ' + rb.get('loss', 'CE') + ', test':30s} {rb['hr@10']:7.4f} {rb['ndcg@10']:8.4f}"
          f" {rb['seconds_per_epoch']:13.2f} {rb['cpu_seconds_per_epoch']:12.2f}  {rb['epochs']}"
          f" ({stop}; best validation at epoch {rb['best_epoch']}; its own uni100 test: HR@10"
          f" {rb['recbole_test_uni100'].get('hit@10', float('nan')):.4f})")
    c = res["split"][0]
    cc = cpu(f"{d}/c-split.time") / max(x.get("epoch", 0) for x in rows(f"{d}/c-split.jsonl"))
    print(f"centralized / RecBole on test: HR@10 {c['hr@10'] / rb['hr@10']:.3f}x, NDCG@10 {c['ndcg@10'] / rb['ndcg@10']:.3f}x,"
          f" CPU per epoch {rb['cpu_seconds_per_epoch'] / cc:.0f}x less")
PY
done
