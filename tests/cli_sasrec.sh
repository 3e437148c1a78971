#!/usr/bin/env bash
# End to end for the sequence model: users walking a ring of items in time order (the
# next item follows from the history, never from the user), the paper's split
# (`data split --loo --negatives 100`), `train --model sasrec` centralized and federated
# with the preset's defaults over a few epochs/rounds, a model file that `eval` scores as
# training did, and `recommend` ranking the item after the user's history first.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_sasrec: FAIL: $*" >&2; exit 1; }
# 60 users x 16 items on a ring of 200: user u starts at 3u, steps +1 (odd users +2)
awk 'BEGIN { OFS = "\t"; for (u = 1; u <= 60; u++) { c = (3 * u) % 200; for (k = 0; k < 16; k++) {
       print u, c + 1, 1, 1000 + 10 * k; c = (c + (u % 2 ? 2 : 1)) % 200 } } }' >"$tmp/r.tsv"
"$bin" data split "$tmp/r.tsv" --loo --negatives 100 --out "$tmp/s" >/dev/null || fail "split"
"$bin" train --data "$tmp/s" --model sasrec --centralized --epochs 30 --batch 8 --dim 16 --quiet --out "$tmp/c.fr" \
    --metrics-out "$tmp/c.jsonl" || fail "centralized training"
hr=$(tail -1 "$tmp/c.jsonl" | grep -o '"hr@10":[0-9.]*' | head -1 | cut -d: -f2)
awk -v h="$hr" 'BEGIN { exit !(h > 0.9) }' || fail "centralized hr@10 $hr: the next item is in the history"
"$bin" eval --model "$tmp/c.fr" --data "$tmp/s" --json >"$tmp/e.json" || fail "eval"
ehr=$(grep -o '"hr@10":[0-9.]*' "$tmp/e.json" | head -1 | cut -d: -f2)
awk -v a="$hr" -v b="$ehr" 'BEGIN { exit !(a - b < 1e-9 && b - a < 1e-9) }' || fail "eval gives hr@10 $ehr, training gave $hr"
# user 7 (odd) ends ... its test item was the latest; its history's last train item is
# the one before, so the top item after it is the test item
last=$(awk '$1 == 7' "$tmp/r.tsv" | tail -1 | cut -f2)
"$bin" recommend --model "$tmp/c.fr" --data "$tmp/s" --user 7 -k 3 --json >"$tmp/r.json" || fail "recommend"
top=$(grep -o '"item":"\?[0-9]*' "$tmp/r.json" | head -1 | grep -o '[0-9]*$')
[ "$top" = "$last" ] || fail "recommend for user 7: $(cat "$tmp/r.json"), the next item is $last"
"$bin" train --data "$tmp/s" --model sasrec --rounds 120 --clients-per-round 8 --dim 16 --quiet --out "$tmp/f.fr" \
    --metrics-out "$tmp/f.jsonl" || fail "federated training"
fhr=$(tail -1 "$tmp/f.jsonl" | grep -o '"hr@10":[0-9.]*' | head -1 | cut -d: -f2)
awk -v h="$fhr" 'BEGIN { exit !(h > 0.5) }' || fail "federated hr@10 $fhr"
# --neg is refused: all items (ce) or one negative per position (bce), whatever it says
set +e; "$bin" train --data "$tmp/s" --model sasrec --neg 3 --quiet >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ "$rc" = 2 ] && grep -q -- "--neg does not apply to sasrec" "$tmp/err" || fail "--neg 3: rc $rc, '$(cat "$tmp/err")'"
# the softmax loss: --loss ce (its model file keeps it: eval scores as training did)
"$bin" train --data "$tmp/s" --model sasrec --centralized --epochs 15 --batch 8 --dim 16 --loss ce --heads 2 --ffn 32 \
    --dropout 0.1 --max-len 20 --quiet --out "$tmp/ce.fr" --metrics-out "$tmp/ce.jsonl" || fail "centralized --loss ce"
chr=$(tail -1 "$tmp/ce.jsonl" | grep -o '"hr@10":[0-9.]*' | head -1 | cut -d: -f2)
awk -v h="$chr" 'BEGIN { exit !(h > 0.9) }' || fail "--loss ce hr@10 $chr"
"$bin" eval --model "$tmp/ce.fr" --data "$tmp/s" --json >"$tmp/ce.json" || fail "eval of the ce model"
grep -q "\"hr@10\":$chr" "$tmp/ce.json" || fail "eval of the ce model: $(cat "$tmp/ce.json"), training gave $chr"
"$bin" train --data "$tmp/s" --model sasrec --loss ce --rounds 30 --clients-per-round 8 --dim 16 --quiet \
    --metrics-out "$tmp/fce.jsonl" || fail "federated --loss ce"
