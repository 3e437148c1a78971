#!/bin/sh
# The Python package (python/) against the command line and against Surprise:
#   1. overhead: the same federated run (ml-100k-loo, neumf, ROUNDS rounds) from `fedrec
#      train` and from fedrec.train(), PAIRS interleaved pairs: wall time per round and the
#      per-round callback's own cost (target: the Python path adds <= 5% to a round);
#   2. ml-100k u1.base/u1.test: fedrec from Python (centralized and federated mf, their
#      defaults) beside Surprise's SVD (its defaults): fit time and RMSE.
# Usage: bench/run_python.sh [ROUNDS=5] [PAIRS=5] [REPEATS=3]   (after a build: build/fedrec,
# build/libfedrec_embed.so). Part 2 needs scikit-surprise in a benchmark venv (never in the
# project's dependencies); made on first use:
#   python3 -m venv --system-site-packages ~/.cache/fedrec-surprise-venv
#   ~/.cache/fedrec-surprise-venv/bin/pip install scikit-surprise
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${FEDREC_DATA:-$ROOT/../shared/data}
PY=${FEDREC_PYTHON:-/usr/bin/python3}
VENV=${FEDREC_SURPRISE_VENV:-$HOME/.cache/fedrec-surprise-venv}
R=${1:-5}
P=${2:-5}
N=${3:-3}
if [ ! -d "$DATA/ml-100k-loo" ] || [ ! -d "$DATA/ml-100k" ]; then
    echo "run_python.sh: $DATA/ml-100k-loo or $DATA/ml-100k is absent: nothing to measure (skipped)"
    exit 0
fi
[ -x "$ROOT/build/fedrec" ] && [ -f "$ROOT/build/libfedrec_embed.so" ] || { echo "run_python.sh: build first (cmake --build build)"; exit 1; }
OUT=$ROOT/build/python-bench
rm -rf "$OUT"
(cd "$ROOT/python" && FEDREC_EMBED_LIB="$ROOT/build/libfedrec_embed.so" "$PY" setup.py -q build --build-base "$OUT/build" \
    --build-lib "$OUT/lib" >/dev/null 2>&1)
rm -rf "$ROOT/python/fedrec.egg-info"
echo "== 1. the Python path's overhead: neumf on ml-100k-loo, $R rounds, $P pairs (load: $(cut -d' ' -f1-3 /proc/loadavg))"
PYTHONPATH="$OUT/lib" "$PY" "$ROOT/bench/python_overhead.py" "$ROOT/build/fedrec" "$DATA/ml-100k-loo" "$R" "$P" neumf
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv --system-site-packages "$VENV" && "$VENV/bin/pip" install -q scikit-surprise
fi
echo "== 2. ml-100k u1: fedrec from Python beside Surprise's SVD, best of $N fits (load: $(cut -d' ' -f1-3 /proc/loadavg))"
PYTHONPATH="$OUT/lib" "$VENV/bin/python" "$ROOT/bench/python_surprise.py" "$DATA/ml-100k" "$N"
