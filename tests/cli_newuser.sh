#!/usr/bin/env bash
# What a new user meets first, on small generated files of the shapes people bring: the
# summary's "best" line, sasrec on data without timestamps, Goodreads-style headers and
# the messages for a malformed quoted line or date.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_newuser: FAIL: $*" >&2; exit 1; }
# expect RC REGEX CMD...: CMD exits RC and its stderr matches REGEX (grep -E)
expect() {
    local want=$1 re=$2; shift 2
    set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
    [ $rc -eq "$want" ] || fail "$* should exit $want, got $rc: $(cat "$tmp/err")"
    grep -Eq -- "$re" "$tmp/err" || fail "$*: stderr should match '$re': $(cat "$tmp/err")"
}

# 1. "best" is shown only when it beats the final step: three users, four items, every
# test item ranked first or second from the first epoch on (hr@10 1 throughout), so no
# step is better than the last and the summary has no "best" line.
printf '1\t1\t1\n1\t2\t1\n2\t2\t1\n2\t3\t1\n3\t1\t1\n3\t3\t1\n' >"$tmp/tr.tsv"
printf '1\t9\t1\n2\t1\t1\n3\t2\t1\n' >"$tmp/te.tsv"
"$bin" train --data "$tmp/tr.tsv" --test "$tmp/te.tsv" --model lightgcn-full --centralized --epochs 5 --quiet \
    --metrics-out "$tmp/m.jsonl" >"$tmp/out" || fail "lightgcn-full on the tiny file"
grep -q '^  final (epoch 5)' "$tmp/out" || fail "no final line: $(cat "$tmp/out")"
if grep -q '^  best ' "$tmp/out"; then
    fin=$(grep '^  final' "$tmp/out" | grep -o 'hr@10_full [0-9.]*' | cut -d' ' -f2)
    best=$(grep '^  best' "$tmp/out" | grep -o 'hr@10_full [0-9.]*' | cut -d' ' -f2)
    awk -v b="$best" -v f="$fin" 'BEGIN { exit !(b > f) }' ||
        fail "a best line no better than the final: $(cat "$tmp/out")"
fi
# the metrics file still records the best step (the first of the ties)
tail -1 "$tmp/m.jsonl" | grep -q '"best":{"epoch":' || fail "summary record: $(tail -1 "$tmp/m.jsonl")"
# 2. sasrec reads each user's items in time order: on a file without timestamps (or whose
# timestamps are all equal) there is no order, and the run says so instead of training on
# the item ids' order as if it were one.
printf 'user,item\n1,2\n1,3\n1,4\n2,3\n2,4\n2,5\n3,2\n3,5\n3,1\n' >"$tmp/nots.csv"
expect 0 "note: .*nots.csv has no timestamps \(or all are equal\): sasrec reads each user's items in item-id order" \
    "$bin" train --data "$tmp/nots.csv" --model sasrec --centralized --epochs 1 --dim 8
printf 'user,item,timestamp\n1,2,5\n1,3,6\n1,4,7\n2,3,5\n2,4,5\n2,5,6\n3,2,1\n3,5,2\n3,1,3\n' >"$tmp/ts.csv"
"$bin" train --data "$tmp/ts.csv" --model sasrec --centralized --epochs 1 --dim 8 >"$tmp/out" 2>"$tmp/err" ||
    fail "sasrec with timestamps: $(cat "$tmp/err")"
if grep -q "no timestamps" "$tmp/err"; then fail "a timestamp note on timed data: $(cat "$tmp/err")"; fi
# 3. Goodreads-style headers: the time in date_added (Date Added), quoted titles with commas.
printf 'user_id,book_id,title,rating,date_added\n1,10,"The Road, A Novel",5,2020-01-02\n1,11,Emma,4,2020-01-03\n2,10,"He said ""hi""",3,2021-05-06\n' \
    >"$tmp/gr.csv"
"$bin" data info "$tmp/gr.csv" >"$tmp/out" 2>"$tmp/err" || fail "data info of gr.csv: $(cat "$tmp/err")"
grep -q "^columns       user user_id, item book_id, rating rating, time date_added; not read: title" "$tmp/out" ||
    fail "date_added is the time: $(cat "$tmp/out")"
