#!/usr/bin/env bash
# Centralized training, fedrec against the PyTorch anchors, side by side in one run:
#  (a) biased MF on ml-100k u1.base/u1.test: per-epoch seconds and RMSE of both;
#  (b) NeuMF on ml-100k-loo (Adam 0.001, batch 256, 4 negatives, 20 epochs): HR@10 and
#      NDCG@10 per epoch, seconds per epoch of both and the speed ratio.
# Run from the repository root after building (build/fedrec); ../shared beside the repo.
# Usage: bench/run_central.sh [MF_EPOCHS (default 30)] [NCF_EPOCHS (default 20)]
# Seconds are training time per epoch (evaluation excluded) for both systems.
set -euo pipefail
shared=../shared
bin=${FEDREC_BIN:-build/fedrec}
mf_epochs=${1:-30}
ncf_epochs=${2:-20}
if [ ! -d "$shared/data" ]; then
    echo "run_central: $shared/data is absent; nothing to benchmark (see DESIGN.md, 'Reference data')"
    exit 0
fi
[ -x "$bin" ] || { echo "run_central: $bin not found; build first" >&2; exit 1; }
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "# $(date -u +%FT%TZ)  $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "## (a) MF on ml-100k u1.base/u1.test, $mf_epochs epochs"
echo "+ $bin train --centralized --model mf --data $shared/data/ml-100k/u1.base --test $shared/data/ml-100k/u1.test --epochs $mf_epochs"
"$bin" train --centralized --model mf --data "$shared/data/ml-100k/u1.base" --test "$shared/data/ml-100k/u1.test" \
    --epochs "$mf_epochs" --quiet --metrics-out "$tmp/mf_c.jsonl"
echo "+ $py $shared/anchors/torch_fedavg_mf.py --mode central --epochs $mf_epochs"
"$py" "$shared/anchors/torch_fedavg_mf.py" --mode central --epochs "$mf_epochs" >"$tmp/mf_t.jsonl"

echo "## (b) NeuMF on ml-100k-loo, $ncf_epochs epochs"
echo "+ $bin train --centralized --model neumf --data $shared/data/ml-100k-loo --epochs $ncf_epochs"
"$bin" train --centralized --model neumf --data "$shared/data/ml-100k-loo" --epochs "$ncf_epochs" --quiet \
    --metrics-out "$tmp/ncf_c.jsonl"
echo "+ $py $shared/anchors/torch_fedavg_ncf.py --mode central --epochs $ncf_epochs"
"$py" "$shared/anchors/torch_fedavg_ncf.py" --mode central --epochs "$ncf_epochs" >"$tmp/ncf_t.jsonl"

"$py" - "$tmp" <<'PY'
import json, sys, statistics as st
d = sys.argv[1]
def rows(name, key):
    out = {}
    for line in open(f"{d}/{name}"):
        o = json.loads(line)
        if key in o and o[key] > 0: out[o[key]] = o
    return out
def summary(label, c, t, cmet, tmet, best_low):
    eps = sorted(set(c) & set(t))
    print(f"\n{label}")
    hdr = "epoch  " + "  ".join(f"fedrec {m:>8}" for m in cmet) + "  fedrec s  " + \
          "  ".join(f"torch {m:>8}" for m in tmet) + "  torch s"
    print(hdr)
    for e in eps:
        print(f"{e:5d}  " + "  ".join(f"{c[e][m]:15.4f}" for m in cmet) + f"  {c[e]['seconds']:8.3f}  " +
              "  ".join(f"{t[e][m]:14.4f}" for m in tmet) + f"  {t[e]['train_s']:7.3f}")
    cs = [c[e]["seconds"] for e in eps]; ts = [t[e]["train_s"] for e in eps]
    pick = min if best_low else max
    cb = pick(eps, key=lambda e: c[e][cmet[0]]); tb = pick(eps, key=lambda e: t[e][tmet[0]])
    print(f"fedrec: {st.mean(cs):.3f} s/epoch mean (median {st.median(cs):.3f}, range {min(cs):.3f}-{max(cs):.3f}); "
          f"best {cmet[0]} {c[cb][cmet[0]]:.4f} at epoch {cb}" +
          (f", {cmet[1]} {c[cb][cmet[1]]:.4f}" if len(cmet) > 1 else ""))
    print(f"torch:  {st.mean(ts):.3f} s/epoch mean (median {st.median(ts):.3f}, range {min(ts):.3f}-{max(ts):.3f}); "
          f"best {tmet[0]} {t[tb][tmet[0]]:.4f} at epoch {tb}" +
          (f", {tmet[1]} {t[tb][tmet[1]]:.4f}" if len(tmet) > 1 else ""))
    print(f"speed ratio (torch s/epoch / fedrec s/epoch, means): {st.mean(ts) / st.mean(cs):.1f}x")
summary("(a) MF, u1.base/u1.test", rows("mf_c.jsonl", "epoch"), rows("mf_t.jsonl", "round"),
        ["rmse", "mae"], ["rmse", "mae"], True)
summary("(b) NeuMF, ml-100k-loo", rows("ncf_c.jsonl", "epoch"), rows("ncf_t.jsonl", "round"),
        ["hr@10", "ndcg@10"], ["hr10", "ndcg10"], False)
PY
