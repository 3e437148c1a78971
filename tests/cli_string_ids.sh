#!/usr/bin/env bash
# String ids (Amazon reviewerID/asin, Yelp business ids, Last.fm user names) end to end:
# data info, train, eval, recommend --user STRING, data split (users.map/items.map with the
# strings, read back). The same ratings with integer ids, written so that the integers run
# in the order the strings first appear (the interning order), give the same model: the
# same metrics and the same recommendations (item i's string is "B%05d" of its integer).
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_string_ids: FAIL: $*" >&2; exit 1; }
expect() {
    local want=$1 re=$2; shift 2
    set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
    [ $rc -eq "$want" ] || fail "$* should exit $want, got $rc: $(cat "$tmp/err")"
    grep -Eq -- "$re" "$tmp/err" || fail "$*: stderr should match '$re': $(cat "$tmp/err")"
}
# Integer ids numbered in order of first appearance (users 0.., items 0..), times given.
awk 'BEGIN { srand(11); nu = 0; ni = 0;
             for (u = 0; u < 40; u++) for (j = 0; j < 10; j++) {
                 i = int(rand() * 60); r = 1 + int(rand() * 5); t = 1000 + u * 100 + j;
                 if (!(u in su)) su[u] = nu++; if (!(i in si)) si[i] = ni++;
                 printf "%d,%d,%d,%d\n", su[u], si[i], r, t } }' >"$tmp/int.csv"
# The same with string ids: a header, CRLF; another copy headerless TSV.
awk -F, 'BEGIN { printf "reviewerID,asin,overall,unixReviewTime\r\n" }
         { printf "A%dX,B%05d,%d.0,%d\r\n", $1, $2, $3, $4 }' "$tmp/int.csv" >"$tmp/str.csv"
awk -F, '{ printf "A%dX\tB%05d\t%d\t%d\n", $1, $2, $3, $4 }' "$tmp/int.csv" >"$tmp/str.tsv"

"$bin" data info "$tmp/str.csv" >"$tmp/info" || fail "data info of the string file: $(cat "$tmp/info")"
"$bin" data info "$tmp/int.csv" >"$tmp/info2" || fail "data info of the integer file"
for k in users items interactions ratings; do
    [ "$(grep "^$k " "$tmp/info")" = "$(grep "^$k " "$tmp/info2")" ] || fail "data info $k differs: $(cat "$tmp/info") vs $(cat "$tmp/info2")"
done
grep -q "^ids           strings" "$tmp/info" || fail "data info says the ids are strings: $(cat "$tmp/info")"
"$bin" data info "$tmp/str.tsv" >"$tmp/info3" || fail "data info of the headerless string tsv: $(cat "$tmp/info3")"
[ "$(grep "^interactions " "$tmp/info3")" = "$(grep "^interactions " "$tmp/info2")" ] || fail "headerless tsv: interactions: $(cat "$tmp/info3")"
# The example of the issue: a headerless file with string ids is data, not a header.
printf 'userX,itemA,5\nuserY,itemB,3\n' >"$tmp/s.csv"
"$bin" data info "$tmp/s.csv" >"$tmp/out" || fail "headerless string ids: $(cat "$tmp/out")"
grep -q "^interactions  2$" "$tmp/out" || fail "headerless string ids: 2 interactions: $(cat "$tmp/out")"
# A string id after integer ones, without --string-ids: an error that names the option.
printf '1,2,5\nuserY,3,4\n' >"$tmp/mixed.csv"
expect 1 "user id \"userY\" is not a number; expected an integer in \[0, 2\^31\).*--string-ids" "$bin" data info "$tmp/mixed.csv"
"$bin" data info --string-ids "$tmp/mixed.csv" >"$tmp/out" || fail "--string-ids reads the mixed file"
grep -q "^users         2$" "$tmp/out" || fail "--string-ids: 2 users: $(cat "$tmp/out")"

# train, eval, recommend on both; the metrics and recommendations agree.
for v in int str; do
    f="$tmp/$v.csv"
    "$bin" train --data "$f" --model mf --rounds 3 --quiet --threads 1 --seed 5 --out "$tmp/$v.fr" 2>"$tmp/err" \
        || fail "train on $v: $(cat "$tmp/err")"
    "$bin" eval --model "$tmp/$v.fr" --threads 1 >"$tmp/eval_$v" 2>"$tmp/err" || fail "eval $v: $(cat "$tmp/err")"
done
grep -v '^model \|^data ' "$tmp/eval_int" >"$tmp/ei"; grep -v '^model \|^data ' "$tmp/eval_str" >"$tmp/es"
grep -q '^rmse ' "$tmp/ei" || fail "eval prints rmse: $(cat "$tmp/eval_int")"
cmp -s "$tmp/ei" "$tmp/es" || fail "eval differs: $(diff "$tmp/eval_int" "$tmp/eval_str")"
"$bin" recommend --model "$tmp/int.fr" --user 7 -k 5 >"$tmp/rec_int" || fail "recommend int"
"$bin" recommend --model "$tmp/str.fr" --user A7X -k 5 >"$tmp/rec_str" || fail "recommend A7X"
grep -q "^top 5 for user A7X " "$tmp/rec_str" || fail "recommend names the string user: $(cat "$tmp/rec_str")"
# the same items (B%05d of the integer) and scores
awk '/item/ { printf "%s B%05d %s\n", $1, $3, $5 }' "$tmp/rec_int" >"$tmp/a"
awk '/item/ { printf "%s %s %s\n", $1, $3, $5 }' "$tmp/rec_str" >"$tmp/b"
cmp -s "$tmp/a" "$tmp/b" || fail "recommendations differ: $(cat "$tmp/a") vs $(cat "$tmp/b")"
"$bin" recommend --model "$tmp/str.fr" --user A7X -k 2 --json >"$tmp/out" || fail "recommend --json"
grep -q '^{"user":"A7X","items":\[{"item":"B[0-9]*","score"' "$tmp/out" || fail "json string ids: $(cat "$tmp/out")"
expect 1 "user nobody is not in the model's training data" "$bin" recommend --model "$tmp/str.fr" --user nobody

# data split: the maps hold the strings and read back
"$bin" data split "$tmp/str.csv" --loo --negatives 5 --out "$tmp/split" >/dev/null 2>"$tmp/err" || fail "data split: $(cat "$tmp/err")"
grep -q "^# ids: strings" "$tmp/split/users.map" || fail "users.map marks strings: $(head -3 "$tmp/split/users.map")"
grep -q "^0	A0X$" "$tmp/split/users.map" || fail "users.map: index 0 is A0X: $(head -4 "$tmp/split/users.map")"
grep -q "^0	B00000$" "$tmp/split/items.map" || fail "items.map: index 0 is B00000: $(head -4 "$tmp/split/items.map")"
"$bin" train --data "$tmp/split" --model mf --rounds 2 --quiet --threads 1 --out "$tmp/sp.fr" 2>"$tmp/err" \
    || fail "train on the split: $(cat "$tmp/err")"
"$bin" recommend --model "$tmp/sp.fr" --user A3X -k 3 >"$tmp/out" || fail "recommend on the split"
grep -Eq "^  1\. item B[0-9]{5} " "$tmp/out" || fail "split recommend prints string items: $(cat "$tmp/out")"
echo "cli_string_ids: ok"
