#!/bin/sh
# The shipped default config, and every key it shows commented out, passes the one check
# of the whole file that `server --check`, `agent --check`, `zlayer-tunneld --check` and
# the daemon's reload share; and that check really checks: the validator is configured
# (its token file read), [node:*] groups are built, unknown groups are refused, relative
# paths mean the same to every command.
# Usage: check-default-config.sh ZLAYER_TUNNEL ZLAYER_TUNNELD CONFIG. TAP.
# absolute: some checks run in other directories
abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
cli=$(abspath "$1")
daemon=$(abspath "$2")
config=$3
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

# expect_fail CODE PATTERN COMMAND...: exits CODE and says PATTERN
expect_fail() {
  code=$1
  pattern=$2
  shift 2
  "$@" >"$tmp/out" 2>&1
  rc=$?
  [ $rc -eq "$code" ] && grep -q -- "$pattern" "$tmp/out"
}

echo "1..21"

# the files the shipped config names, made here: /etc/zlayer-tunnel → $tmp/etc
etc=$tmp/etc
mkdir -m 700 "$etc"
(cd "$etc" && "$cli" token new --name agent -o agent.token >token.out 2>&1) &&
  sed -n '3p' "$etc/token.out" >"$etc/tokens" && chmod 600 "$etc/tokens" &&
  cp "$etc/agent.token" "$etc/db-link.token" &&
  certtool --generate-privkey --key-type=ecdsa --outfile "$etc/key.pem" >/dev/null 2>&1 &&
  printf 'cn = localhost\nexpiration_days = 2\ntls_www_server\nsigning_key\n' >"$etc/cert.tmpl" &&
  certtool --generate-self-signed --load-privkey "$etc/key.pem" --template "$etc/cert.tmpl" \
    --outfile "$etc/cert.pem" >/dev/null 2>&1 &&
  cp "$etc/cert.pem" "$etc/ca.pem"
result $? "the files the config names (tokens, certificate, key) are made"
sed "s|/etc/zlayer-tunnel/|$etc/|g" "$config" >"$tmp/shipped.conf"

"$cli" server --config "$tmp/shipped.conf" --check >"$tmp/out" 2>&1
result $? "server --check accepts the shipped config" "$tmp/out"

"$daemon" --config "$tmp/shipped.conf" --check >"$tmp/out" 2>&1
result $? "zlayer-tunneld --check accepts the shipped config" "$tmp/out"

# the shipped config runs no agent: --check must say so (configuration error, 3)
expect_fail 3 '\[agent\]' "$cli" agent --config "$tmp/shipped.conf" --check
result $? "agent --check rejects the shipped config (no [agent] group) with exit 3" "$tmp/out"

# "#key=value" and "#[group]" lines are the documented keys: all of them together must
# parse (unknown keys are errors, so a misspelt example fails here)
sed 's/^#\([a-z[]\)/\1/' "$tmp/shipped.conf" >"$tmp/all.conf"
grep -q '^\[agent\]' "$tmp/all.conf" && grep -q '^\[service:' "$tmp/all.conf" &&
  grep -q '^\[node:' "$tmp/all.conf"
result $? "uncommenting gives [agent], [service:*] and [node:*] groups"

"$cli" server --config "$tmp/all.conf" --check >"$tmp/out" 2>&1
result $? "server --check accepts every documented key" "$tmp/out"

"$cli" agent --config "$tmp/all.conf" --check >"$tmp/out" 2>&1
result $? "agent --check accepts every documented key" "$tmp/out"

"$daemon" --config "$tmp/all.conf" --check >"$tmp/out" 2>&1
result $? "zlayer-tunneld --check accepts every documented key" "$tmp/out"

# --check really checks: a bad value fails with exit 3 and names the key
sed 's/^#port-range=.*/port-range=20-10/' "$tmp/shipped.conf" >"$tmp/bad.conf"
expect_fail 3 'port-range' "$cli" server --config "$tmp/bad.conf" --check
result $? "server --check rejects a bad port-range with exit 3" "$tmp/out"

