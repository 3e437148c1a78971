#!/usr/bin/env bash
# fedrec's defaults on data of several shapes, against its own baselines and the
# libraries users would pick instead, side by side in one run (issue 11's targets).
# Every fedrec run below gives nothing but the data, the split and the model.
#   A. explicit, ml-100k u1..u5 (given folds) and the ml-1m partial ratings
#      (--split ratio:0.8, a per-user 80/20 split): federated mf, centralized mf and the
#      bias baseline (the run summary's). Targets: federated RMSE within 1% of
#      centralized; both at least 2% below bias (fold means on ml-100k).
#   B. implicit, leave-one-out with 99 negatives, ml-100k-loo and the ml-1m partial
#      ratings: federated bpr, centralized bpr and most-popular (pop); federated and
#      centralized neumf (ml-100k-loo; with FULL=1 also ml-1m). Targets: federated bpr
#      within 0.03 HR@10 of centralized and at least 0.05 above pop; federated neumf at
#      least centralized.
#   C. speed: centralized mf seconds per epoch against Surprise's SVD (its defaults) on u1,
#      with both RMSEs (target >= 5x at equal or better RMSE); centralized bpr training
#      time per sampled (user, positive, negative) triple against the `implicit` library's
#      BPR on ml-100k-loo's train.rating, 1 and 2 threads (target: at least as fast).
# Usage: bench/run_defaults.sh [A] [B] [C]   (default: all; from the root after a build)
# FEDREC_BIN_BEFORE=path (part C): another build of fedrec (say, main's) timed in the same
# rounds as this one, just before it, so a speed change is measured side by side.
# The reference libraries live in a venv (FEDREC_BENCH_VENV, default
# ~/.cache/fedrec-bench-venv) made on first use with `pip install scikit-surprise implicit`;
# part C is skipped, saying so, when that fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${FEDREC_DATA:-$ROOT/../shared/data}
BIN=${FEDREC_BIN:-$ROOT/build/fedrec}
VENV=${FEDREC_BENCH_VENV:-$HOME/.cache/fedrec-bench-venv}
parts=${*:-A B C}
if [ ! -d "$DATA/ml-100k" ] || [ ! -d "$DATA/ml-100k-loo" ]; then
    echo "run_defaults.sh: $DATA/ml-100k or ml-100k-loo is absent: nothing to measure (skipped)"
    exit 0
fi
[ -x "$BIN" ] || { echo "run_defaults.sh: $BIN not built (scripts/test.sh builds it)" >&2; exit 1; }
ML1M=$DATA/ml-1m/ratings.partial-users-0001-2999.dat
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "# $(date -u +%FT%TZ)  $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# run NAME ARGS...: fedrec train ARGS with its summary record in $tmp/NAME.jsonl
run() {
    local name=$1
    shift
    echo "+ fedrec train $*"
    "$BIN" train "$@" --quiet --eval-every 0 --metrics-out "$tmp/$name.jsonl" >/dev/null
}

# summary NAME KEY: the final value of KEY (rmse, hr@10) in NAME's summary record, or of
# the baseline with KEY=baseline:rmse
summary() {
    python3 - "$tmp/$1.jsonl" "$2" <<'PY'
import json, sys
rec = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
key = sys.argv[2]
if key.startswith("baseline:"):
    print(rec["baseline"][key.split(":")[1]])
elif key == "median_step_seconds":
    steps = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][:-1]
    print(sorted(r["seconds"] for r in steps)[len(steps) // 2])
elif key == "step_seconds":  # the mean training time of a round or epoch (evaluation excluded)
    steps = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][:-1]
    print(sum(r["seconds"] for r in steps) / len(steps))
else:
    print(rec["final"][key])
PY
}

if [[ $parts == *A* ]]; then
    echo "## A. explicit ratings, mf with its defaults"
    rows=()
    for f in 1 2 3 4 5; do
        tr=$DATA/ml-100k/u$f.base te=$DATA/ml-100k/u$f.test
        run fed$f --data "$tr" --test "$te" --model mf
        run cen$f --data "$tr" --test "$te" --model mf --centralized
        rows+=("ml-100k u$f $(summary fed$f rmse) $(summary cen$f rmse) $(summary cen$f baseline:rmse)")
    done
    if [ -f "$ML1M" ]; then
        run fed1m --data "$ML1M" --split ratio:0.8 --model mf
        run cen1m --data "$ML1M" --split ratio:0.8 --model mf --centralized
        rows+=("ml-1m-partial ratio:0.8 $(summary fed1m rmse) $(summary cen1m rmse) $(summary cen1m baseline:rmse)")
    else
        echo "(the ml-1m partial ratings are absent: skipped)"
    fi
    printf '%s\n' "${rows[@]}" >"$tmp/rowsA"
    python3 - "$tmp/rowsA" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print("%-14s %-22s %9s %9s %9s %8s %9s %9s" % ("data", "split", "fed rmse", "cen rmse", "bias", "fed/cen", "fed/bias", "cen/bias"))
