#!/usr/bin/env bash
# fedrec train --model lightgcn, centralized and federated, with its presets on small
# generated data; eval reproduces the last evaluation of training from the model file
# (the training graph reloaded through the id maps); recommend lists items the user has
# not trained on. The same for lightgcn-full (centralized, --layers 3), which is refused
# federated, and --layers refused for lightgcn.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_lightgcn: FAIL: $*" >&2; exit 1; }
"$bin" data generate --users 80 --items 50 --interactions 2000 --seed 5 --out "$tmp/r.tsv" >/dev/null || fail "data generate"
for mode in centralized federated; do
  flag=""; steps="--rounds 3"
  [ $mode = centralized ] && { flag="--centralized"; steps="--epochs 4"; }
  "$bin" train $flag --model lightgcn --data "$tmp/r.tsv" --implicit $steps --threads 2 --quiet \
      --out "$tmp/$mode.fr" --metrics-out "$tmp/$mode.jsonl" >"$tmp/out" || fail "train $mode: $(cat "$tmp/out")"
  grep -q "^summary: $mode lightgcn" "$tmp/out" || fail "$mode summary: $(cat "$tmp/out")"
  "$bin" eval --model "$tmp/$mode.fr" --json >"$tmp/ev" || fail "eval $mode"
  h1=$(sed 's/.*"hr@10":\([0-9.e-]*\).*/\1/' "$tmp/ev")
  h2=$(grep -v summary "$tmp/$mode.jsonl" | grep '"hr@10"' | tail -1 | sed 's/.*"hr@10":\([0-9.e-]*\).*/\1/')
  [ -n "$h1" ] && [ "$h1" = "$h2" ] || fail "$mode: eval hr@10 '$h1' differs from training's last '$h2'"
  user=$(head -1 "$tmp/r.tsv" | cut -f1)
  "$bin" recommend --model "$tmp/$mode.fr" --user "$user" -k 5 >"$tmp/rec" || fail "recommend $mode"
  [ "$(grep -c '^ *[0-9]*\. item' "$tmp/rec")" -eq 5 ] || fail "recommend should list 5 items: $(cat "$tmp/rec")"
  for it in $(grep '^ *[0-9]*\. item' "$tmp/rec" | awk '{print $3}'); do
    ! awk -v u="$user" -v i="$it" '$1 == u && $2 == i {found = 1} END {exit !found}' "$tmp/r.tsv" \
      || fail "$mode: recommended item $it is one the user trained on"
  done
done

# the whole-graph model: centralized only, its depth in the model file
"$bin" train --centralized --model lightgcn-full --layers 3 --data "$tmp/r.tsv" --implicit --epochs 4 --threads 2 \
    --quiet --out "$tmp/full.fr" --metrics-out "$tmp/full.jsonl" >"$tmp/out" || fail "train lightgcn-full: $(cat "$tmp/out")"
grep -q "^summary: centralized lightgcn-full" "$tmp/out" || fail "lightgcn-full summary: $(cat "$tmp/out")"
"$bin" eval --model "$tmp/full.fr" --json >"$tmp/ev" || fail "eval lightgcn-full"
h1=$(sed 's/.*"hr@10":\([0-9.e-]*\).*/\1/' "$tmp/ev")
h2=$(grep -v summary "$tmp/full.jsonl" | grep '"hr@10"' | tail -1 | sed 's/.*"hr@10":\([0-9.e-]*\).*/\1/')
[ -n "$h1" ] && [ "$h1" = "$h2" ] || fail "lightgcn-full: eval hr@10 '$h1' differs from training's last '$h2'"
"$bin" recommend --model "$tmp/full.fr" --user "$(head -1 "$tmp/r.tsv" | cut -f1)" -k 5 >"$tmp/rec" \
    || fail "recommend lightgcn-full"
[ "$(grep -c '^ *[0-9]*\. item' "$tmp/rec")" -eq 5 ] || fail "lightgcn-full: recommend should list 5 items"
rc=0; "$bin" train --model lightgcn-full --data "$tmp/r.tsv" --implicit --rounds 1 --quiet >"$tmp/out" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q -- "--centralized" "$tmp/out" || fail "lightgcn-full federated: rc $rc, $(cat "$tmp/out")"
rc=0; "$bin" train --centralized --model lightgcn --layers 2 --data "$tmp/r.tsv" --implicit --epochs 1 --quiet \
    >"$tmp/out" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "lightgcn-full" "$tmp/out" || fail "--layers on lightgcn: rc $rc, $(cat "$tmp/out")"
echo "cli_lightgcn: ok"
