#!/usr/bin/env bash
# fedrec server takes train's federation options by train's rules: each refusal train makes
# the server makes too, naming itself; and a server with those options starts (its
# configuration is checked before it listens).
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_server: FAIL: $*" >&2; exit 1; }
"$bin" data generate --users 20 --items 30 --interactions 300 --out "$tmp/g.tsv" >/dev/null
"$bin" data shard --data "$tmp/g.tsv" --out "$tmp/shards" >/dev/null 2>&1 || fail "data shard"
"$bin" tokens --clients 20 --out "$tmp/tok" >/dev/null 2>&1 || fail "tokens"
srv=(server --listen tcp://127.0.0.1:1 --insecure --federation "$tmp/shards" --tokens "$tmp/tok/tokens.hash")
refuse() { # MESSAGE-PART ARGS...: exit 2, the message names the server and MESSAGE-PART
    local want=$1; shift
    set +e; timeout 20 "$bin" "${srv[@]}" "$@" >/dev/null 2>"$tmp/err"; local rc=$?; set -e
    [ "$rc" = 2 ] || fail "server $* exited $rc, expected 2"
    grep -q -- "fedrec server: .*$want" "$tmp/err" || fail "server $*: '$(cat "$tmp/err")' lacks '$want'"
    ! grep -q "fedrec train" "$tmp/err" || fail "server $*: speaks as train: $(cat "$tmp/err")"
}
refuse "expected sgd, adam or adagrad" --optimizer sgdd
refuse "expected same, sgd, adam or adagrad" --item-optimizer x
refuse "expected mean, rows or sum" --item-agg all
refuse "expected fedavg" --strategy fedsgd
refuse "--mu applies to --strategy fedprox" --strategy fedavg --mu 0.1
refuse "--server-momentum applies to --strategy fedavgm" --strategy fedadam --server-momentum 0.5
refuse "--beta2 applies" --strategy fedavg --beta2 0.9
refuse "--item-lr needs an item optimizer" --item-lr 0.1
refuse "--bias-l2 applies to models with user and item biases" --model gmf --bias-l2 0.1
refuse "--item-agg rows with --dp-clip" --dp-clip 1 --item-agg rows
refuse "needs --dp-clip" --dp-noise 1
refuse "--dropout applies to the sequence model (sasrec), not mf" --model mf --dropout 0.3
refuse "--norm: expected pre or post, got 'middle'" --model sasrec --norm middle
refuse "--seq-stride 60: expected 1..50" --model sasrec --seq-stride 60
# --private is secure aggregation over the whole shared model, as train's: the server's
# own secagg rules apply to it (over-selection is refused before anything listens)
set +e; timeout 20 "$bin" "${srv[@]}" --private --over-select 0.2 >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ "$rc" != 0 ] && grep -q "over-selection 0.2 with secure aggregation" "$tmp/err" ||
    fail "--private did not turn secure aggregation on: rc $rc, '$(cat "$tmp/err")'"
# --tokens given the directory fedrec tokens wrote: the message names the file in it
set +e; timeout 20 "$bin" server --listen tcp://127.0.0.1:1 --insecure --federation "$tmp/shards" --tokens "$tmp/tok" \
    >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ "$rc" != 0 ] && grep -qF "$tmp/tok: is a directory, expected the hashes file fedrec tokens wrote in it: $tmp/tok/tokens.hash" "$tmp/err" ||
    fail "--tokens DIR: rc $rc, '$(cat "$tmp/err")'"
# the header of a server that starts (on a free port; stopped after a moment)
header() { # ARGS...: the server's stdout in $tmp/hdr (the federation $fed, default $tmp/shards)
    : >"$tmp/hdr"
    "$bin" server --listen tcp://127.0.0.1:0 --insecure --federation "${fed:-$tmp/shards}" \
        --tokens "$tmp/tok/tokens.hash" "$@" >"$tmp/hdr" 2>"$tmp/err" &
    local pid=$! i
    for i in $(seq 200); do # its settings line is printed (and flushed) once it listens
        grep -q "^fedrec server: federated " "$tmp/hdr" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    grep -q "^fedrec server: .*; listening on tcp://127.0.0.1:[0-9]*$" "$tmp/hdr" || fail "server $* did not start: $(cat "$tmp/hdr" "$tmp/err")"
}
header --rounds 1
grep -q "^fedrec server: mf on ratings, 20 clients, 30 items, 1 round; listening" "$tmp/hdr" || fail "1 round: $(cat "$tmp/hdr")"
# the server starts as train does on the same data (one function, cli_train_config): sasrec's
# rounds sized from the clients (the federation file's count), lightgcn's item lr scaled
# down to a graph busier than ml-100k's (the load the file records), the options on top
"$bin" data generate --users 1000 --items 80 --interactions 60000 --seed 2 --out "$tmp/big.tsv" >/dev/null
"$bin" data shard --data "$tmp/big.tsv" --out "$tmp/big" >/dev/null 2>&1 || fail "data shard big"
fed="$tmp/big"
same() { # ARGS...: train's federation settings on big.tsv are the server's on its shards
    "$bin" train --data "$tmp/big.tsv" --time-limit 0.001 "$@" >/dev/null 2>"$tmp/terr" || fail "train $*: $(cat "$tmp/terr")"
    local t s
    t=$(sed -n 's/^fedrec train: federated [a-z]* on .* items, \(strategy .*\)$/\1/p' "$tmp/terr")
    header "$@"
    s=$(sed -n 's/^fedrec server: federated [a-z]*: \(strategy .*\)$/\1/p' "$tmp/hdr")
    [ -n "$t" ] && [ "$t" = "$s" ] || fail "$*: train '$t', server '$s'"
    echo "$s"
}
same --model sasrec | grep -q "; 1272 rounds (preset fedrec)$" || fail "sasrec: ceil(40.7 x 1000 / 32) = 1272 rounds"
same --model sasrec --clients-per-round 500 | grep -q "; 82 rounds (preset fedrec)$" || fail "sasrec: 82 rounds of 500"
same --model sasrec --rounds 5 | grep -q "; 5 rounds (preset fedrec)$" || fail "sasrec: --rounds 5"
# the sequence model's own options, as train takes them (train's header and the server's agree)
same --model sasrec --norm post --dropout 0.35 --seq-stride 10 --loss bce --heads 2 --ffn 32 --max-len 20 |
    grep -q "lr 1, loss bce, one negative per position, dropout 0.35, windows every 10 items, post-norm blocks, item rows" ||
    fail "sasrec: --norm post --dropout 0.35 --seq-stride 10 --loss bce"
same --model sasrec | grep -q "loss ce (a softmax over all items at each position), dropout 0.2, item rows" ||
    fail "sasrec: the preset's loss and dropout"
same --model lightgcn | grep -q "steps sgd lr 0.0416" || fail "lightgcn: lr 0.05 x 6400 / 7681.1 = 0.0416611"
same --model lightgcn --item-lr 0.1 | grep -q "steps sgd lr 0.1 " || fail "lightgcn: --item-lr 0.1"
same --model neumf --clients-per-round 7 >/dev/null
unset fed
echo "cli_server: ok"