def line(d, s, f, c, b):
    print("%-14s %-22s %9.4f %9.4f %9.4f %8.4f %9.4f %9.4f" % (d, s, f, c, b, f / c, f / b, c / b))
for r in rows: line(r[0], r[1], *map(float, r[2:]))
k = [r for r in rows if r[0] == "ml-100k"]
groups = []
if k:
    mean = [sum(float(r[i]) for r in k) / len(k) for i in (2, 3, 4)]
    line("ml-100k", "mean u1-u5", *mean)
    groups.append(("ml-100k (mean)", mean))
groups += [(r[0], list(map(float, r[2:]))) for r in rows if r[0] != "ml-100k"]
for name, (f, c, b) in groups:
    ok = f <= 1.01 * c and f <= 0.98 * b and c <= 0.98 * b
    print("target %s: federated within 1%% of centralized, both >= 2%% below bias: %s" % (name, "MET" if ok else "NOT MET"))
PY
fi

if [[ $parts == *B* ]]; then
    echo "## B. implicit, leave-one-out with 99 negatives, bpr and neumf with their defaults"
    rows=()
    run bprf100k --data "$DATA/ml-100k-loo" --model bpr
    run bprc100k --data "$DATA/ml-100k-loo" --model bpr --centralized
    run ncff100k --data "$DATA/ml-100k-loo" --model neumf
    run ncfc100k --data "$DATA/ml-100k-loo" --model neumf --centralized
    rows+=("ml-100k-loo $(summary bprf100k hr@10) $(summary bprc100k hr@10) $(summary bprc100k baseline:hr@10) $(summary ncff100k hr@10) $(summary ncfc100k hr@10)")
    if [ -f "$ML1M" ]; then
        run bprf1m --data "$ML1M" --implicit --model bpr
        run bprc1m --data "$ML1M" --implicit --model bpr --centralized
        if [ "${FULL:-0}" = 1 ]; then
            run ncff1m --data "$ML1M" --implicit --model neumf
            run ncfc1m --data "$ML1M" --implicit --model neumf --centralized
            nf=$(summary ncff1m hr@10) nc=$(summary ncfc1m hr@10)
        else
            nf=nan nc=nan
        fi
        rows+=("ml-1m-partial $(summary bprf1m hr@10) $(summary bprc1m hr@10) $(summary bprc1m baseline:hr@10) $nf $nc")
    fi
    printf '%s\n' "${rows[@]}" >"$tmp/rowsB"
    python3 - "$tmp/rowsB" <<'PY'
import sys, math
print("%-14s %8s %8s %8s %10s %10s   (HR@10)" % ("data", "bpr fed", "bpr cen", "pop", "neumf fed", "neumf cen"))
for l in open(sys.argv[1]):
    if not l.strip(): continue
    d, *v = l.split(); bf, bc, p, nf, nc = map(float, v)
    print("%-14s %8.4f %8.4f %8.4f %10.4f %10.4f" % (d, bf, bc, p, nf, nc))
    ok = bf >= bc - 0.03 and bf >= p + 0.05
    print("target %s: federated bpr within 0.03 of centralized and >= pop + 0.05: %s" % (d, "MET" if ok else "NOT MET"))
    if not math.isnan(nf):
        print("target %s: federated neumf >= centralized neumf: %s" % (d, "MET" if nf >= nc else "NOT MET"))
PY
fi

if [[ $parts == *C* ]]; then
    echo "## C. speed against Surprise's SVD and implicit's BPR"
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import surprise, implicit' 2>/dev/null; then
        echo "(making the reference venv $VENV: pip install scikit-surprise implicit)"
        { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "numpy<2" scikit-surprise implicit; } >"$tmp/pip.log" 2>&1 ||
            { echo "(the venv could not be made: part C skipped; see pip's log below)"; tail -5 "$tmp/pip.log"; exit 0; }
    fi
    U1=$DATA/ml-100k/u1
    # three rounds, each fedrec then Surprise back to back; the ratio of each round is
    # fedrec's median epoch against Surprise's mean epoch, and the median ratio is the figure
    # (the machines are shared: a neighbour's load moves single runs by 50%)
    cat >"$tmp/svd.py" <<'PY'
