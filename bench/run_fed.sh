#!/bin/sh
# Federated training benchmark, fedrec beside the PyTorch anchor, in one run:
#   1. ml-100k-loo, neumf, all 943 clients per round, E=1, B=32, Adam 1e-3 (the anchor's
#      settings): seconds per round for fedrec and for shared/anchors/torch_fedavg_ncf.py,
#      their ratio (target >= 100x), HR@10 / NDCG@10 per round;
#   2. ml-100k u1.base/u1.test, mf with private user factors, FedAvg with server lr 300
#      (the anchor's g=300 run): RMSE per round (target <= 0.93).
# Usage: bench/run_fed.sh [ROUNDS_NCF=3] [ROUNDS_MF=100]   (from the project root, after a build)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${FEDREC_DATA:-$ROOT/../shared/data}
ANCHORS=${FEDREC_ANCHORS:-$ROOT/../shared/anchors}
BIN=${FEDREC_BENCH_FED:-$ROOT/build/bench_fed}
RN=${1:-3}
RM=${2:-100}
if [ ! -d "$DATA/ml-100k-loo" ] || [ ! -d "$DATA/ml-100k" ]; then
    echo "run_fed.sh: $DATA/ml-100k-loo or $DATA/ml-100k is absent: nothing to measure (skipped)"
    exit 0
fi
[ -x "$BIN" ] || { echo "run_fed.sh: $BIN not built (cmake --build build)"; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "== $(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== 1. neumf on ml-100k-loo, 943 clients/round, E=1 B=32 adam 1e-3, $RN rounds"
"$BIN" --ncf "$DATA/ml-100k-loo" --model neumf --rounds "$RN" --threads 2 | tee "$OUT/fedrec_ncf.jsonl"
if [ -x /usr/bin/python3 ] && [ -f "$ANCHORS/torch_fedavg_ncf.py" ]; then
    /usr/bin/python3 "$ANCHORS/torch_fedavg_ncf.py" --data "$DATA/ml-100k-loo" --mode fed --rounds "$RN" \
        | tee "$OUT/torch_ncf.jsonl"
    /usr/bin/python3 - "$OUT/fedrec_ncf.jsonl" "$OUT/torch_ncf.jsonl" <<'PY'
import json, sys
f = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"round"')]
t = [json.loads(l) for l in open(sys.argv[2]) if l.startswith('{"round"') and json.loads(l)["round"] > 0]
fs = sum(r["seconds"] for r in f) / len(f)
ts = sum(r["round_s"] + r["eval_s"] for r in t) / len(t)
print("round  fedrec: s  hr@10  ndcg@10 | torch: s  hr@10  ndcg@10")
for a, b in zip(f, t):
    print(f'{a["round"]:5d}  {a["seconds"]:8.3f}  {a["hr@10"]:.4f}  {a["ndcg@10"]:.4f} | {b["round_s"] + b["eval_s"]:7.3f}  {b["hr10"]:.4f}  {b["ndcg10"]:.4f}')
print(f"mean s/round: fedrec {fs:.3f}, torch {ts:.3f}: fedrec is {ts / fs:.1f}x faster (target >= 100x)")
PY
else
    echo "(python3 or the anchor script is missing: no torch comparison)"
fi

echo "== 2. mf on ml-100k u1.base/u1.test, private user factors, fedavg server lr 300, $RM rounds"
"$BIN" --train "$DATA/ml-100k/u1.base" --test "$DATA/ml-100k/u1.test" --model mf --rounds "$RM" --threads 2 \
    --strategy fedavg --server-lr 300 > "$OUT/fedrec_mf.jsonl"
/usr/bin/python3 - "$OUT/fedrec_mf.jsonl" <<'PY' || tail -3 "$OUT/fedrec_mf.jsonl"
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
b = min(rs, key=lambda r: r["rmse"])
print(f'mf: best RMSE {b["rmse"]:.4f} / MAE {b["mae"]:.4f} at round {b["round"]}; round {rs[-1]["round"]}: '
      f'{rs[-1]["rmse"]:.4f}; mean {sum(r["seconds"] for r in rs) / len(rs):.3f} s/round (target RMSE <= 0.93)')
PY
