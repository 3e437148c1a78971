#!/usr/bin/env bash
# The shared library's dynamic symbol table holds the public API and nothing else: every
# defined function is an fr_ name declared in include/fedrec, no fri_ internal leaks, and
# every function the public headers declare is exported.
set -euo pipefail
lib="$1"; inc="$2"
fail() { echo "exports: FAIL: $*" >&2; exit 1; }
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u)
[ -n "$syms" ] || fail "no symbols in $lib"
bad=$(echo "$syms" | grep -v '^fr_' || true)
[ -z "$bad" ] || fail "non-fr_ symbols exported: $(echo $bad | head -c 400)"
declared=$(grep -ho 'FR_API[^;(]*\bfr_[a-z0-9_]*(' "$inc"/*.h | grep -o 'fr_[a-z0-9_]*($' | tr -d '(' | sort -u)
extra=$(comm -23 <(echo "$syms") <(echo "$declared"))
[ -z "$extra" ] || fail "exported but not in the public headers: $(echo $extra | head -c 400)"
missing=$(comm -13 <(echo "$syms") <(echo "$declared"))
[ -z "$missing" ] || fail "declared in the public headers but not exported: $(echo $missing | head -c 400)"
echo "exports: $(echo "$syms" | wc -l) fr_ functions, nothing else"