# the validator is configured: a token file that is not there fails the check
sed "s|^path=.*|path=$tmp/missing-tokens|" "$tmp/shipped.conf" >"$tmp/bad.conf"
expect_fail 3 'missing-tokens' "$cli" server --config "$tmp/bad.conf" --check
result $? "server --check reads the validator's token file" "$tmp/out"

# groups the server command does not run are checked too, as the daemon would
sed 's/^#protocol=tcp/protocol=sctp/; s/^#\(\[node:\)/\1/; s/^#\(from\|to\|server\|local-port\|token-file\)=/\1=/' \
  "$tmp/shipped.conf" >"$tmp/bad.conf"
expect_fail 3 'protocol' "$cli" server --config "$tmp/bad.conf" --check
result $? "server --check rejects [node:*] protocol=sctp, as the daemon does" "$tmp/out"
expect_fail 3 'protocol' "$daemon" --config "$tmp/bad.conf" --check
result $? "zlayer-tunneld --check rejects it with exit 3" "$tmp/out"

# a node-only config: nothing for `agent` to run, but the file is valid for the daemon
cat >"$tmp/node-only.conf" <<EOF
[daemon]
node-name=edge-1
[node:db-link]
from=edge-1
to=hub
server=ws://127.0.0.1:1/tunnel/v1
local-port=5432
token-file=$etc/db-link.token
EOF
"$cli" agent --config "$tmp/node-only.conf" --check >"$tmp/out" 2>&1 &&
  grep -q 'node:NAME' "$tmp/out" && grep -q 'valid' "$tmp/out"
result $? "agent --check checks a node-only config, noting the daemon runs it" "$tmp/out"

# a misspelt group is not silently ignored
printf '[sevice:web]\nlocal-port=80\n' >>"$tmp/node-only.conf"
expect_fail 3 'sevice:web' "$cli" agent --config "$tmp/node-only.conf" --check
result $? "an unknown group fails the check and is named" "$tmp/out"

# relative paths: in a file they start at its directory, on the command line at the
# working directory, for every command alike
mkdir "$tmp/sub"
sed "s|$etc/tokens|../etc/tokens|" "$tmp/shipped.conf" >"$tmp/sub/relative.conf"
(cd / && "$cli" server --config "$tmp/sub/relative.conf" --check) >"$tmp/out" 2>&1
result $? "server: a relative path in the file starts at the file's directory" "$tmp/out"
(cd / && "$daemon" --config "$tmp/sub/relative.conf" --check) >"$tmp/out" 2>&1
result $? "zlayer-tunneld: the same" "$tmp/out"
# a relative --config too: its directory is made absolute before anything uses it
(cd "$tmp/sub" && "$daemon" --config relative.conf --check) >"$tmp/out" 2>&1
result $? "zlayer-tunneld: a relative --config with relative paths in it" "$tmp/out"
(cd "$tmp/sub" && "$cli" server --config ./relative.conf --check) >"$tmp/out" 2>&1
result $? "server: the same" "$tmp/out"
(cd "$etc" && "$cli" agent --config "$tmp/sub/relative.conf" --server wss://127.0.0.1:1 \
  --token-file agent.token --ca-file ca.pem --check) >"$tmp/out" 2>&1
result $? "agent: relative --token-file and --ca-file start at the working directory" "$tmp/out"

# options reach the same check: --udp-idle-timeout takes a duration, and its bounds
"$cli" server --token-file "$etc/tokens" --udp-idle-timeout 2m --check >"$tmp/out" 2>&1
result $? "server --udp-idle-timeout 2m passes" "$tmp/out"
expect_fail 3 'udp-idle-timeout' "$cli" server --token-file "$etc/tokens" --udp-idle-timeout 0 --check
result $? "server --udp-idle-timeout 0 is refused, naming the key" "$tmp/out"

exit $fail
