#!/usr/bin/env bash
# Builds fedrec and runs its whole test suite with ctest.
#   scripts/test.sh              release build in build/, warnings are errors
#   scripts/test.sh --sanitize   AddressSanitizer + UBSan build in build-asan/ (without MPI)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
flags=(-DCMAKE_BUILD_TYPE=Release -DFEDREC_WERROR=ON)
if [[ "${1:-}" == "--sanitize" ]]; then
  dir=build-asan
  # without Open MPI: the release build tests the mpi runtime, this one that a build
  # without it says so (tests/mpi_unavailable.sh); MPI's own allocations would also need
  # their own leak suppressions
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DFEDREC_WERROR=ON -DFEDREC_SANITIZE=ON -DFEDREC_BENCH=OFF -DFEDREC_MPI=OFF)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
fi
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)"
