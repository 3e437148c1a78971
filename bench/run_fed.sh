#!/bin/sh
# Federated training benchmark, fedrec beside the PyTorch anchor, in one run:
#   1. ml-100k-loo, neumf, all 943 clients per round, E=1, B=32, Adam 1e-3 (the anchor's
#      settings): seconds per round for fedrec and for shared/anchors/torch_fedavg_ncf.py,
#      their ratio (target >= 100x), HR@10 / NDCG@10 per round;
#      fedrec runs twice: with every update encoded, checksummed and decoded, and with the
#      wire off (bytes counted from the layout; the same bits, tests/test_fedavg.c), as an
#      in-process simulation needs no bytes;
#   2. ml-100k u1.base/u1.test, mf with private user factors, FedAvg with server lr 300
#      (the anchor's g=300 run): RMSE per round (target <= 0.93);
#   3. `fedrec train` with its own defaults for neumf, 50 rounds: HR@10 per round against
#      the anchor's recorded curve (shared/anchors/runs-torch/ncf_fed_adam.jsonl; target:
#      HR@10 >= 0.60 within 50 rounds, user embeddings private).
# Usage: bench/run_fed.sh [ROUNDS_NCF=5] [ROUNDS_MF=100]   (from the project root, after a build)
# FEDREC_BASE_BENCH_FED=path/to/another/bench_fed also times that build in part 1, beside
# this one in the same run (a before/after comparison: both ratios to the same torch run).
# Seconds per round are given as the mean and the median over the rounds of each system
# (round 1 carries both systems' warm-up: fedrec's first clients allocate their scratch).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${FEDREC_DATA:-$ROOT/../shared/data}
ANCHORS=${FEDREC_ANCHORS:-$ROOT/../shared/anchors}
BIN=${FEDREC_BENCH_FED:-$ROOT/build/bench_fed}
RN=${1:-5}
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
BASE=${FEDREC_BASE_BENCH_FED:-}
"$BIN" --ncf "$DATA/ml-100k-loo" --model neumf --rounds "$RN" --threads 2 | tee "$OUT/fedrec_ncf.jsonl"
[ -z "$BASE" ] || "$BASE" --ncf "$DATA/ml-100k-loo" --model neumf --rounds "$RN" --threads 2 > "$OUT/base_ncf.jsonl"
"$BIN" --ncf "$DATA/ml-100k-loo" --model neumf --rounds "$RN" --threads 2 --wire 0 | tee "$OUT/fedrec_ncf_nowire.jsonl"
[ -z "$BASE" ] || "$BASE" --ncf "$DATA/ml-100k-loo" --model neumf --rounds "$RN" --threads 2 --wire 0 \
    > "$OUT/base_ncf_nowire.jsonl"
if [ -x /usr/bin/python3 ] && [ -f "$ANCHORS/torch_fedavg_ncf.py" ]; then
    /usr/bin/python3 "$ANCHORS/torch_fedavg_ncf.py" --data "$DATA/ml-100k-loo" --mode fed --rounds "$RN" \
        | tee "$OUT/torch_ncf.jsonl"
    /usr/bin/python3 - "$OUT/fedrec_ncf.jsonl" "$OUT/torch_ncf.jsonl" "$OUT/fedrec_ncf_nowire.jsonl" \
        "$OUT/base_ncf.jsonl" "$OUT/base_ncf_nowire.jsonl" <<'PY'
import json, os, sys
f = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"round"')]
t = [json.loads(l) for l in open(sys.argv[2]) if l.startswith('{"round"') and json.loads(l)["round"] > 0]
g = [json.loads(l) for l in open(sys.argv[3]) if l.startswith('{"round"')]
import statistics
fs = sum(r["seconds"] for r in f) / len(f)
gs = sum(r["seconds"] for r in g) / len(g)
ts = sum(r["round_s"] + r["eval_s"] for r in t) / len(t)
fm = statistics.median(r["seconds"] for r in f)
gm = statistics.median(r["seconds"] for r in g)
tm = statistics.median(r["round_s"] + r["eval_s"] for r in t)
print("round  fedrec: s  hr@10  ndcg@10 | torch: s  hr@10  ndcg@10")
for a, b in zip(f, t):
    print(f'{a["round"]:5d}  {a["seconds"]:8.3f}  {a["hr@10"]:.4f}  {a["ndcg@10"]:.4f} | {b["round_s"] + b["eval_s"]:7.3f}  {b["hr10"]:.4f}  {b["ndcg10"]:.4f}')
print(f"mean s/round: fedrec {fs:.3f}, torch {ts:.3f}: fedrec is {ts / fs:.1f}x faster (target >= 100x)")
print(f"median s/round: fedrec {fm:.3f}, torch {tm:.3f}: {tm / fm:.1f}x")
print(f"with the wire off (no bytes made, as the anchor): fedrec mean {gs:.3f} s/round, {ts / gs:.1f}x; "
      f"median {gm:.3f}, {tm / gm:.1f}x")
for label, path in (("wire on", sys.argv[4]), ("wire off", sys.argv[5])):
    if os.path.exists(path) and os.path.getsize(path):
        b = [json.loads(l) for l in open(path) if l.startswith('{"round"')]
        bs = sum(r["seconds"] for r in b) / len(b)
        bm = statistics.median(r["seconds"] for r in b)
        print(f"base build ({label}): mean {bs:.3f} s/round, {ts / bs:.1f}x; median {bm:.3f}, {tm / bm:.1f}x")
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

echo "== 3. fedrec train defaults, neumf on ml-100k-loo, 50 rounds, against the anchor's recorded curve"
FEDREC=${FEDREC_BIN:-$ROOT/build/fedrec}
"$FEDREC" train --data "$DATA/ml-100k-loo" --model neumf --rounds 50 --threads 2 --quiet \
    --metrics-out "$OUT/defaults.jsonl" > /dev/null
/usr/bin/python3 - "$OUT/defaults.jsonl" "$ANCHORS/runs-torch/ncf_fed_adam.jsonl" <<'PY' || tail -3 "$OUT/defaults.jsonl"
import json, os, sys
f = [json.loads(l) for l in open(sys.argv[1])]
t = {}
if os.path.exists(sys.argv[2]):
    for l in open(sys.argv[2]):
        r = json.loads(l)
        if "round" in r and "hr10" in r: t[r["round"]] = r
print("round  fedrec hr@10 ndcg@10 | anchor (recorded) hr@10 ndcg@10")
for r in f:
    if r["round"] in (1, 2, 3, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50):
        a = t.get(r["round"])
        ta = f'{a["hr10"]:.4f}  {a["ndcg10"]:.4f}' if a else "-"
        print(f'{r["round"]:5d}  {r["hr@10"]:.4f}  {r["ndcg@10"]:.4f} | {ta}')
b = max(f, key=lambda r: r["hr@10"])
first = next((r["round"] for r in f if r["hr@10"] >= 0.60), None)
print(f'fedrec defaults: best HR@10 {b["hr@10"]:.4f} (NDCG@10 {b["ndcg@10"]:.4f}) at round {b["round"]}; '
      f'first >= 0.60 at round {first}; mean {sum(r["seconds"] for r in f) / len(f):.3f} s/round (target >= 0.60 within 50)')
PY
