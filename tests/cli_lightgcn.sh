#!/usr/bin/env bash
# fedrec train --model lightgcn, centralized and federated, with its presets on small
# generated data; eval reproduces the last evaluation of training from the model file
# (the training graph reloaded through the id maps); recommend lists items the user has
# not trained on.
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
echo "cli_lightgcn: ok"
