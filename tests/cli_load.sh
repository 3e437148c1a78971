#!/usr/bin/env bash
# The loading options of every command that reads ratings (train, eval, recommend, data
# info, data split), tried on generated files a new user might bring: a header with other
# names and play counts (userID artistID weight), counts without a header, column numbers,
# CRLF, half stars, and the messages when a column cannot be placed.
set -euo pipefail
# (output goes to a file before grep -q: with pipefail, grep -q closing the pipe early
# would fail the writer with SIGPIPE)
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_load: FAIL: $*" >&2; exit 1; }
# expect RC REGEX CMD...: CMD exits RC and its stderr matches REGEX (grep -E)
expect() {
    local want=$1 re=$2; shift 2
    set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
    [ $rc -eq "$want" ] || fail "$* should exit $want, got $rc: $(cat "$tmp/err")"
    grep -Eq -- "$re" "$tmp/err" || fail "$*: stderr should match '$re': $(cat "$tmp/err")"
}
# A last.fm-like file: tab, header userID artistID weight, play counts, CRLF, no times.
awk 'BEGIN { srand(7); printf "userID\tartistID\tweight\r\n";
             for (u = 2; u < 62; u++) { n = 0; for (i = 1; i <= 80 && n < 12; i++) if (rand() < 0.2) { printf "%d\t%d\t%d\r\n", u, i * 3, 1 + int(rand() * 20000); n++ } } }' \
    >"$tmp/user_artists.dat"
"$bin" data info "$tmp/user_artists.dat" >"$tmp/info" || fail "data info of the artists file"
grep -q "^feedback      implicit: each row a positive; the count/weight column is kept" "$tmp/info" || fail "data info says implicit: $(cat "$tmp/info")"
grep -q "^weights       min" "$tmp/info" || fail "data info names weights: $(cat "$tmp/info")"
"$bin" data info --json "$tmp/user_artists.dat" >"$tmp/info" || fail "data info --json"
grep -q '"implicit":true,"weights":true' "$tmp/info" || fail "data info --json implicit: $(cat "$tmp/info")"
"$bin" data info --implicit "$tmp/user_artists.dat" >"$tmp/info" || fail "data info --implicit"
grep -q "^ratings       min 1, max 1" "$tmp/info" || fail "data info --implicit: counts ignored: $(cat "$tmp/info")"
# train with no loading flags, then eval and recommend without repeating anything
"$bin" train --data "$tmp/user_artists.dat" --model bpr --rounds 2 --quiet --threads 1 --out "$tmp/a.fr" 2>"$tmp/err" \
    || fail "train on the artists file: $(cat "$tmp/err")"
# with no --model either: the counts make it implicit feedback, so a ranking model (neumf)
"$bin" train --data "$tmp/user_artists.dat" --rounds 1 --quiet --threads 1 >"$tmp/out" 2>"$tmp/err" \
    || fail "train on the artists file without --model: $(cat "$tmp/err")"
grep -q "model neumf chosen from the data: the file was read as implicit feedback" "$tmp/out" \
    || fail "the default model of a count file is neumf: $(cat "$tmp/out")"
"$bin" eval --model "$tmp/a.fr" >"$tmp/out" || fail "eval of the artists model"
grep -q "^hr@10" "$tmp/out" || fail "eval of the artists model prints hr@10: $(cat "$tmp/out")"
"$bin" recommend --model "$tmp/a.fr" --user 2 -k 3 >"$tmp/out" || fail "recommend on the artists model"
[ "$(grep -c '^ *[0-9]*\. item' "$tmp/out")" -eq 3 ] || fail "recommend lists 3 items: $(cat "$tmp/out")"
"$bin" data split "$tmp/user_artists.dat" --loo --negatives 5 --out "$tmp/split" >/dev/null 2>"$tmp/err" || fail "data split of the artists file"
grep -q "note: the data is implicit feedback; the rating column of the .rating files holds its weights (counts): give --implicit-weight" "$tmp/err" \
    || fail "data split notes the weights: $(cat "$tmp/err")"
"$bin" train --data "$tmp/split" --implicit-weight --model bpr --rounds 1 --quiet --threads 1 --out "$tmp/sp.fr" 2>"$tmp/err" \
    || fail "train on the split with --implicit-weight: $(cat "$tmp/err")"
"$bin" eval --model "$tmp/sp.fr" >/dev/null 2>"$tmp/err" || fail "eval on the split: $(cat "$tmp/err")"
# a rating model on implicit feedback would fit the counts as ratings: refused, with advice
expect 1 "mf predicts ratings, but the training data was read as implicit feedback.*use a ranking model" \
    "$bin" train --data "$tmp/user_artists.dat" --model mf --rounds 1 --quiet
expect 2 "mf predicts ratings" "$bin" train --data "$tmp/user_artists.dat" --model mf --centralized --epochs 1 --implicit --quiet
# an unplaceable column: which, the header's fields, and the flag that names it
sed '1s/artistID/band/' "$tmp/user_artists.dat" >"$tmp/band.tsv"
expect 1 'band.tsv:1: cannot place the item column of the header: its fields are "userID", "band", "weight".*name it: --item-col band' \
    "$bin" train --data "$tmp/band.tsv" --quiet
"$bin" train --data "$tmp/band.tsv" --item-col band --model bpr --rounds 1 --quiet --threads 1 --out "$tmp/b.fr" 2>"$tmp/err" \
    || fail "train with --item-col: $(cat "$tmp/err")"
