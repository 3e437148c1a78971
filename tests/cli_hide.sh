#!/usr/bin/env bash
# fedrec train --hide-items / --private end to end: --private and --hide-items dense give
# the plain rounds' model bit for bit (secure aggregation), none is the plain run, decoys
# send more bytes up and change the model, ldp clips and adds local noise; combinations
# that make no sense are refused with a message.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_hide: FAIL: $*" >&2; exit 1; }
"$bin" data generate --users 60 --items 80 --interactions 1500 --seed 3 --out "$tmp/r.tsv" >/dev/null
base=(train --model bpr --data "$tmp/r.tsv" --implicit --rounds 2 --clients-per-round 12 --eval-every 0 --quiet --threads 2)
run() { # NAME ARGS...
    local name=$1; shift
    "$bin" "${base[@]}" "$@" --out "$tmp/$name.fr" --metrics-out "$tmp/$name.jsonl" >/dev/null 2>"$tmp/$name.err" \
        || fail "$name: $(cat "$tmp/$name.err")"
}
up() { python3 -c "import json,sys; print(sum(json.loads(l).get('bytes_up', 0) for l in open(sys.argv[1]) if 'round' in l))" "$1"; }
run plain
run none --hide-items none
run private --private
run dense --hide-items dense
run decoys --hide-items decoys:2
run ldp --hide-items ldp:0.1
cmp -s "$tmp/plain.fr" "$tmp/none.fr" || fail "--hide-items none changed the model"
cmp -s "$tmp/plain.fr" "$tmp/private.fr" || fail "--private changed the model"
cmp -s "$tmp/plain.fr" "$tmp/dense.fr" || fail "--hide-items dense changed the model"
cmp -s "$tmp/plain.fr" "$tmp/decoys.fr" && fail "decoys with pseudo-gradients left the model unchanged"
[ "$(up "$tmp/decoys.jsonl")" -gt "$(up "$tmp/plain.jsonl")" ] || fail "decoys did not add bytes up"
[ "$(up "$tmp/dense.jsonl")" -gt "$(up "$tmp/decoys.jsonl")" ] || fail "dense rows should cost more than decoys here"
grep -q "secure aggregation" "$tmp/private.err" || true
refuse() { # MESSAGE-PART ARGS...: exit 2 naming MESSAGE-PART
    local want=$1; shift
    set +e; "$bin" "${base[@]}" "$@" >/dev/null 2>"$tmp/err"; local rc=$?; set -e
    [ "$rc" = 2 ] || fail "$* exited $rc, expected 2"
    grep -q -- "$want" "$tmp/err" || fail "$*: '$(cat "$tmp/err")' lacks '$want'"
}
refuse "expected none, dense" --hide-items maybe
refuse "expected none, dense" --hide-items decoys:0
refuse "expected none, dense" --hide-items ldp:x
refuse "give one of them" --private --hide-items dense
refuse "with --secagg" --hide-items decoys --secagg
refuse "with --secagg" --hide-items ldp --secagg
refuse "that is --hide-items dense" --hide-items none --secagg
refuse "item-agg rows" --hide-items decoys --item-agg rows
refuse "drop --ldp-noise" --hide-items ldp --dp-clip 1 --ldp-noise 0.1
refuse "use --hide-items ldp" --hide-items decoys --dp-clip 1 --ldp-noise 0.1
refuse "federated training" --private --centralized
echo "cli_hide: passed"
