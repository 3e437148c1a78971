#!/bin/sh
# Ratings-load benchmark: fedrec's fr_dataset_load against pandas.read_csv, side by side.
#   bench/run_load.sh [BUILD_DIR]     (default: build; run from the repository root)
# 1. creates a 25,000,000-rating ml-25m-style CSV in ${TMPDIR:-/tmp} if absent
#    (bench_load --write-csv, deterministic);
# 2. loads ../shared/data/ml-100k/u.data (if present) and the 25M CSV with both tools
#    and prints MB/s, ratings/s, peak RSS growth, and the fedrec/pandas ratios.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BENCH="$BUILD/bench_load"
PY=/usr/bin/python3
[ -x "$BENCH" ] || { echo "run_load.sh: $BENCH not built (cmake --build $BUILD)" >&2; exit 1; }
TMP=${TMPDIR:-/tmp}
CSV="$TMP/fedrec-bench-ml25m-ratings.csv"
if [ ! -s "$CSV" ]; then
    echo "writing $CSV (25M ratings)..."
    "$BENCH" --write-csv "$CSV.part" 25000000 && mv "$CSV.part" "$CSV"
fi

# pandas: best of N reads; JSON like bench_load's (peak RSS growth from ru_maxrss).
pandas() { # file sep header reps
    "$PY" - "$@" <<'PYEOF'
import sys, time, resource, json, os
import pandas as pd
path, header, reps = sys.argv[1], sys.argv[3] == "1", int(sys.argv[4])
sep = sys.argv[2].encode().decode("unicode_escape")  # "\\t" -> tab
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
best = 1e300
for _ in range(reps):
    t0 = time.perf_counter()
    if header:
        df = pd.read_csv(path, sep=sep)
    else:
        df = pd.read_csv(path, sep=sep, header=None, names=["user", "item", "rating", "timestamp"])
    dt = time.perf_counter() - t0
    n = len(df)
    del df
    best = min(best, dt)
hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
size = os.path.getsize(path)
print(json.dumps({"file": path, "reps": reps, "ratings": n, "best_s": round(best, 4),
                  "mb_per_s": round(size / 1e6 / best, 1), "ratings_per_s": round(n / best),
                  "peak_rss_growth_per_rating": round((hwm - rss0) / n, 2)}))
PYEOF
}

field() { # json key
    sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" <<EOF2 | head -1
$1
EOF2
}

compare() { # label file sep header reps
    echo "== $1: $2"
    F=$("$BENCH" "$2" "$5")
    P=$(pandas "$2" "$3" "$4" "$5")
    echo "fedrec: $F"
    echo "pandas: $P"
    awk -v a="$(field "$F" ratings_per_s)" -v b="$(field "$P" ratings_per_s)" \
        -v ra="$(field "$F" peak_rss_growth_per_rating)" -v rb="$(field "$P" peak_rss_growth_per_rating)" \
        'BEGIN { printf "fedrec/pandas throughput: %.2fx   peak RSS growth per rating: fedrec %.1f B, pandas %.1f B\n", a / b, ra, rb }'
}

U="../shared/data/ml-100k/u.data"
if [ -f "$U" ]; then
    compare "MovieLens 100K u.data" "$U" '\t' 0 20
else
    echo "== ../shared/data is absent: skipping the u.data comparison"
fi
compare "25M ml-25m-style ratings.csv" "$CSV" ',' 1 2
