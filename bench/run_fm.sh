#!/usr/bin/env bash
# fedrec's fm (centralized, the preset) side by side with PyPI RecBole 1.2.1's context-aware
# FM (PyTorch) on one split (ml-100k-loo: train.rating, test.rating, test.negative with 99
# negatives) and one feature set (bench/hybrid_features.py: age bucket, gender, occupation;
# genres, year).
#   bench/run_fm.sh [BUILD_DIR] [DATA_DIR]     (defaults: build, ../shared/data)
#   RB_RUNS='--dim 10;--dim 32 --neg 4' bench/run_fm.sh ...   RecBole runs (bench/recbole_fm.py options),
#       ';' between runs. The default: RecBole's defaults (dim 10), and the best of 9 settings on the
#       validation cut (NDCG@10; its defaults and 8 others of dim 10/32/64, lr 0.001/0.003/0.01, 1 or 4
#       negatives: docs/ARCHITECTURE.md)
# Needs a venv with recbole 1.2.1 and torch (FEDREC_REF_VENV, default ~/.cache/fedrec-ref-venv).
# RecBole: its FM with its defaults (embedding 10, Adam 0.001, batch 2048, BCE with one uniform
# negative a pair), early stopping on a validation cut of train.rating (each user's last
# training row, 99 negatives; never the test), the best epoch's model scored on fedrec's test
# candidates, and a refit on all of train.rating for that many epochs scored too
# (bench/recbole_fm.py). fedrec: `fedrec train --model fm --centralized`, the preset (25
# epochs chosen on a validation cut of train.rating), one thread.
# Columns, computed as fedrec's (src/eval/eval.c): hr@10, ndcg@10, auc of the test item against
# its user's 99 negatives (a tie counts half); precision@10 and auc over the full catalogue
# (the user's training items excluded); CPU seconds per epoch of training alone, one thread
# each: fedrec (user+sys of the preset's 25 epochs - of 1 epoch) / 24 (/usr/bin/time), RecBole
# time.process_time of its training passes (torch --threads 1). Ends with the ratios, and both
# tools' HR@10 / NDCG@10 on the validation cut RecBole stops on (fedrec's preset trained on it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/hybrid_env.sh" "$@" # build, data, venv, bin, loo, tmp, F
echo "data: $loo ($(wc -l <"$loo/train.rating") training rows), features: $(cut -f2 "$tmp/feat/users.tsv" | tr ' ' '\n' | sort -u | wc -l) user, $(cut -f2 "$tmp/feat/items.tsv" | tr ' ' '\n' | sort -u | wc -l) item"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
num() { grep -o "\"$2\": *[-0-9.e]*" "$1" | tail -1 | cut -d: -f2 | tr -d " "; }
row() { printf "%-56s %7.4f %8.4f %7.4f %9.4f %9.4f %9.4f %7s\n" "$@"; }
printf "%-56s %7s %8s %7s %9s %9s %9s %7s\n" "run" "hr@10" "ndcg@10" "auc" "prec@10f" "auc_full" "cpu s/ep" "epochs"

# fedrec: the preset, one thread; CPU of 25 epochs less 1 epoch
cpu() { /usr/bin/time -f "%U %S" "$bin" train --data "$loo" "${F[@]}" --model fm --centralized --threads 1 \
    --eval-every 0 --quiet "$@" 2>&1 >/dev/null | tail -1 | awk '{ print $1 + $2 }'; }
c1=$(cpu --epochs 1)
cn=$(cpu --out "$tmp/fm.fr")
n=$(grep -o '"epoch": *[0-9]*' <("$bin" eval --model "$tmp/fm.fr" --json) | head -1 | grep -o '[0-9]*$' || true)
n=${n:-25}
"$bin" eval --model "$tmp/fm.fr" --json >"$tmp/fm.s.json"
"$bin" eval --model "$tmp/fm.fr" --data "$loo/train.rating" --test "$loo/test.rating" --json >"$tmp/fm.f.json"
fsec=$(awk -v a="$c1" -v b="$cn" -v n="$n" 'BEGIN { printf "%.4f", (b - a) / (n - 1) }')
row "fedrec fm central (preset, 1 thread)" "$(num "$tmp/fm.s.json" 'hr@10')" "$(num "$tmp/fm.s.json" 'ndcg@10')" \
    "$(num "$tmp/fm.s.json" auc)" "$(num "$tmp/fm.f.json" 'precision@10_full')" "$(num "$tmp/fm.f.json" auc_full)" "$fsec" "$n"

if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import recbole, torch' 2>/dev/null; }; then
    echo "RecBole: not installed in $venv (pip install recbole==1.2.1 torch): no reference row"
    exit 0
fi
IFS=';' read -r -a runs <<<"${RB_RUNS:---dim 10;--dim 32 --neg 4}"
k=0
for args in "${runs[@]}"; do
    k=$((k + 1))
    # shellcheck disable=SC2086
    OPENBLAS_CORETYPE=Haswell "$venv/bin/python" "$here/recbole_fm.py" "$loo" "$tmp/feat" --threads 1 --refit \
        --work "$tmp/rb$k" $args >"$tmp/rb$k.json" 2>"$tmp/rb$k.err" || { tail -5 "$tmp/rb$k.err"; exit 1; }
    "$venv/bin/python" - "$tmp/rb$k.json" "$fsec" <<'PY'
import json, sys
r, fsec = json.load(open(sys.argv[1])), float(sys.argv[2])
def row(name, m, ep):
    print("%-56s %7.4f %8.4f %7.4f %9.4f %9.4f %9.4f %7s" % (name, m["hr@10"], m["ndcg@10"], m["auc"],
          m["precision@10_full"], m["auc_full"], m["cpu_seconds_per_epoch"], ep))
tag = "dim %d, lr %g, %d neg" % (r["dim"], r["lr"], r["neg"])
row("RecBole FM best on valid (%s)" % tag, r, "%d/%d" % (r["best_epoch"], r["epochs_run"]))
row("RecBole FM refit on all train (%s)" % tag, r["refit"], r["refit"]["epochs"])
PY
done
# speed and the validation cut
"$venv/bin/python" "$here/recbole_fm.py" "$loo" "$tmp/feat" --write-valid "$tmp/valid"
"$bin" train --data "$tmp/valid" "${F[@]}" --model fm --centralized --eval-every 0 --quiet --out "$tmp/v.fr" >/dev/null
"$bin" eval --model "$tmp/v.fr" --json >"$tmp/v.json"
"$venv/bin/python" - "$fsec" "$tmp/v.json" "$tmp"/rb[0-9]*.json <<'PY'
import json, sys
fsec, v = float(sys.argv[1]), json.load(open(sys.argv[2]))
print("validation cut (each user's last train.rating row, 99 negatives): fedrec fm (preset) HR@10 %.4f NDCG@10 %.4f"
      % (v["hr@10"], v["ndcg@10"]))
for p in sys.argv[3:]:
    r = json.load(open(p))
    print("  RecBole FM dim %d lr %g neg %d: best HR@10 %.4f NDCG@10 %.4f (epoch %d);"
          " speed: fedrec fm %.1fx faster per epoch (CPU, one thread; %.1fx the refit's epochs)"
          % (r["dim"], r["lr"], r["neg"], r["valid"]["hr@10"], r["valid"]["ndcg@10"], r["best_epoch"],
             r["cpu_seconds_per_epoch"] / fsec, r["refit"]["cpu_seconds_per_epoch"] / fsec))
PY