grep -q "^time span     2020-01-02 .. 2021-05-06" "$tmp/out" || fail "gr.csv time span: $(cat "$tmp/out")"
printf 'Book Id,User,My Rating,Date Added\n10,1,5,2020/01/02\n' >"$tmp/gr2.csv"
# Goodreads' export writes dates as 2020/01/02: year first, so read as 2020-01-02
"$bin" data info "$tmp/gr2.csv" >"$tmp/out" 2>"$tmp/err" || fail "data info of gr2.csv: $(cat "$tmp/err")"
grep -q "^time span     2020-01-02 .. 2020-01-02" "$tmp/out" || fail "gr2.csv time span: $(cat "$tmp/out")"
# a date that does not exist is called a date, not "not a number"
printf 'user,item,rating,date\n1,2,3,2020-13-02\n' >"$tmp/bad.csv"
expect 1 'bad.csv:2: timestamp "2020-13-02" is not a valid date; expected an integer \(seconds\) or a date' \
    "$bin" data info "$tmp/bad.csv"
printf 'user,item,rating,date\n1,2,3,02/01/2020\n' >"$tmp/bad.csv"
expect 1 'bad.csv:2: timestamp "02/01/2020" is not a number; expected an integer \(seconds\) or a date' \
    "$bin" data info "$tmp/bad.csv"
# 4. A quote opened and never closed: the message says so, not only that fields are missing.
printf 'user_id,book_id,title,rating\n1,10,"A, B",5\n1,11,"unterminated,4\n' >"$tmp/q.csv"
expect 1 "q.csv:3: a quoted field is not closed" "$bin" data info "$tmp/q.csv"
grep -qF "(a '\"' opens it and none ends it on the line; a quote inside one is written \"\"): expected at least 4 fields separated by ','" \
    "$tmp/err" || fail "q.csv: the message: $(cat "$tmp/err")"
# a quote closed before the end is no such error (the line has too few fields for another reason)
printf 'user_id,book_id,title,rating\n1,10,"A, B",5\n1,"11"\n' >"$tmp/q.csv"
expect 1 "q.csv:3: expected at least 4 fields" "$bin" data info "$tmp/q.csv"
# 5. data info's histogram covers every rating: a 1-10 scale (anime, Book-Crossing) put
# everything above 5.5 in "other"; play counts were one "other" bar. Each bar's count is
# checked against awk's count of the file.
awk 'BEGIN { srand(4); print "user,anime,rating"; for (u = 0; u < 30; u++) for (i = 0; i < 8; i++)
             print u "," (u * 7 + i * 11) % 100 "," 1 + (u * 3 + i * 5) % 10 }' >"$tmp/anime.csv"
"$bin" data info "$tmp/anime.csv" >"$tmp/out" || fail "data info anime.csv"
grep -q other "$tmp/out" && fail "an 'other' bar on a 1-10 scale: $(cat "$tmp/out")"
for v in 1 5 6 10; do
    want=$(awk -F, -v v=$v 'NR > 1 && $3 == v { n++ } END { print n + 0 }' "$tmp/anime.csv")
    grep -Eq "^  $v +$want  #" "$tmp/out" || fail "rating $v: $want expected: $(cat "$tmp/out")"
done
"$bin" data info --json "$tmp/anime.csv" >"$tmp/out" || fail "data info --json anime.csv"
grep -q '"histogram":{"1":24,"2":24,"3":24,"4":24,"5":24,"6":24,"7":24,"8":24,"9":24,"10":24}' "$tmp/out" ||
    fail "json histogram: $(cat "$tmp/out")"
# without timestamps the JSON has no time span (it said 0 and 0: 1970-01-01)
grep -q '"time_min":null,"time_max":null' "$tmp/out" || fail "json time without timestamps: $(cat "$tmp/out")"
# play counts: a histogram of the weights in ranges, every row in one
printf 'user\tartist\tplays\n' >"$tmp/plays.tsv"
awk 'BEGIN { for (u = 1; u <= 20; u++) for (i = 1; i <= 5; i++) print "u" u "\ta" (u + i) % 17 "\t" (u * i * 37) % 3000 + 1 }' \
    >>"$tmp/plays.tsv"
