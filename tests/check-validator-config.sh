#!/bin/sh
# `server --check` and `zlayer-tunneld --check` configure the validator, and every
# [validator:NAME] group: a missing file, an unknown key, a bad value, a missing key or
# an unknown validator fail with exit status 3 and a message naming the group and the
# key. Prints TAP.
#
# Usage: check-validator-config.sh CLI DAEMON (ZLT_PLUGIN_DIR: the build's plugins)
set -u
cli=$1 daemon=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zlt-check-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0
: >"$tmp/tokens"
chmod 600 "$tmp/tokens"
server='[server]
listen=127.0.0.1:0
port-range=29760-29769
'

# $1: description; $2: text the message must hold; $3: the config after [server]
case_of() {
  printf '%s%s' "$server" "$3" >"$tmp/c.conf"
  for prog in server daemon; do
    if [ $prog = server ]; then
      "$cli" server --check --config "$tmp/c.conf" >"$tmp/out" 2>&1
    else
      "$daemon" --check --config "$tmp/c.conf" >"$tmp/out" 2>&1
    fi
    rc=$?
    n=$((n + 1))
    if [ $rc -eq 3 ] && grep -qF -- "$2" "$tmp/out"; then
      echo "ok $n - $prog --check refuses $1"
    else
      echo "not ok $n - $prog --check refuses $1 (exit $rc, expected 3 and ‘$2’)"
      sed 's/^/# /' "$tmp/out"
      fail=1
    fi
  done
}

case_of "a missing token file" "$tmp/missing" "validator=token-file
[validator:token-file]
path=$tmp/missing
"
case_of "token-file without its path" "[validator:token-file] path" "validator=token-file
[validator:token-file]
"
case_of "an unknown token-file key" "[validator:token-file] colour" "validator=token-file
[validator:token-file]
path=$tmp/tokens
colour=blue
"
case_of "a bad token-file value" "[validator:token-file] fail-closed" "validator=token-file
[validator:token-file]
path=$tmp/tokens
fail-closed=maybe
"
case_of "an unknown allow-all key" "[validator:allow-all] colour" "validator=allow-all
insecure=true
[validator:allow-all]
colour=blue
"
case_of "allow-all without insecure=true" "allow-all" "validator=allow-all
"
case_of "an unused group with an unknown key" "[validator:token-file] colour" "validator=allow-all
insecure=true
[validator:token-file]
path=$tmp/tokens
colour=blue
"
case_of "an unused group of an unknown validator" "[validator:no-such]" "validator=token-file
[validator:token-file]
path=$tmp/tokens
[validator:no-such]
"

# and a good one passes
printf '%svalidator=token-file\n[validator:token-file]\npath=%s\n' "$server" "$tmp/tokens" >"$tmp/c.conf"
n=$((n + 1))
if "$cli" server --check --config "$tmp/c.conf" >"$tmp/out" 2>&1; then
  echo "ok $n - server --check accepts a good config"
else
  echo "not ok $n - server --check accepts a good config"
  sed 's/^/# /' "$tmp/out"
  fail=1
fi
echo "1..$n"
exit $fail
