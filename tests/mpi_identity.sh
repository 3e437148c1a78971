#!/usr/bin/env bash
# fedrec train --runtime mpi: the same model file, bit for bit, as the simulator with the
# same seed, for -np 1, 2 and 4 ranks, on generated data: mf (a sparse reduction: few item
# rows a round), bpr with item rows averaged over the clients that touched them (row
# weights reduced too), neumf (dense MLP layers) in IID silos; the checkpoint (every
# client's private rows, gathered to rank 0) is the simulator's too; --resume of an mpi
# run stopped at round 2 ends where the uninterrupted one does. Open MPI's variables for
# running as root in a container are set here, nobody sets them by hand.
set -euo pipefail
bin="$1"
mpirun="${2:-mpirun}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1   # 4 ranks on a 2-core machine
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "mpi_identity: FAIL: $*" >&2; exit 1; }
mpi() { "$mpirun" --oversubscribe -np "$@"; }
"$bin" data generate --users 240 --items 3000 --interactions 4800 --seed 5 --out "$tmp/r.tsv" >/dev/null
cases=(
  "mf|--model mf --dim 8 --rounds 3 --clients-per-round 10"
  "bpr|--model bpr --implicit --dim 8 --rounds 2 --clients-per-round 40 --item-agg rows"
  "neumf|--model neumf --implicit --dim 8 --rounds 2 --partition iid:7 --clients-per-round 5"
)
for c in "${cases[@]}"; do
  name=${c%%|*}; read -r -a opts <<<"${c#*|}"
  base=(train --data "$tmp/r.tsv" "${opts[@]}" --eval-every 0 --quiet --threads 1 --seed 11)
  "$bin" "${base[@]}" --out "$tmp/$name.sim.fr" >/dev/null 2>"$tmp/err" || fail "$name sim: $(cat "$tmp/err")"
  for n in 1 2 4; do
    mpi "$n" "$bin" "${base[@]}" --runtime mpi --out "$tmp/$name.$n.fr" >/dev/null 2>"$tmp/err" \
      || fail "$name -np $n: $(cat "$tmp/err")"
    cmp -s "$tmp/$name.sim.fr" "$tmp/$name.$n.fr" || fail "$name: -np $n gives another model than the simulator"
    cmp -s "$tmp/$name.sim.fr.ckpt" "$tmp/$name.$n.fr.ckpt" || fail "$name: -np $n gives another checkpoint"
  done
done
# mf with 10 of 240 clients a round touches few of 3000 item rows: the reduction was sparse
mpi 2 "$bin" train --data "$tmp/r.tsv" --model mf --dim 8 --rounds 3 --clients-per-round 10 --eval-every 0 --quiet \
  --threads 1 --seed 11 --runtime mpi >/dev/null 2>"$tmp/err" || fail "mf stats: $(cat "$tmp/err")"
grep -q "mpi: 2 ranks; 3 rounds reduced, 0 over the whole shared prefix" "$tmp/err" \
  || fail "mf: expected 3 sparse reductions: $(cat "$tmp/err")"
# resume: 2 rounds, then on to 4, equals 4 at once (on 2 ranks; the simulator's 4 too)
base=(train --data "$tmp/r.tsv" --model mf --dim 8 --clients-per-round 10 --eval-every 0 --quiet --threads 1 --seed 11)
mpi 2 "$bin" "${base[@]}" --runtime mpi --rounds 2 --out "$tmp/res.fr" >/dev/null 2>"$tmp/err" || fail "resume 1: $(cat "$tmp/err")"
mpi 2 "$bin" "${base[@]}" --runtime mpi --rounds 4 --out "$tmp/res.fr" --resume >/dev/null 2>"$tmp/err" \
  || fail "resume 2: $(cat "$tmp/err")"
"$bin" "${base[@]}" --rounds 4 --out "$tmp/all.fr" >/dev/null 2>"$tmp/err" || fail "sim 4: $(cat "$tmp/err")"
cmp -s "$tmp/res.fr" "$tmp/all.fr" || fail "an mpi run resumed at round 2 differs from 4 rounds at once"
# the same on 4 ranks, resumed from the simulator's checkpoint of round 2 (rank 0 reads it
# and sends each rank its own users' rows): the checkpoints of the two runtimes are one
"$bin" "${base[@]}" --rounds 2 --out "$tmp/res4.fr" >/dev/null 2>"$tmp/err" || fail "sim 2: $(cat "$tmp/err")"
mpi 4 "$bin" "${base[@]}" --runtime mpi --rounds 4 --out "$tmp/res4.fr" --resume >/dev/null 2>"$tmp/err" \
  || fail "resume on 4: $(cat "$tmp/err")"
cmp -s "$tmp/res4.fr" "$tmp/all.fr" || fail "an mpi run on 4 ranks resumed from the simulator's round 2 differs"
# what it cannot do is refused with a message on every rank, the job ending
if mpi 2 "$bin" "${base[@]}" --runtime mpi --rounds 1 --secagg >/dev/null 2>"$tmp/err"; then fail "--secagg accepted"; fi
grep -q "secure aggregation runs on the sim runtime" "$tmp/err" || fail "--secagg: $(cat "$tmp/err")"
echo "mpi_identity: ok"