import sys, time
from surprise import SVD, Dataset, Reader, accuracy
r = Reader(line_format="user item rating timestamp", sep="\t")
tr = Dataset.load_from_file(sys.argv[1], reader=r).build_full_trainset()
te = [l.split("\t")[:3] for l in open(sys.argv[2])]
te = [(u, i, float(x)) for u, i, x in te]
algo = SVD(random_state=1)
t = time.perf_counter(); algo.fit(tr); s = time.perf_counter() - t
print(s / algo.n_epochs, accuracy.rmse(algo.test(te), verbose=False))
PY
    : >"$tmp/mfratios"
    : >"$tmp/mfbefore"
    # fedrec on one thread, and on two (its default on this machine: the second builds the
    # next epoch's examples); Surprise's SVD is single-threaded
    for rep in 1 2 3; do
        if [ -n "${FEDREC_BIN_BEFORE:-}" ]; then
            for t in 1 2; do
                echo "+ (before: $FEDREC_BIN_BEFORE) fedrec train --data $U1.base --test $U1.test --model mf --centralized --threads $t"
                "$FEDREC_BIN_BEFORE" train --data "$U1.base" --test "$U1.test" --model mf --centralized --threads $t \
                    --quiet --eval-every 0 --metrics-out "$tmp/mfbefore$t.jsonl" >/dev/null
            done
            echo "$(summary mfbefore1 median_step_seconds) $(summary mfbefore2 median_step_seconds) $(summary mfbefore1 rmse)" >>"$tmp/mfbefore"
        fi
        for t in 1 2; do run mfspeed$t --data "$U1.base" --test "$U1.test" --model mf --centralized --threads $t; done
        echo "+ surprise SVD (its defaults: 100 factors, 20 epochs) on u1"
        read -r svd_s svd_rmse < <("$VENV/bin/python" "$tmp/svd.py" "$U1.base" "$U1.test")
        echo "$(summary mfspeed1 median_step_seconds) $(summary mfspeed2 median_step_seconds) $(summary mfspeed1 rmse) $svd_s $svd_rmse" >>"$tmp/mfratios"
    done
    python3 - "$tmp/mfratios" "$tmp/mfbefore" <<'PY'
import sys, statistics
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
before = [list(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
for k, (f1, f2, fr, s, sr) in enumerate(rows, 1):
    print("centralized mf on u1, round %d: fedrec %.1f ms/epoch on 1 thread, %.1f on 2 (medians), rmse %.4f; surprise SVD %.1f ms/epoch rmse %.4f; %.1fx and %.1fx" % (k, f1 * 1000, f2 * 1000, fr, s * 1000, sr, s / f1, s / f2))
    if before:
        b1, b2, br = before[k - 1]
        print("  before, the same round: %.1f ms/epoch on 1 thread, %.1f on 2, rmse %.4f; %.1fx and %.1fx" % (b1 * 1000, b2 * 1000, br, s / b1, s / b2))
for name, i in (("1 thread", 0), ("2 threads", 1)):
    ratio = statistics.median(r[3] / r[i] for r in rows)
    ok = ratio >= 5 and all(r[2] <= r[4] for r in rows)
    print("fedrec on %s: median ratio %.1fx; target >= 5x faster per epoch at equal or better rmse: %s" % (name, ratio, "MET" if ok else "NOT MET"))
    if before:
        print("  before, on %s: median ratio %.1fx" % (name, statistics.median(r[3] / b[i] for r, b in zip(rows, before))))
PY
    L=$DATA/ml-100k-loo/train.rating
    npos=$(wc -l <"$L")
    negs=4 # the centralized bpr preset's sampled negatives per positive
    cat >"$tmp/imp.py" <<'PY'
import sys, time, numpy as np, scipy.sparse as sp
from implicit.cpu.bpr import BayesianPersonalizedRanking as BPR
rows = [l.split("\t") for l in open(sys.argv[1])]
u = np.array([int(r[0]) for r in rows]); i = np.array([int(r[1]) for r in rows])
m = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)))
out = []
for th in (1, 2):
    model = BPR(factors=32, iterations=20, num_threads=th, random_state=1)
    t = time.perf_counter(); model.fit(m, show_progress=False); s = time.perf_counter() - t
    out.append(s / 20 / m.nnz)
print(*out)
PY
    # three rounds as for mf: per sampled (user, positive, negative) triple, fedrec's median
    # epoch (4 negatives a positive: 4 triples) against implicit's mean iteration (1 triple
    # a positive), 32 factors both
    : >"$tmp/bprratios"
    for rep in 1 2 3; do
        for t in 1 2; do run bprspeed$t --data "$L" --model bpr --centralized --threads $t --epochs 10; done
        echo "+ implicit BPR (32 factors, 20 iterations, 1 and 2 threads) on $L"
        echo "$(summary bprspeed1 median_step_seconds) $(summary bprspeed2 median_step_seconds) $("$VENV/bin/python" "$tmp/imp.py" "$L")" >>"$tmp/bprratios"
    done
    python3 - "$tmp/bprratios" "$npos" "$negs" <<'PY'
import sys, statistics
n = int(sys.argv[2]) * int(sys.argv[3])
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
for k, (f1, f2, i1, i2) in enumerate(rows, 1):
    print("centralized bpr, round %d: fedrec %.0f ns per sampled triple on 1 thread, %.0f on 2; implicit %.0f and %.0f" % (k, f1 / n * 1e9, f2 / n * 1e9, i1 * 1e9, i2 * 1e9))
for name, fi, ii in (("1 thread", 0, 2), ("2 threads", 1, 3)):
    ratio = statistics.median(r[ii] / (r[fi] / n) for r in rows)
    print("%s: fedrec %.2fx implicit's speed (median); target at least as fast: %s" % (name, ratio, "MET" if ratio >= 1 else "NOT MET"))
PY
fi
