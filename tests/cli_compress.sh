#!/usr/bin/env bash
# fedrec train --compress / --compress-down end to end: q8 sends fewer bytes up (the
# metrics' bytes_up), --compress-down q8 fewer bytes down, --compress none is the plain
# run bit for bit, a compressed run is the same model with 1 and 2 threads; combinations
# that make no sense (DP, secure aggregation, --centralized, bad forms) are refused with a
# message.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_compress: FAIL: $*" >&2; exit 1; }
"$bin" data generate --users 60 --items 80 --interactions 1500 --seed 3 --out "$tmp/r.tsv" >/dev/null
base=(train --model bpr --dim 8 --data "$tmp/r.tsv" --implicit --rounds 2 --clients-per-round 12 --eval-every 0 --quiet)
run() { # NAME ARGS...
    local name=$1; shift
    "$bin" "${base[@]}" "$@" --out "$tmp/$name.fr" --metrics-out "$tmp/$name.jsonl" >/dev/null 2>"$tmp/$name.err" \
        || fail "$name: $(cat "$tmp/$name.err")"
}
sum() { python3 -c "import json,sys; print(sum(json.loads(l).get(sys.argv[2], 0) for l in open(sys.argv[1]) if 'round' in l))" "$1" "$2"; }
run plain --threads 2
run none --compress none --compress-down none --threads 1
run q8 --compress q8 --compress-down q8 --threads 1
run q8t --compress q8 --compress-down q8 --threads 2
run topk --model neumf --compress topk:30,q8 --threads 2
run topk1 --model neumf --compress topk:30,q8 --threads 1
run nplain --model neumf --compress q8 --threads 2
cmp -s "$tmp/plain.fr" "$tmp/none.fr" || fail "--compress none changed the model"
cmp -s "$tmp/q8.fr" "$tmp/q8t.fr" || fail "q8: 1 and 2 threads differ"
cmp -s "$tmp/topk.fr" "$tmp/topk1.fr" || fail "topk: 1 and 2 threads differ"
cmp -s "$tmp/plain.fr" "$tmp/q8.fr" && fail "q8 left the model unchanged"
[ "$(( $(sum "$tmp/q8.jsonl" bytes_up) * 4 ))" -lt "$(sum "$tmp/plain.jsonl" bytes_up)" ] || fail "q8: not 4x fewer bytes up"
[ "$(( $(sum "$tmp/q8.jsonl" bytes_down) * 2 ))" -lt "$(sum "$tmp/plain.jsonl" bytes_down)" ] || fail "q8: not 2x fewer bytes down (dim 8 and a bias: 36 bytes an item become 17)"
[ "$(sum "$tmp/topk.jsonl" bytes_up)" -lt "$(sum "$tmp/nplain.jsonl" bytes_up)" ] || fail "topk: not fewer bytes than q8"
refuse() { # MESSAGE-PART ARGS...: exit 2 naming MESSAGE-PART
    local want=$1; shift
    set +e; "$bin" "$@" >/dev/null 2>"$tmp/err"; local rc=$?; set -e
    [ "$rc" = 2 ] || fail "$* exited $rc, expected 2"
    grep -q -- "$want" "$tmp/err" || fail "$*: '$(cat "$tmp/err")' lacks '$want'"
}
refuse "expected none, q8, q16, topk:K" "${base[@]}" --compress q4
refuse "expected none, q8, q16, topk:K" "${base[@]}" --compress topk:0
refuse "expected none, q8, q16, topk:K" "${base[@]}" --compress topk:5,q8,q16
refuse "expected none, q8 or q16" "${base[@]}" --compress-down topk:3
refuse "differential privacy" "${base[@]}" --compress q8 --dp-clip 1
refuse "secure aggregation" "${base[@]}" --compress q8 --secagg
refuse "secure aggregation" "${base[@]}" --compress q16 --private
"$bin" "${base[@]}" --compress-down q8 --dp-clip 1 --out "$tmp/dpdown.fr" >/dev/null 2>&1 || fail "--compress-down with DP refused"
refuse "compress" train --data "$tmp/r.tsv" --implicit --centralized --epochs 1 --compress q8
refuse "secure aggregation" server --listen tcp://127.0.0.1:1 --federation "$tmp" --tokens "$tmp/r.tsv" --insecure \
    --compress q8 --secagg
refuse "secure aggregation" server --listen tcp://127.0.0.1:1 --federation "$tmp" --tokens "$tmp/r.tsv" --insecure \
    --compress q8 --private
echo "cli_compress: ok"
