#!/usr/bin/env bash
# fedrec train --aggregator end to end: fedavg given is the default bit for bit, and so is
# multikrum selecting every client; a robust run is the same model with 1 and 2 threads
# and not fedavg's; it runs with --compress; the combinations it cannot serve (secure
# aggregation but normclip:C, DP, rowtrim with decoys, --centralized, bad forms) are refused with a
# message, by train and by fedrec server (before it reads its federation).
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_robust: FAIL: $*" >&2; exit 1; }
"$bin" data generate --users 60 --items 80 --interactions 1500 --seed 3 --out "$tmp/r.tsv" >/dev/null
base=(train --model bpr --dim 8 --data "$tmp/r.tsv" --implicit --rounds 2 --clients-per-round 15 --eval-every 0 --quiet)
run() { # NAME ARGS...
    local name=$1; shift
    "$bin" "${base[@]}" "$@" --out "$tmp/$name.fr" >/dev/null 2>"$tmp/$name.err" || fail "$name: $(cat "$tmp/$name.err")"
}
run plain --threads 2
run fedavg --aggregator fedavg --threads 1
run all --aggregator multikrum:0:1000 --threads 2
cmp -s "$tmp/plain.fr" "$tmp/fedavg.fr" || fail "--aggregator fedavg changed the model"
cmp -s "$tmp/plain.fr" "$tmp/all.fr" || fail "multikrum selecting every client is not fedavg's model"
for a in median trimmed:0.2 rowtrim normclip krum:3 rowguard:1:0.5; do
    n=${a%%:*}
    run "$n.1" --aggregator "$a" --threads 1
    run "$n.2" --aggregator "$a" --threads 2
    cmp -s "$tmp/$n.1.fr" "$tmp/$n.2.fr" || fail "$a: 1 and 2 threads differ"
    cmp -s "$tmp/$n.1.fr" "$tmp/plain.fr" && fail "$a gave fedavg's model"
done
# checkpoint and resume: 2 rounds then 3 is the run of 3; another aggregator's checkpoint is refused
run r3 --aggregator median --rounds 3
"$bin" "${base[@]}" --aggregator median --out "$tmp/res.fr" >/dev/null 2>"$tmp/err" || fail "resume 1: $(cat "$tmp/err")"
"$bin" "${base[@]}" --aggregator median --rounds 3 --out "$tmp/res.fr" --resume >/dev/null 2>"$tmp/err" ||
    fail "resume: $(cat "$tmp/err")"
"$bin" eval --model "$tmp/res.fr" --json >"$tmp/res.json" 2>/dev/null || fail "eval of the resumed model"
"$bin" eval --model "$tmp/r3.fr" --json >"$tmp/r3.json" 2>/dev/null || fail "eval of the 3-round model"
[ "$(sed 's/"model":"[^"]*"//' "$tmp/res.json")" = "$(sed 's/"model":"[^"]*"//' "$tmp/r3.json")" ] ||
    fail "resumed median run differs from the straight one"
set +e; "$bin" "${base[@]}" --aggregator trimmed:0.1 --rounds 4 --out "$tmp/res.fr" --resume >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "aggregator" "$tmp/err" || fail "resume with another aggregator: rc $rc, $(cat "$tmp/err")"
run q8 --aggregator median --compress q8
run neumf --model neumf --aggregator rowtrim:0.1
"$bin" train --model bpr --dim 8 --data "$tmp/r.tsv" --implicit --rounds 1 --eval-every 0 --aggregator median \
    >/dev/null 2>"$tmp/head.err" || fail "median: $(cat "$tmp/head.err")"
grep -q "robust aggregation: median" "$tmp/head.err" || fail "the header does not name the aggregator"
"$bin" train --help >"$tmp/help.txt"
grep -q -- "--aggregator" "$tmp/help.txt" || fail "--help lacks --aggregator"
refuse() { # MESSAGE-PART ARGS...: exit 2 naming MESSAGE-PART
    local want=$1; shift
    set +e; timeout 20 "$bin" "$@" >/dev/null 2>"$tmp/err"; local rc=$?; set -e
    [ "$rc" = 2 ] || fail "$* exited $rc, expected 2"
    grep -q -- "$want" "$tmp/err" || fail "$*: '$(cat "$tmp/err")' lacks '$want'"
}
for bad in mean median:2 trimmed trimmed:0.5 normclip:0 krum krum:-1 multikrum:1 multikrum:1:0 rowtrim:0.7 rowguard:0 rowguard:2:1.5; do
    refuse "expected fedavg, median, trimmed:BETA" "${base[@]}" --aggregator "$bad"
done
refuse "with secure aggregation" "${base[@]}" --aggregator median --secagg
refuse "give a bound, normclip:C" "${base[@]}" --aggregator normclip --private
# normclip:C: each client clips itself before masking; the masked run is the plain one
run nc --aggregator normclip:0.05
run ncsa --aggregator normclip:0.05 --secagg
cmp -s "$tmp/nc.fr" "$tmp/ncsa.fr" || fail "normclip:C under --secagg differs from the plain run"
cmp -s "$tmp/nc.fr" "$tmp/plain.fr" && fail "normclip:0.05 clipped nothing"
refuse "with secure aggregation" "${base[@]}" --aggregator krum:1 --hide-items dense
refuse "with differential privacy" "${base[@]}" --aggregator trimmed:0.1 --dp-clip 1
refuse "with differential privacy" "${base[@]}" --aggregator median --hide-items ldp
refuse "decoy row would count" "${base[@]}" --aggregator rowtrim --hide-items decoys
refuse "decoy row would count" "${base[@]}" --aggregator rowguard --hide-items decoys
refuse "with secure aggregation" "${base[@]}" --aggregator rowguard --secagg
"$bin" "${base[@]}" --aggregator median --hide-items decoys --out "$tmp/dec.fr" >/dev/null 2>&1 || fail "median with decoys refused"
"$bin" "${base[@]}" --aggregator fedavg --secagg --out "$tmp/sa.fr" >/dev/null 2>&1 || fail "fedavg with --secagg refused"
refuse "applies to federated training" train --data "$tmp/r.tsv" --implicit --centralized --epochs 1 --aggregator median
srv=(server --listen tcp://127.0.0.1:1 --federation "$tmp" --tokens "$tmp/r.tsv" --insecure)
refuse "fedrec server: --aggregator median with secure aggregation" "${srv[@]}" --aggregator median --secagg
refuse "fedrec server: --aggregator krum:2 with secure aggregation" "${srv[@]}" --aggregator krum:2 --private
refuse "fedrec server: --aggregator normclip with secure aggregation" "${srv[@]}" --aggregator normclip --secagg
refuse "fedrec server: --aggregator median with differential privacy" "${srv[@]}" --aggregator median --dp-clip 1
refuse "fedrec server: --aggregator: aggregator 'x'" "${srv[@]}" --aggregator x
echo "cli_robust: ok"
