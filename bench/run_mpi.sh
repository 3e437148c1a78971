#!/bin/sh
# Scale of the sim and mpi runtimes on a generated population (bench/bench_mpi.c: mf d=32,
# about 20 interactions per client, the fedrec preset's client rule with E=1, full
# participation, results handed over in memory), in one run:
#   1. 1,000,000 clients, 100,000 items: one round on the simulator with 2 threads (client
#      updates per second), then on 1 rank and on 2 ranks of 1 thread each (parallel
#      efficiency = t1 / (2 t2), peak memory per rank);
#   2. with BIG=1 (needs ~10 GiB free: `free -g` first; measured peaks 5.9 GiB on rank 0,
#      3.2 GiB on rank 1, which generates only its clients' data): one round of 10,000,000
#      clients on 2 ranks (time, peak memory per rank).
# Usage: bench/run_mpi.sh [CLIENTS=1000000]   (from the project root, after a build)
# The machine is shared: each figure is one run; compare the ratios, measured side by side.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${FEDREC_BENCH_MPI:-$ROOT/build/bench_mpi}
N=${1:-1000000}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -x "$BIN" ] || { echo "run_mpi.sh: $BIN not built (cmake --build build)"; exit 1; }
command -v mpirun >/dev/null || { echo "run_mpi.sh: no mpirun (scripts/install-deps.sh)"; exit 1; }
common="--users $N --items 100000 --per-user 20 --dim 32 --rounds 1 --local-epochs 1"
echo "== 1. $N clients: the simulator, 2 threads"
"$BIN" $common --threads 2
echo "== 1. $N clients: mpi, 1 rank x 1 thread"
mpirun --oversubscribe -np 1 "$BIN" $common --threads 1 --runtime mpi
echo "== 1. $N clients: mpi, 2 ranks x 1 thread"
mpirun --oversubscribe -np 2 "$BIN" $common --threads 1 --runtime mpi
if [ "${BIG:-0}" = 1 ]; then
    echo "== 2. 10000000 clients: mpi, 2 ranks x 1 thread (free memory before: $(free -g | awk '/Mem/{print $7}') GiB)"
    mpirun --oversubscribe -np 2 "$BIN" --users 10000000 --items 100000 --per-user 20 --dim 32 --rounds 1 \
        --local-epochs 1 --threads 1 --runtime mpi
fi
