#!/usr/bin/env bash
# CPU seconds per epoch, fedrec lightfm/fm centralized (the preset, one thread) against
# PyPI LightFM (one thread), on ml-100k-loo with bench/hybrid_features.py's features:
# less noisy than run_hybrid.sh's wall-clock seconds on a loaded machine.
#   bench/hybrid_cpu.sh [BUILD_DIR] [DATA_DIR]     (R=rounds, default 2; N=epochs, default 24)
#   BASE=OTHER_BUILD_DIR bench/hybrid_cpu.sh ...     also OTHER_BUILD_DIR's fedrec (e.g. main's),
#                                                  alternated with this one and LightFM
# fedrec: (user+sys of N+1 epochs - of 1 epoch) / N, /usr/bin/time (10 ms resolution);
# LightFM: process_time over N+1 fit_partial calls / (N+1) (bench/hybrid_cpu_ref.py).
# The tools alternate R times.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
R=${R:-2}
N=${N:-24}
. "$here/hybrid_env.sh" "$@" # build, data, venv, bin, loo, tmp, F
cpu() { /usr/bin/time -f "%U %S" "$bin" train --data "$loo" "${F[@]}" --centralized --eval-every 0 --quiet \
    --threads 1 "$@" 2>&1 >/dev/null | tail -1 | awk '{ print $1 + $2 }'; }
per_epoch() { local a b; a=$(cpu --epochs 1 "$@"); b=$(cpu --epochs $((N + 1)) "$@"); awk -v a="$a" -v b="$b" -v n="$N" 'BEGIN { printf "%.4f", (b - a) / n }'; }
lfm() { "$venv/bin/python" "$here/hybrid_cpu_ref.py" "$loo" "$tmp/feat" "$1" $((N + 1)); }
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$R"); do
    if [ -n "${BASE:-}" ]; then
        bin=$BASE/fedrec
        bw=$(per_epoch --model lightfm); bb=$(per_epoch --model lightfm --warp 0)
        bin=$build/fedrec
    fi
    fw=$(per_epoch --model lightfm); fb=$(per_epoch --model lightfm --warp 0); ff=$(per_epoch --model fm)
    lw=$(lfm warp); lb=$(lfm bpr)
    awk -v r="$r" -v fw="$fw" -v fb="$fb" -v ff="$ff" -v lw="$lw" -v lb="$lb" 'BEGIN {
        printf "round %s: cpu s/epoch fedrec lightfm warp %s, bpr %s, fm %s; LightFM warp %s, bpr %s\n", r, fw, fb, ff, lw, lb
        printf "  fedrec faster: lightfm warp %.1fx, bpr %.1fx; fm %.1fx LightFM warp\n", lw / fw, lb / fb, lw / ff }'
    [ -z "${BASE:-}" ] || awk -v bw="$bw" -v bb="$bb" -v lw="$lw" -v lb="$lb" -v fw="$fw" -v fb="$fb" 'BEGIN {
        printf "  BASE fedrec lightfm warp %s, bpr %s: %.1fx, %.1fx LightFM; this build %.2fx, %.2fx less CPU than BASE\n", bw, bb, lw / bw, lb / bb, bw / fw, bb / fb }'
done
