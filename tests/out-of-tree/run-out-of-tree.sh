#!/bin/sh
# The out-of-tree test: installs the build into a temporary DESTDIR, builds a validator
# (zlt-oot-validator.c) against the installed zlayer-tunnel-1.pc and headers only, and
# loads it: the installed CLI's `server --check` configures it (good and bad configs),
# then test-oot-login logs an agent in through it. Prints TAP.
#
# Usage: run-out-of-tree.sh BUILD_ROOT PREFIX LIBDIR BINDIR PLUGINDIR CC SOURCE LOGIN_TEST
set -u
build_root=$1 prefix=$2 libdir=$3 bindir=$4 plugindir=$5 cc=$6 source=$7 login_test=$8

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zlt-oot-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
  n=$((n + 1))
  echo "not ok $n - $1"
  [ -f "$2" ] && sed 's/^/# /' "$2"
  fail=1
}
result() { if [ "$1" -eq 0 ]; then ok "$2"; else not_ok "$2" "$3"; fi; }
finish() { echo "1..$n"; exit $fail; }

dest=$tmp/dest
timeout 120 meson install -C "$build_root" --destdir "$dest" --no-rebuild --quiet >"$tmp/out" 2>&1
result $? "meson install into a DESTDIR" "$tmp/out"
[ $fail -eq 0 ] || finish

# the installed .pc file, its prefix moved under DESTDIR (only ours: glib's stay)
pcdir=$tmp/pkgconfig
mkdir -p "$pcdir"
sed "s|^prefix=.*|prefix=$dest$prefix|" "$dest$libdir/pkgconfig/zlayer-tunnel-1.pc" \
  >"$pcdir/zlayer-tunnel-1.pc" 2>"$tmp/out"
pc() { PKG_CONFIG_PATH=$pcdir pkg-config "$@"; }
pc --exists zlayer-tunnel-1 >"$tmp/out" 2>&1
result $? "zlayer-tunnel-1.pc is installed" "$tmp/out"
cflags=$(pc --cflags zlayer-tunnel-1) libs=$(pc --libs zlayer-tunnel-1)
case " $cflags " in
  *"-I$dest$prefix/include/zlayer-tunnel-1 "*) ok "its include directory is the installed one" ;;
  *) echo "cflags: $cflags" >"$tmp/out"; not_ok "its include directory is the installed one" "$tmp/out" ;;
esac
pc --print-requires zlayer-tunnel-1 >"$tmp/requires" 2>&1
if grep -Eq 'soup|json' "$tmp/requires"; then
  not_ok "Requires: names neither libsoup nor json-glib" "$tmp/requires"
else
  ok "Requires: names neither libsoup nor json-glib"
fi

# the validator: installed headers and library only, warnings are errors, every symbol
# it uses must be exported
mkdir -p "$tmp/oot"
# shellcheck disable=SC2086
"$cc" -shared -fPIC -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter -Werror \
  -o "$tmp/oot/libzlt-oot.so" "$source" $cflags $libs \
  -Wl,--no-undefined -Wl,-rpath,"$dest$libdir" >"$tmp/out" 2>&1
result $? "a validator builds against the installed SDK alone" "$tmp/out"
[ $fail -eq 0 ] || finish

# the installed CLI, its installed plugins plus the out-of-tree one (a search path)
cli=$dest$bindir/zlayer-tunnel
run_cli() {
  LD_LIBRARY_PATH=$dest$libdir ZLT_PLUGIN_DIR=$tmp/oot:$dest$plugindir "$cli" "$@"
}
hash=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
conf() {
  printf '[server]\nlisten=127.0.0.1:0\nport-range=29750-29759\nvalidator=oot\n[validator:oot]\n%s' "$1" >"$tmp/server.conf"
}
conf "token-sha256=$hash
"
run_cli server --check --config "$tmp/server.conf" >"$tmp/out" 2>&1
result $? "server --check loads and configures the out-of-tree validator" "$tmp/out"

# $1: config lines of [validator:oot]; $2: what the message must name
expect_refused() {
  conf "$1"
  run_cli server --check --config "$tmp/server.conf" >"$tmp/out" 2>&1
  rc=$?
  if [ $rc -eq 3 ] && grep -qF "$2" "$tmp/out"; then
    ok "server --check refuses $3, naming $2"
  else
    echo "# exit status $rc" >>"$tmp/out"
    not_ok "server --check refuses $3, naming $2" "$tmp/out"
  fi
}
expect_refused "token-sha256=$hash
colour=blue
" "[validator:oot] colour" "an unknown key"
expect_refused "" "[validator:oot] token-sha256" "a missing key"
expect_refused "token-sha256=xyz
" "[validator:oot] token-sha256" "a bad value"

ZLT_OOT_PLUGIN_DIR=$tmp/oot LD_LIBRARY_PATH=$dest$libdir timeout 60 "$login_test" >"$tmp/out" 2>&1
result $? "an agent logs in through the out-of-tree validator (test-oot-login)" "$tmp/out"
finish
