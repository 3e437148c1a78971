#!/bin/sh
# Client updates per second before and after, side by side in one run (the machine is
# shared: only the ratio of neighbouring lines means something). BEFORE is a bench_mpi
# built from an older commit, e.g.
#   git worktree add /tmp/fedrec-base main~N && cmake -S /tmp/fedrec-base -B /tmp/fedrec-base/build \
#       -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/fedrec-base/build --target bench_mpi
#   BEFORE=/tmp/fedrec-base/build/bench_mpi bench/run_speed.sh [CLIENTS=1000000]
# Each binary: one 1,000,000-client round (mf d=32, ~20 interactions a client, E=1, the
# fedrec preset's rule, results in memory) and a second round, on the simulator with 2
# threads, then on 2 mpi ranks of 1 thread; updates/s is clients finished per wall second
# of a round, updates_per_cpu_s per CPU-second of rank 0. Runs at nice 10.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AFTER=${AFTER:-$ROOT/build/bench_mpi}
BEFORE=${BEFORE:?set BEFORE to the older bench_mpi}
N=${1:-1000000}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common="--users $N --items 100000 --per-user 20 --dim 32 --rounds 2 --local-epochs 1"
for which in BEFORE AFTER; do
    eval bin=\$$which
    echo "== $which ($bin): sim, 2 threads"
    nice -n 10 "$bin" $common --threads 2 2>/dev/null | grep round
done
if command -v mpirun >/dev/null; then
    for which in BEFORE AFTER; do
        eval bin=\$$which
        echo "== $which ($bin): mpi, 2 ranks x 1 thread"
        nice -n 10 mpirun --oversubscribe -np 2 "$bin" $common --threads 1 --runtime mpi 2>/dev/null
    done
fi
