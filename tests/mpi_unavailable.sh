#!/usr/bin/env bash
# In a build without Open MPI (CMake found none, or -DFEDREC_MPI=OFF): fedrec train
# --runtime mpi says the runtime is unavailable and how to get it, exit 2, and the sim
# runtime still trains; a bad --runtime is a usage error.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "mpi_unavailable: FAIL: $*" >&2; exit 1; }
rc=0; "$bin" train --rounds 1 --runtime mpi --quiet >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] || fail "--runtime mpi: exit $rc, expected 2: $(cat "$tmp/err")"
grep -q "the mpi runtime is unavailable: this fedrec was built without Open MPI" "$tmp/err" \
  || fail "no 'unavailable' message: $(cat "$tmp/err")"
grep -q "libopenmpi-dev" "$tmp/err" || fail "the message does not say what to install: $(cat "$tmp/err")"
"$bin" train --rounds 1 --runtime sim --quiet >/dev/null 2>"$tmp/err" || fail "--runtime sim: $(cat "$tmp/err")"
rc=0; "$bin" train --rounds 1 --runtime spark --quiet >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "expected sim or mpi" "$tmp/err" || fail "--runtime spark: exit $rc: $(cat "$tmp/err")"
echo "mpi_unavailable: ok"