"$bin" eval --model "$tmp/b.fr" >/dev/null 2>"$tmp/err" || fail "eval reloads with the recorded --item-col: $(cat "$tmp/err")"
# counts without a header: refused as ratings with advice, read with --implicit / columns by number
tail -n +2 "$tmp/user_artists.dat" | tr -d '\r' | awk -F'\t' '{ print $3 ";" $2 ";" $1 }' >"$tmp/plays.txt"
expect 1 "plays.txt:1: .*--implicit" "$bin" data info "$tmp/plays.txt" --user-col 3 --item-col 2 --rating-col 1
"$bin" train --data "$tmp/plays.txt" --user-col 3 --item-col 2 --rating-col 1 --implicit --model bpr --rounds 1 \
    --quiet --threads 1 --out "$tmp/p.fr" 2>"$tmp/err" || fail "train with column numbers: $(cat "$tmp/err")"
"$bin" eval --model "$tmp/p.fr" >/dev/null 2>"$tmp/err" || fail "eval reloads with the recorded columns: $(cat "$tmp/err")"
"$bin" recommend --model "$tmp/p.fr" --user 2 -k 2 >/dev/null 2>"$tmp/err" || fail "recommend with the recorded columns: $(cat "$tmp/err")"
# an option given to eval overrides the recorded one (here: another user column, another data set)
expect 1 "model/data mismatch" "$bin" eval --model "$tmp/p.fr" --user-col 1
# half stars, comma, header with other names, no times: explicit ratings for mf
printf 'Customer_ID,Product_ID,Stars\r\n' >"$tmp/stars.csv"
awk 'BEGIN { srand(3); for (u = 1; u <= 40; u++) for (i = 1; i <= 30; i++) if (rand() < 0.3) printf "%d,%d,%.1f\r\n", u, i, 0.5 * (1 + int(rand() * 10)) }' >>"$tmp/stars.csv"
"$bin" data info "$tmp/stars.csv" >"$tmp/info" || fail "data info of half stars"
grep -q "^ratings       min 0.5, max 5" "$tmp/info" || fail "half stars: $(cat "$tmp/info")"
grep -q "^columns       user Customer_ID, item Product_ID, rating Stars$" "$tmp/info" || fail "the header's placement: $(cat "$tmp/info")"
# a header with fields fedrec does not read says which ones (an Amazon reviews dump's shape)
printf 'marketplace\tcustomer_id\treview_id\tproduct_id\tstar_rating\treview_date\nUS\t7\tR1\t30\t4\t2015-08-31\n' >"$tmp/am.tsv"
"$bin" data info "$tmp/am.tsv" >"$tmp/info" || fail "data info of a reviews dump"
grep -q "^columns       user customer_id, item product_id, rating star_rating, time review_date; not read: marketplace, review_id$" \
    "$tmp/info" || fail "the reviews dump's placement: $(cat "$tmp/info")"
"$bin" data info "$tmp/am.tsv" --json | grep -q '"columns":"user customer_id, item product_id, rating star_rating, time review_date; not read: marketplace, review_id"' \
    || fail "data info --json names the columns: $("$bin" data info "$tmp/am.tsv" --json)"
"$bin" train --data "$tmp/stars.csv" --model mf --split ratio:0.8 --centralized --epochs 2 --quiet --out "$tmp/s.fr" 2>"$tmp/err" \
    || fail "train mf on half stars: $(cat "$tmp/err")"
"$bin" eval --model "$tmp/s.fr" >"$tmp/out" || fail "eval mf on half stars"
grep -q "^rmse" "$tmp/out" || fail "eval mf on half stars prints rmse: $(cat "$tmp/out")"
# option values and combinations
expect 2 "^fedrec data info: --sep: expected tab, comma, semicolon, pipe, space, '::' or one character" \
    "$bin" data info "$tmp/stars.csv" --sep bogus
expect 2 "^fedrec train: --header and --no-header contradict each other" "$bin" train --header --no-header
expect 2 "^fedrec data split: --user-col: expected a header name or a column number in 1\.\.64, got '0'" \
    "$bin" data split "$tmp/stars.csv" --loo --out "$tmp/x" --user-col 0
expect 2 "^fedrec eval: --item-col band names a header column, but --no-header says there is none" \
    "$bin" eval --model "$tmp/b.fr" --no-header --item-col band
expect 2 "^fedrec recommend: --format: expected auto, ml100k" "$bin" recommend --model "$tmp/b.fr" --user 2 --format xml
expect 2 "^fedrec data info: --item-col does not apply to --format ml100k, whose columns are fixed" \
    "$bin" data info "$tmp/stars.csv" --format ml100k --item-col 2
"$bin" data info "$tmp/stars.csv" --sep comma --header >/dev/null || fail "--sep comma --header"
tr ',' '\t' <"$tmp/stars.csv" | tail -n +2 >"$tmp/stars.tsv"
"$bin" data info "$tmp/stars.tsv" --sep tab --no-header >"$tmp/info" || fail "--sep tab --no-header"
grep -q "^ratings       min 0.5" "$tmp/info" || fail "--sep tab --no-header: $(cat "$tmp/info")"
for c in train eval recommend "data info" "data split"; do
    $bin $c --help >"$tmp/help" || fail "$c --help"
    grep -q -- "--implicit-weight" "$tmp/help" || fail "$c --help lists the loading options"
done
# the data given without --data to a command that takes it by option: the message says how
for c in train "data shard"; do
    set +e; $bin $c some.csv >/dev/null 2>"$tmp/err"; rc=$?; set -e
    [ $rc = 2 ] && grep -q "^fedrec $c: unexpected argument 'some.csv' (the data is given with --data some.csv)$" "$tmp/err" ||
        fail "$c some.csv: rc $rc, '$(cat "$tmp/err")'"
done
exit 0
