#!/usr/bin/env bash
# End-to-end checks of splits and raw ids: `data split` by each rule, checked per user by
# awk (an independent computation), then split -> train -> eval -> recommend by raw id.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_split: FAIL: $*" >&2; exit 1; }
"$bin" data generate --users 80 --items 60 --interactions 1600 --seed 5 --out "$tmp/g.tsv" >/dev/null || fail "generate"
# raw ids far from the indices: users 5000+, items 700+
awk -F'\t' 'BEGIN { OFS = "\t" } { $1 = $1 + 5000; $2 = $2 + 700; print }' "$tmp/g.tsv" >"$tmp/r.tsv"
# the same without timestamps, item ids numbered by first appearance (the case where the
# old leave-one-out held out items never seen in training)
awk -F'\t' 'BEGIN { OFS = "\t" } { if (!($2 in id)) id[$2] = ++n; print $1, id[$2], $3 }' "$tmp/r.tsv" >"$tmp/nt.tsv"

# counts per raw user of a ratings file: "user count"
per_user() { awk -F'\t' '{ c[$1]++ } END { for (u in c) print u, c[u] }' "$1" | sort -n; }
# raw user of every line of an NCF .rating file, through users.map
raw_users() { awk -F'\t' 'FNR == NR { if ($0 !~ /^#/) m[$1] = $2; next } { print m[$1] "\t" $2 }' "$1/users.map" "$2"; }

# --- leave-one-out without timestamps: one random test row per user with >= 2, a note
"$bin" data split "$tmp/nt.tsv" --loo --negatives 0 --out "$tmp/loo" >"$tmp/out" 2>"$tmp/err" || fail "split loo: $(cat "$tmp/err")"
grep -q "raw ids in users.map, items.map" "$tmp/out" || fail "split output names the maps: $(cat "$tmp/out")"
grep -q "note: .*nt.tsv has no timestamps, so leave-one-out held out a random interaction per user (seed 1), not the latest" \
    "$tmp/err" || fail "loo note: $(cat "$tmp/err")"
want=$(per_user "$tmp/nt.tsv" | awk '$2 >= 2 { n++ } END { print n }')
[ "$(wc -l <"$tmp/loo/test.rating")" -eq "$want" ] || fail "loo: $want users should give one test row each"
[ "$(cut -f1 "$tmp/loo/test.rating" | sort | uniq -d | wc -l)" -eq 0 ] || fail "loo: a user with two test rows"
# the held-out item is rarely the user's largest item id (the old rule held that out always)
raw_items() { awk -F'\t' 'FNR == NR { if ($0 !~ /^#/) m[$1] = $2; next } { print $1 "\t" m[$2] }' "$1/items.map" "$2"; }
raw_users "$tmp/loo" "$tmp/loo/test.rating" | cut -f1 >"$tmp/tu_users"
raw_items "$tmp/loo" "$tmp/loo/test.rating" | cut -f2 | paste "$tmp/tu_users" - >"$tmp/held"
largest=$(awk -F'\t' 'FNR == NR { if ($2 + 0 > mx[$1]) mx[$1] = $2 + 0; next } $2 == mx[$1] { n++ } END { print n + 0 }' \
    "$tmp/nt.tsv" "$tmp/held")
[ "$largest" -lt $((want / 3)) ] || fail "loo held out the largest item id for $largest of $want users"
"$bin" data split "$tmp/nt.tsv" --loo --negatives 0 --seed 2 --out "$tmp/loo2" >/dev/null 2>&1 || fail "split loo seed 2"
cmp -s "$tmp/loo/test.rating" "$tmp/loo2/test.rating" && fail "another seed should hold out other rows"
"$bin" data split "$tmp/nt.tsv" --loo --negatives 0 --out "$tmp/loo3" >/dev/null 2>&1 || fail "split loo again"
cmp -s "$tmp/loo/test.rating" "$tmp/loo3/test.rating" || fail "the same seed should give the same split"

# --- ratio per user: round((1 - R) n) test rows (halves up), >= 1 each side for n >= 2
for r in 0.8 0.5 0.95; do
    "$bin" data split "$tmp/r.tsv" --ratio "$r" --negatives 0 --out "$tmp/ratio" >/dev/null 2>"$tmp/err" || fail "split ratio $r: $(cat "$tmp/err")"
    per_user "$tmp/r.tsv" | awk -v r="$r" '{ t = int((1 - r) * $2 + 0.5); if ($2 < 2) t = 0; else { if (t < 1) t = 1; if (t > $2 - 1) t = $2 - 1 }
        print $1, t }' >"$tmp/want"
    raw_users "$tmp/ratio" "$tmp/ratio/test.rating" | cut -f1 | sort -n | uniq -c | awk '{ print $2, $1 }' >"$tmp/got"
    awk '$2 > 0' "$tmp/want" | diff - "$tmp/got" >/dev/null || fail "ratio $r: test rows per user differ from round((1-R)n)"
    [ "$(cat "$tmp/ratio/train.rating" "$tmp/ratio/test.rating" | wc -l)" -eq "$(wc -l <"$tmp/r.tsv")" ] || fail "ratio $r: rows lost"