"$bin" data info "$tmp/plays.tsv" >"$tmp/out" || fail "data info plays.tsv"
grep -q '^weight histogram:' "$tmp/out" || fail "weights: $(cat "$tmp/out")"
grep -q other "$tmp/out" && fail "an 'other' bar of weights: $(cat "$tmp/out")"
sum=$(sed -n '/^weight histogram:/,$p' "$tmp/out" | awk 'NR > 1 { n += $2 } END { print n }')
[ "$sum" = 100 ] || fail "the weight bars hold $sum of 100 rows: $(cat "$tmp/out")"
# 6. recommend's columns line up with string ids of any length and of UTF-8 letters
# (Björk is 6 bytes and 5 letters; "Massive Attack" is longer than the 8 columns given).
printf 'user\tartist\tplays\n' >"$tmp/art.tsv"
for u in 1 2 3 4 5 6; do for a in "Björk" "Massive Attack" "Sigur Rós" "AC/DC" "Mötley Crüe" "a$u"; do
    printf 'user%s\t%s\t%s\n' $u "$a" $((u * 3 + ${#a})) >>"$tmp/art.tsv"; done; done
printf 'user7\tBjörk\t3\nuser7\tAC/DC\t4\n' >>"$tmp/art.tsv"
"$bin" train --data "$tmp/art.tsv" --model bpr --rounds 2 --quiet --out "$tmp/art.fr" >/dev/null || fail "train art.tsv"
"$bin" recommend --model "$tmp/art.fr" --user user7 -k 8 >"$tmp/out" || fail "recommend user7"
grep -q "Massive Attack" "$tmp/out" && grep -q "Mötley Crüe" "$tmp/out" || fail "recommend user7: $(cat "$tmp/out")"
# the letter column of "score" on every item line (continuation bytes not counted)
cols=$(LC_ALL=C awk 'NR > 1 { s = $0; gsub(/[\200-\277]/, "", s); print index(s, " score ") }' "$tmp/out" | sort -u | wc -l)
[ "$cols" = 1 ] || fail "the score column moves: $(cat "$tmp/out")"
# 7. the usage lines name every loading option (--string-ids was missing; recommend's had no --data)
"$bin" data info --help >"$tmp/out" 2>&1 || true
head -1 "$tmp/out" | grep -q -- "--string-ids" || fail "data info usage: $(head -1 "$tmp/out")"
"$bin" recommend --help >"$tmp/out" 2>&1 || true
head -1 "$tmp/out" | grep -q -- "--data PATH \[LOADING OPTIONS\]\]" || fail "recommend usage: $(head -1 "$tmp/out")"
# 8. a feature file that covers few items: the features line says how many have none
# (it said "0.0 per item" for one feature on one item of thirty).
awk 'BEGIN { for (u = 1; u <= 20; u++) for (k = 0; k < 5; k++) print u "\t" 1 + (u * 3 + k * 7) % 30 "\t1" }' >"$tmp/inter.tsv"
printf '3\tvip\n\n999\tgenre=jazz\n' >"$tmp/if.txt"
expect 0 "features: 0 user features .*, 1 item features \(1.0 per item on the 1 of 30 that have some; 29 have none\)" \
    "$bin" train --data "$tmp/inter.tsv" --model lightfm --item-features "$tmp/if.txt" --rounds 1
grep -q 'if.txt: 1 line names an item the data does not have; skipped (the first: .*if.txt:3: item id "999")' "$tmp/err" ||
    fail "the unknown id's note: $(cat "$tmp/err")"
# 9. Last.fm 1K's listening log (no header; user, ISO time, artist mbid, artist, track mbid,
# track), columns given by number: its first line is data (its time column reads as a
# time), not a header to drop: every row is read.
printf 'user_000001\t2009-05-04T23:08:57Z\tf1b1cf71\tDeep Dish\t\tFamous\nuser_000001\t2009-05-04T13:54:10Z\ta7f7df4a\t坂本龍一\t\tComposition\nuser_000002\t2009-05-04T13:52:04Z\t\tPortishead\t\tGlory Box\n' \
    >"$tmp/lfm1k.tsv"
expect 1 'lfm1k.tsv:1: rating "f1b1cf71" is not a number; expected a decimal in \[0, 10\] \(the rating column is column 3 by position; a file without ratings: --format delimited reads only the columns given\)' \
    "$bin" data info "$tmp/lfm1k.tsv" --user-col 1 --item-col 4 --time-col 2
"$bin" data info "$tmp/lfm1k.tsv" --format delimited --user-col 1 --item-col 4 --time-col 2 >"$tmp/out" 2>"$tmp/err" ||
    fail "lfm1k.tsv: $(cat "$tmp/err")"
grep -q "^interactions  3$" "$tmp/out" || fail "lfm1k.tsv: a row lost: $(cat "$tmp/out")"
grep -q "^users         2$" "$tmp/out" || fail "lfm1k.tsv users: $(cat "$tmp/out")"
# the same with a rating column given by number whose first value is a number
printf 'A2SUAM1J3GNN3B\t5.0\tB0001\nA3\t4.0\tB0002\n' >"$tmp/az.tsv"
"$bin" data info "$tmp/az.tsv" --user-col 1 --rating-col 2 --item-col 3 >"$tmp/out" 2>"$tmp/err" || fail "az.tsv: $(cat "$tmp/err")"
grep -q "^interactions  2$" "$tmp/out" || fail "az.tsv: a row lost: $(cat "$tmp/out")"
# a real header with columns given by number is still a header
printf 'who\twhen\twhat\nu1\t2009-05-04\ti1\nu2\t2009-05-05\ti1\n' >"$tmp/h.tsv"
"$bin" data info "$tmp/h.tsv" --user-col 1 --item-col 3 --time-col 2 >"$tmp/out" 2>"$tmp/err" || fail "h.tsv: $(cat "$tmp/err")"
grep -q "^interactions  2$" "$tmp/out" || fail "h.tsv: $(cat "$tmp/out")"
# 10. --skip-bad-lines: train says how many lines it skipped and where the first was
# (data info did; train dropped them without a word).
awk 'BEGIN { print "user_id,book_id,rating"; for (u = 0; u < 20; u++) for (k = 0; k < 6; k++) print u "," (u + 7 * k) % 40 "," 1 + (u + k) % 5;
             print "3,7"; print "4,x,5" }' >"$tmp/skip.csv"
expect 0 "fedrec train: note: 2 bad lines skipped \(--skip-bad-lines\): the first is .*skip.csv:122" \
    "$bin" train --data "$tmp/skip.csv" --skip-bad-lines --centralized --epochs 1
grep -q "^training mf centrally on .*: 20 users, 40 items, 100 training interactions" "$tmp/out" || fail "skip.csv: $(cat "$tmp/out")"
head -101 "$tmp/skip.csv" >"$tmp/tr.csv"; { head -1 "$tmp/skip.csv"; sed -n '102,$p' "$tmp/skip.csv"; } >"$tmp/te.csv"
expect 0 "fedrec train: note: 2 bad lines skipped \(--skip-bad-lines\): the first is .*te.csv:22" \
    "$bin" train --data "$tmp/tr.csv" --test "$tmp/te.csv" --skip-bad-lines --centralized --epochs 1
"$bin" train --data "$tmp/tr.csv" --skip-bad-lines --centralized --epochs 1 >"$tmp/out" 2>"$tmp/err" || fail "tr.csv"
grep -q "bad line" "$tmp/err" && fail "a note without bad lines: $(cat "$tmp/err")"
# 11. two CSV files joined with cat: the second header in the middle is named as a header,
# not offered string ids.
printf 'user,item,rating\n1,2,3\nuser,item,rating\n1,3,4\n' >"$tmp/cat.csv"
expect 1 'cat.csv:3: a header line in the middle of the data \(files joined\?\): "user,item,rating"; expected' "$bin" data info "$tmp/cat.csv"
grep -q -- "--string-ids" "$tmp/err" && fail "cat.csv: string ids offered: $(cat "$tmp/err")"
printf 'userID\tartistID\tweight\nu1\ta\t3\nuserID\tartistID\tweight\nu2\tb\t4\n' >"$tmp/cat.tsv"
expect 1 'cat.tsv:3: a header line in the middle of the data' "$bin" data info "$tmp/cat.tsv"
# 12. data generate writes more than --interactions when every user's floor of 5 needs
# more, and says so (it said only "wrote ...: 25 interactions" after --interactions 10).
expect 0 "note: 25 interactions, not the 10 asked: every user gets at least min\(5, items\) = 5" \
    "$bin" data generate --users 5 --items 5 --interactions 10 --out "$tmp/g.tsv"
grep -q "wrote .*g.tsv: 5 users, 5 items, 25 interactions" "$tmp/out" || fail "generate: $(cat "$tmp/out")"
[ "$(wc -l <"$tmp/g.tsv")" = 25 ] || fail "g.tsv has $(wc -l <"$tmp/g.tsv") lines"
"$bin" data generate --users 5 --items 50 --interactions 40 --out "$tmp/g.tsv" >"$tmp/out" 2>"$tmp/err" || fail "generate 40"
[ -s "$tmp/err" ] && fail "a note when the count was met: $(cat "$tmp/err")"
# 13. millisecond timestamps: read as seconds (the order is the same), and data info says
# they look like milliseconds rather than showing the year 51972 without a word.
printf 'user,item,rating,timestamp\n1,2,3,1577923200000\n1,3,4,1577923300000\n' >"$tmp/ms.csv"
"$bin" data info "$tmp/ms.csv" >"$tmp/out" || fail "ms.csv"
grep -q "^time span     .* (read as seconds; these look like milliseconds since 1970" "$tmp/out" || fail "ms: $(cat "$tmp/out")"
"$bin" data info "$tmp/gr.csv" >"$tmp/out" || fail "gr.csv again"
grep -q "milliseconds" "$tmp/out" && fail "a milliseconds note on seconds: $(cat "$tmp/out")"
# 14. a European file: ';' between fields and a decimal comma in the rating
printf 'user;item;rating\n1;2;3,5\n1;3;4\n' >"$tmp/semi.csv"
expect 1 "semi.csv:2: rating \"3,5\" is not a number; expected a decimal in \[0, 10\] \(a decimal comma: write the decimal point '.', as in 3.5\)" \
    "$bin" data info "$tmp/semi.csv"
# 15. --cold-items: the baseline of the summary is fitted and evaluated on the warm split
# the model trained and was evaluated on (it took the whole data: 40 test users against
# the model's 31, pop fitted on the cold items' interactions too).
awk 'BEGIN { for (u = 1; u <= 40; u++) for (k = 0; k < 7; k++) print u "\t" 1 + (u * 5 + k * 11) % 30 "\t1\t" 1000 + k }' >"$tmp/warm.tsv"
awk 'BEGIN { for (i = 1; i <= 30; i++) print i "\tg" i % 4 " decade" i % 3 }' >"$tmp/wf.txt"
"$bin" train --data "$tmp/warm.tsv" --model lightfm --item-features "$tmp/wf.txt" --cold-items 0.2 --centralized --epochs 1 \
    --quiet --metrics-out "$tmp/cm.jsonl" >"$tmp/out" 2>"$tmp/err" || fail "cold run: $(cat "$tmp/err")"
fin=$(tail -1 "$tmp/cm.jsonl" | sed 's/"best".*//' | grep -o '"eval_users":[0-9]*' | tail -1)
base=$(tail -1 "$tmp/cm.jsonl" | sed 's/.*"baseline"//' | grep -o '"eval_users":[0-9]*' | head -1)
[ -n "$fin" ] && [ "$fin" = "$base" ] || fail "final $fin, baseline $base: $(tail -1 "$tmp/cm.jsonl")"
# 16. eval of a model trained with --cold-items scores every test interaction, not the warm
# split training reported: the model file records --cold-items and eval says so.
"$bin" train --data "$tmp/warm.tsv" --model lightfm --item-features "$tmp/wf.txt" --cold-items 0.2 --centralized --epochs 1 \
    --quiet --out "$tmp/cold.fr" >/dev/null 2>&1 || fail "cold run with --out"
expect 0 "fedrec eval: note: .*cold.fr was trained with --cold-items 0.2" "$bin" eval --model "$tmp/cold.fr"
"$bin" train --data "$tmp/warm.tsv" --model lightfm --item-features "$tmp/wf.txt" --centralized --epochs 1 --quiet \
    --out "$tmp/warm.fr" >/dev/null 2>&1 || fail "warm run with --out"
"$bin" eval --model "$tmp/warm.fr" >"$tmp/out" 2>"$tmp/err" || fail "eval warm.fr"
grep -q "cold-items" "$tmp/err" && fail "a cold note without --cold-items: $(cat "$tmp/err")"
# 17. a test file that shares no users or items with the training file (the wrong file, or
# ids of another numbering) gives metrics of nothing; train says how many test users and
# interactions it has no training data for.
printf '1\t1\t1\n1\t2\t1\n2\t2\t1\n2\t3\t1\n3\t1\t1\n3\t3\t1\n' >"$tmp/trx.tsv"
printf '7\t8\t1\n8\t9\t1\n1\t3\t1\n' >"$tmp/tex.tsv"
expect 0 "note: 2 of 3 test users have no training interactions, and 2 of 3 test interactions are of items no training interaction has" \
    "$bin" train --data "$tmp/trx.tsv" --test "$tmp/tex.tsv" --model bpr --rounds 1
"$bin" train --data "$tmp/tr.tsv" --test "$tmp/te.tsv" --model bpr --rounds 1 >"$tmp/out" 2>"$tmp/err" || fail "tr/te"
grep -q "no training interactions" "$tmp/err" && fail "a cold note on warm users: $(cat "$tmp/err")"
# 18. `data info` on a split directory (what `train --data DIR` reads): it describes the
# training part, says so, and counts the test part; a directory without one is refused
# with what a directory needs.
printf '1\t1\t5\t10\n1\t2\t4\t11\n1\t3\t3\t12\n2\t1\t2\t10\n2\t3\t5\t11\n2\t4\t1\t12\n3\t2\t4\t10\n3\t4\t3\t11\n3\t1\t5\t12\n' \
    >"$tmp/sp.tsv"
"$bin" data split "$tmp/sp.tsv" --loo --negatives 1 --out "$tmp/spdir" >/dev/null || fail "split for data info"
"$bin" data info "$tmp/spdir" >"$tmp/out" 2>"$tmp/err" || fail "data info DIR: $(cat "$tmp/err")"
grep -q "^file          $tmp/spdir/train.rating (ncf; the training part of the split in $tmp/spdir)" "$tmp/out" ||
    fail "data info DIR's file line: $(cat "$tmp/out")"
grep -q '^interactions  6$' "$tmp/out" || fail "data info DIR counts train.rating: $(cat "$tmp/out")"
grep -q '^test          3 interactions (test.rating), 1 negative a user (test.negative)$' "$tmp/out" ||
    fail "data info DIR's test line: $(cat "$tmp/out")"
"$bin" data info "$tmp/spdir" --json >"$tmp/out" || fail "data info DIR --json"
grep -q '"test_interactions":3' "$tmp/out" || fail "data info DIR --json: $(cat "$tmp/out")"
mkdir "$tmp/emptydir"
expect 1 "emptydir: is a directory without train.rating; expected a ratings file or a split directory" \
    "$bin" data info "$tmp/emptydir"
# 19. --implicit ignores the rating column's values but still wants numbers there (a
# misread column shows); a column of words gets the way to leave it out, which works.
printf 'user,item,rating\n1,2,good\n1,3,bad\n2,3,good\n' >"$tmp/words.csv"
expect 1 'words.csv:2: rating "good" is not a number; expected a number \(implicit: every row is a positive, its value unused\) \(a column of words: --format delimited --header --user-col U --item-col I reads only the columns given\)' \
    "$bin" data info "$tmp/words.csv" --implicit
"$bin" data info "$tmp/words.csv" --format delimited --header --user-col 1 --item-col 2 >"$tmp/out" 2>"$tmp/err" ||
    fail "the hint's command: $(cat "$tmp/err")"
grep -q '^interactions  3$' "$tmp/out" || fail "the hint's command read: $(cat "$tmp/out")"
# 20. a ranking model asked for on explicit ratings (no evaluation negatives given) takes
# every rating as a positive, and says so; not with negatives (an NCF split), not on
# implicit data, not for a rating model.
expect 0 'note: --model bpr: the ratings differ \(explicit feedback\), and a ranking model learns which items each user rated: every rating is a positive, a low one as much as a high one \(--model mf predicts the ratings instead\)' \
    "$bin" train --data "$tmp/sp.tsv" --model bpr --rounds 1
"$bin" train --data "$tmp/spdir" --model bpr --rounds 1 >"$tmp/out" 2>"$tmp/err" || fail "bpr on the split: $(cat "$tmp/err")"
grep -q "a ranking model learns" "$tmp/err" && fail "the note with evaluation negatives: $(cat "$tmp/err")"
"$bin" train --data "$tmp/sp.tsv" --implicit --model bpr --rounds 1 >"$tmp/out" 2>"$tmp/err" || fail "bpr --implicit"
grep -q "a ranking model learns" "$tmp/err" && fail "the note on implicit data: $(cat "$tmp/err")"
"$bin" train --data "$tmp/sp.tsv" --model mf --rounds 1 >"$tmp/out" 2>"$tmp/err" || fail "mf"
grep -q "a ranking model learns" "$tmp/err" && fail "the note for mf: $(cat "$tmp/err")"
echo "cli_newuser: ok"
