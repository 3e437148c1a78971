#!/usr/bin/env bash
# End-to-end checks of the fedrec program: exit codes and messages a user relies on.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_smoke: FAIL: $*" >&2; exit 1; }
"$bin" --help | grep -q "usage: fedrec" || fail "--help"
"$bin" version | grep -q "fedrec " || fail "version"
set +e; "$bin" nosuchcommand 2>"$tmp/err"; rc=$?; set -e
[ $rc -eq 2 ] || fail "unknown command should exit 2, got $rc"
grep -q "unknown command" "$tmp/err" || fail "unknown command message"
echo "cli_smoke: passed"
