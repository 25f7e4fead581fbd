#!/bin/sh
# The shipped default config parses with the real parsers, and so does every key it
# shows commented out. Usage: check-default-config.sh ZLAYER_TUNNEL CONFIG. TAP.
cli=$1
config=$2
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0

result() {
  # result STATUS DESCRIPTION [LOG]
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then
    echo "ok $n - $2"
  else
    echo "not ok $n - $2"
    [ -n "${3:-}" ] && sed 's/^/# /' "$3"
    fail=1
  fi
}

echo "1..6"

"$cli" server --config "$config" --check >"$tmp/out" 2>&1
result $? "server --check accepts the shipped config" "$tmp/out"

# the shipped config runs no agent: --check must say so (configuration error, 3)
"$cli" agent --config "$config" --check >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q '\[agent\]' "$tmp/out"
result $? "agent --check rejects the shipped config (no [agent] group) with exit 3" "$tmp/out"

# "#key=value" and "#[group]" lines are the documented keys: all of them together must
# parse (unknown keys are errors, so a misspelt example fails here)
sed 's/^#\([a-z[]\)/\1/' "$config" >"$tmp/all.conf"
grep -q '^\[agent\]' "$tmp/all.conf" && grep -q '^\[service:' "$tmp/all.conf"
result $? "uncommenting gives [agent] and [service:*] groups"

"$cli" server --config "$tmp/all.conf" --check >"$tmp/out" 2>&1
result $? "server --check accepts every documented key" "$tmp/out"

"$cli" agent --config "$tmp/all.conf" --check >"$tmp/out" 2>&1
result $? "agent --check accepts every documented key" "$tmp/out"

# --check really checks: a bad value fails with exit 3 and names the key
sed 's/^#port-range=.*/port-range=20-10/' "$config" >"$tmp/bad.conf"
"$cli" server --config "$tmp/bad.conf" --check >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q 'port-range' "$tmp/out"
result $? "server --check rejects a bad port-range with exit 3" "$tmp/out"

exit $fail
