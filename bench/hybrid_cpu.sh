#!/usr/bin/env bash
# CPU seconds per epoch, fedrec lightfm/fm centralized (the preset, one thread) against
# PyPI LightFM (one thread), on ml-100k-loo with bench/hybrid_features.py's features:
# less noisy than run_hybrid.sh's wall-clock seconds on a loaded machine.
#   bench/hybrid_cpu.sh [BUILD_DIR] [DATA_DIR]     (R=rounds, default 2; N=LightFM's epochs, default 24;
#                                                  NF=fedrec's, default 4N: ~1.5 s of CPU, where 24
#                                                  epochs were ~0.35 s, a few ticks of the 10 ms clock)
#   BASE=OTHER_BUILD_DIR bench/hybrid_cpu.sh ...     also OTHER_BUILD_DIR's fedrec (e.g. main's),
#                                                  alternated with this one and LightFM
# fedrec: (user+sys of NF+1 epochs - of 1 epoch) / NF, /usr/bin/time (10 ms resolution);
# LightFM: process_time over N+1 fit_partial calls / (N+1) (bench/hybrid_cpu_ref.py).
# The tools alternate R times; the last lines give each ratio's min, median and max over the
# rounds, and the ratio of each tool's least CPU over the rounds (the least disturbed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
R=${R:-2}
N=${N:-24}
NF=${NF:-$((4 * N))}
. "$here/hybrid_env.sh" "$@" # build, data, venv, bin, loo, tmp, F
cpu() { /usr/bin/time -f "%U %S" "$bin" train --data "$loo" "${F[@]}" --centralized --eval-every 0 --quiet \
    --threads 1 "$@" 2>&1 >/dev/null | tail -1 | awk '{ print $1 + $2 }'; }
per_epoch() { local a b; a=$(cpu --epochs 1 "$@"); b=$(cpu --epochs $((NF + 1)) "$@"); awk -v a="$a" -v b="$b" -v n="$NF" 'BEGIN { printf "%.4f", (b - a) / n }'; }
lfm() { "$venv/bin/python" "$here/hybrid_cpu_ref.py" "$loo" "$tmp/feat" "$1" $((N + 1)); }
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); fedrec $NF epochs, LightFM $((N + 1))"
rows=$tmp/rounds # a round's CPU s/epoch: fedrec warp, bpr, fm, LightFM warp, bpr[, BASE warp, bpr]
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
    echo "$fw $fb $ff $lw $lb ${bw:-} ${bb:-}" >>"$rows"
    [ -z "${BASE:-}" ] || awk -v bw="$bw" -v bb="$bb" -v lw="$lw" -v lb="$lb" -v fw="$fw" -v fb="$fb" 'BEGIN {
        printf "  BASE fedrec lightfm warp %s, bpr %s: %.1fx, %.1fx LightFM; this build %.2fx, %.2fx less CPU than BASE\n", bw, bb, lw / bw, lb / bb, bw / fw, bb / fb }'
done
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
# over the rounds: each ratio's min / median / max, and the ratio of the least CPUs
awk -v base="${BASE:-}" '
function sortv(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t } }
function med(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
function line(name, num, den,   a, i, lo, ln, ld) {
    ln = 1e300; ld = 1e300
    for (i = 1; i <= R; i++) { a[i] = v[i, num] / v[i, den]; if (v[i, num] < ln) ln = v[i, num]; if (v[i, den] < ld) ld = v[i, den] }
    sortv(a, R)
    printf "  %-28s min %.2fx, median %.2fx, max %.2fx; least CPU %.2fx\n", name, a[1], med(a, R), a[R], ln / ld }
{ R++; for (k = 1; k <= NF; k++) v[R, k] = $k }
END {
    printf "over %d rounds (ratio = the other tool'"'"'s CPU / fedrec'"'"'s):\n", R
    line("lightfm warp vs LightFM warp", 4, 1); line("lightfm bpr vs LightFM bpr", 5, 2); line("fm vs LightFM warp", 4, 3)
    if (base != "") { line("BASE lightfm warp vs LightFM", 4, 6); line("lightfm warp vs BASE", 6, 1) } }' "$rows"