set +e; "$bin" train --data "$tmp/s" --model bpr --heads 2 --quiet >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ "$rc" = 2 ] && grep -q -- "--heads applies to the sequence model" "$tmp/err" || fail "bpr --heads: rc $rc, '$(cat "$tmp/err")'"
set +e; "$bin" train --data "$tmp/s" --model sasrec --loss bpr --quiet >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ "$rc" = 2 ] && grep -q -- "expected bce or ce" "$tmp/err" || fail "--loss bpr: rc $rc, '$(cat "$tmp/err")'"
# the run's header names the loss it trains with (the preset's ce, or bce's one negative)
"$bin" train --data "$tmp/s" --model sasrec --centralized --epochs 1 --dim 16 >"$tmp/h.out" 2>&1 || fail "header run"
grep -q "^training sasrec .*loss ce (a softmax over all items" "$tmp/h.out" || fail "ce header: $(head -1 "$tmp/h.out")"
"$bin" train --data "$tmp/s" --model sasrec --centralized --epochs 1 --dim 16 --loss bce >"$tmp/h.out" 2>&1 || fail "bce header run"
grep -q "^training sasrec .*loss bce, one negative per position" "$tmp/h.out" || fail "bce header: $(head -1 "$tmp/h.out")"
# --seq-stride: overlapping windows (named in the header), at most --max-len, sasrec only
"$bin" train --data "$tmp/s" --model sasrec --centralized --epochs 1 --dim 16 --max-len 10 --seq-stride 4 \
    >"$tmp/h.out" 2>&1 || fail "--seq-stride run"
grep -q "^training sasrec .*loss ce (a softmax over all items at each position), windows every 4 items" "$tmp/h.out" ||
    fail "stride header: $(head -1 "$tmp/h.out")"
"$bin" train --data "$tmp/s" --model sasrec --rounds 2 --clients-per-round 8 --dim 16 --seq-stride 10 --quiet ||
    fail "federated --seq-stride"
set +e; "$bin" train --data "$tmp/s" --model sasrec --max-len 10 --seq-stride 11 --quiet >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ "$rc" = 2 ] && grep -q -- "--seq-stride 11: expected 1..10" "$tmp/err" || fail "--seq-stride 11: rc $rc, '$(cat "$tmp/err")'"
set +e; "$bin" train --data "$tmp/s" --model bpr --seq-stride 2 --quiet >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ "$rc" = 2 ] && grep -q -- "--seq-stride applies to the sequence model" "$tmp/err" || fail "bpr --seq-stride: rc $rc, '$(cat "$tmp/err")'"
# the preset's pre-norm blocks (the paper's) and --norm post (RecBole's placement): the
# header says post-norm, the model file keeps it (eval scores as training did); --norm is
# refused for other models and other values
! grep -q "post-norm" "$tmp/h.out" || fail "the preset's header says post-norm: $(head -1 "$tmp/h.out")"
"$bin" train --data "$tmp/s" --model sasrec --centralized --epochs 15 --batch 8 --dim 16 --norm post --dropout 0.5 \
    --out "$tmp/pn.fr" --metrics-out "$tmp/pn.jsonl" >"$tmp/h.out" 2>&1 || fail "centralized --norm post"
grep -q "^training sasrec .*, post-norm blocks" "$tmp/h.out" || fail "post-norm header: $(head -1 "$tmp/h.out")"
phr=$(tail -1 "$tmp/pn.jsonl" | grep -o '"hr@10":[0-9.]*' | head -1 | cut -d: -f2)
awk -v h="$phr" 'BEGIN { exit !(h > 0.9) }' || fail "--norm post hr@10 $phr"
"$bin" eval --model "$tmp/pn.fr" --data "$tmp/s" --json >"$tmp/pn.json" || fail "eval of the post-norm model"
grep -q "\"hr@10\":$phr" "$tmp/pn.json" || fail "eval of the post-norm model: $(cat "$tmp/pn.json"), training gave $phr"
set +e; "$bin" train --data "$tmp/s" --model bpr --norm post --quiet >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ "$rc" = 2 ] && grep -q -- "--norm applies to the sequence model" "$tmp/err" || fail "bpr --norm: rc $rc, '$(cat "$tmp/err")'"
set +e; "$bin" train --data "$tmp/s" --model sasrec --norm mid --quiet >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ "$rc" = 2 ] && grep -q -- "expected pre or post" "$tmp/err" || fail "--norm mid: rc $rc, '$(cat "$tmp/err")'"
echo "cli_sasrec: ok (centralized hr@10 $hr, federated $fhr, --loss ce $chr, --norm post $phr)"