done

# --- temporal per user: the latest rows of each user are test
"$bin" data split "$tmp/r.tsv" --temporal-user 0.75 --negatives 0 --out "$tmp/tu" >/dev/null 2>"$tmp/err" || fail "split temporal-user: $(cat "$tmp/err")"
awk -F'\t' 'FILENAME ~ /train/ { if ($4 > mx[$1]) mx[$1] = $4; next } { if ($4 < mx[$1]) bad++ } END { exit bad > 0 }' \
    "$tmp/tu/train.rating" "$tmp/tu/test.rating" || fail "temporal-user: a test row earlier than a training row of its user"
"$bin" train --data "$tmp/r.tsv" --split temporal-user:0.75 --model mf --centralized --epochs 1 --quiet >/dev/null 2>&1 \
    || fail "train --split temporal-user:0.75"
set +e
"$bin" data split "$tmp/nt.tsv" --temporal-user 0.8 --out "$tmp/x" >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "needs timestamps" "$tmp/err" || fail "temporal-user without timestamps: $rc $(cat "$tmp/err")"

# --- split -> train -> eval -> recommend: raw ids end to end, titles from the source's directory
printf '%s\n' 701 702 703 704 705 | awk '{ printf "%d|Movie %d (1999)|01-Jan-1999||http://x|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n", $1, $1 }' >"$tmp/u.item"
"$bin" data split "$tmp/r.tsv" --loo --out "$tmp/split" >/dev/null || fail "split for training"
grep -q "^# source: .*/r.tsv$" "$tmp/split/users.map" || fail "users.map names its source: $(head -2 "$tmp/split/users.map")"
"$bin" train --data "$tmp/split" --model gmf --rounds 2 --threads 2 --quiet --out "$tmp/m.fr" 2>"$tmp/err" || fail "train on the split: $(cat "$tmp/err")"
"$bin" eval --model "$tmp/m.fr" >"$tmp/ev" 2>"$tmp/err" || fail "eval: $(cat "$tmp/err")"
grep -q "raw ids from users.map, items.map" "$tmp/ev" || fail "eval names the id maps: $(cat "$tmp/ev")"
"$bin" recommend --model "$tmp/m.fr" --user 5003 -k 60 >"$tmp/rec" 2>"$tmp/err" || fail "recommend by raw id: $(cat "$tmp/err")"
grep -q "^top [0-9]* for user 5003 " "$tmp/rec" || fail "recommend header: $(head -1 "$tmp/rec")"
awk '/\. item/ { if ($3 < 700) bad++ } END { exit bad > 0 }' "$tmp/rec" || fail "recommend prints indices, not raw item ids: $(cat "$tmp/rec")"
# the items recommended are the user's untouched ones, by raw id
awk -F'\t' '$1 == 5003 { print $2 }' "$tmp/r.tsv" | sort >"$tmp/own"
awk '/\. item/ { print $3 }' "$tmp/rec" | sort | comm -12 - "$tmp/own" >"$tmp/both"
[ "$(wc -l <"$tmp/both")" -le 1 ] || fail "recommend lists items the user rated in training: $(cat "$tmp/both")"
grep -q "item 70[1-5] .*Movie 70[1-5] (1999)" "$tmp/rec" || fail "recommend shows titles from the source's u.item: $(cat "$tmp/rec")"
"$bin" recommend --model "$tmp/m.fr" --user 5003 -k 3 --json | grep -q '^{"user":5003,"items":\[{"item":7[0-9][0-9],' \
    || fail "recommend --json: raw ids"
set +e
"$bin" recommend --model "$tmp/m.fr" --user 3 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "user 3 is not in the model's training data" "$tmp/err" || fail "an index is not a raw id: $rc $(cat "$tmp/err")"
# an NCF directory without maps (as before): ids are the indices, nothing breaks
mkdir "$tmp/old"; cp "$tmp/split/"*.rating "$tmp/split/test.negative" "$tmp/old/"
"$bin" train --data "$tmp/old" --model gmf --rounds 1 --quiet --out "$tmp/o.fr" 2>"$tmp/err" || fail "train on an old NCF dir: $(cat "$tmp/err")"
"$bin" recommend --model "$tmp/o.fr" --user 3 -k 2 | grep -q "^top 2 for user 3 " || fail "old NCF dir: recommend by index"
# one map without the other is an error naming it
rm "$tmp/split/items.map"
set +e
"$bin" eval --model "$tmp/m.fr" 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "items.map is missing; expected both id maps or neither" "$tmp/err" || fail "a missing map: $rc $(cat "$tmp/err")"
echo "cli_split: passed"
