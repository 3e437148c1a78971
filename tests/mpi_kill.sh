#!/usr/bin/env bash
# A rank killed in the middle of an mpi run (SIGKILL, as a machine that goes away) ends
# the job with a message naming it, not a hang; --resume then goes on from the last
# completed round (the checkpoint is written after every round) and ends with the model
# the simulator makes in one go.
set -euo pipefail
bin="$1"
mpirun="${2:-mpirun}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
job=
cleanup() { [ -n "$job" ] && kill -9 "$job" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "mpi_kill: FAIL: $*" >&2; exit 1; }
"$bin" data generate --users 3000 --items 400 --interactions 60000 --seed 2 --out "$tmp/r.tsv" >/dev/null
base=(train --data "$tmp/r.tsv" --model mf --dim 16 --eval-every 0 --quiet --threads 1 --seed 3 --out "$tmp/m.fr")
"$mpirun" --oversubscribe -np 2 "$bin" "${base[@]}" --runtime mpi --rounds 100000 --checkpoint-every 1 \
    >"$tmp/out" 2>"$tmp/err" &
job=$!
# rank 1: the child of this mpirun whose environment says so
rank1=
for _ in $(seq 600); do
  if [ -z "$rank1" ]; then
    for p in $(cat /proc/$job/task/*/children 2>/dev/null); do
      if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then rank1=$p; fi
    done
  fi
  [ -n "$rank1" ] && [ -s "$tmp/m.fr.ckpt" ] && break
  sleep 0.1
done
[ -n "$rank1" ] || fail "no rank 1 found under mpirun $job"
[ -s "$tmp/m.fr.ckpt" ] || fail "no checkpoint after 60 s"
sleep 0.5
kill -9 "$rank1"
# the job must end by itself (a hang would be a failure): up to 120 s on a loaded machine
for _ in $(seq 1200); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$job" 2>/dev/null; then fail "the job still runs 120 s after rank 1 was killed (a hang)"; fi
rc=0; wait "$job" || rc=$?
job=
[ "$rc" -ne 0 ] || fail "the job exited 0 after a rank was killed"
grep -qi "rank 1" "$tmp/err" || fail "the message does not name rank 1: $(cat "$tmp/err")"
# the round the checkpoint holds (FRCKPT header, then the controller's state: its rounds)
k=$(python3 -c "
import struct,sys
d=open(sys.argv[1],'rb').read()
assert d[:6]==b'FRCKPT'
c,=struct.unpack_from('<I',d,36)
print(struct.unpack_from('<I',d,40+c+4)[0])" "$tmp/m.fr.ckpt")
[ "$k" -ge 1 ] || fail "the checkpoint holds round $k"
end=$((k + 2))
"$mpirun" --oversubscribe -np 2 "$bin" "${base[@]}" --runtime mpi --rounds "$end" --resume >/dev/null 2>"$tmp/err2" \
  || fail "resume: $(cat "$tmp/err2")"
"$bin" train --data "$tmp/r.tsv" --model mf --dim 16 --eval-every 0 --quiet --threads 1 --seed 3 --rounds "$end" \
  --out "$tmp/sim.fr" >/dev/null 2>"$tmp/err3" || fail "sim: $(cat "$tmp/err3")"
cmp -s "$tmp/m.fr" "$tmp/sim.fr" || fail "resumed at round $k, the model after round $end differs from the simulator's"
echo "mpi_kill: ok (killed after round $k; mpirun said: $(grep -i -m1 'rank 1' "$tmp/err" | head -c 200))"
