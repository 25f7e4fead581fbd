#!/bin/sh
# Extracts the catalog the way `meson compile <package>-pot` does (xgettext over
# po/POTFILES.in with the glib preset's keywords) into a temporary file, and checks
# that it worked and holds known strings of the CLI, the daemon and the core (which
# clang-format writes as `_ ("…")`). Usage: check-pot.sh SOURCE_ROOT. TAP.
srcdir=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
pot=$tmp/zlayer-tunnel.pot
n=0
fail=0

result() {
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then
    echo "ok $n - $2"
  else
    echo "not ok $n - $2"
    fail=1
  fi
}

has() {
  # has DESCRIPTION MSGID (as it appears in the .pot, quotes escaped)
  grep -qF "msgid \"$2\"" "$pot"
  result $? "$1"
}

echo "1..9"
xgettext --package-name=zlayer-tunnel --directory="$srcdir" --output="$pot" \
  --files-from="$srcdir/po/POTFILES.in" --from-code=UTF-8 --add-comments \
  --keyword=_ --keyword=N_ --keyword=C_:1c,2 --keyword=NC_:1c,2 --keyword=g_dcgettext:2 \
  --keyword=g_dngettext:2,3 --keyword=g_dpgettext2:2c,3 --flag=N_:1:pass-c-format \
  --flag=C_:2:pass-c-format --flag=NC_:2:pass-c-format --flag=g_dngettext:2:pass-c-format \
  --flag=g_strdup_printf:1:c-format --flag=g_string_printf:2:c-format \
  --flag=g_string_append_printf:2:c-format --flag=g_error_new:3:c-format \
  --flag=g_set_error:4:c-format --flag=g_print:1:c-format --flag=g_printerr:1:c-format \
  >"$tmp/log" 2>&1
rc=$?
[ $rc -ne 0 ] && sed 's/^/# /' "$tmp/log"
result $rc "xgettext extracts po/POTFILES.in"
[ -s "$pot" ]
result $? "the catalog is not empty"

has "CLI: daemon not running" "zlayer-tunneld is not running (no owner of %s on the system bus)"
has "CLI: --check option" "Check the configuration and exit without starting"
has "CLI: table column" "SERVICES"
has "CLI: command help" "Expose a local service through the daemon's agent."
has "daemon: D-Bus permission error" "only root may do this"
has "core, written as _ (\"…\"): config error" "group missing"
has "plugin: token-file validator" "[%s] path: set it to the token file"
exit $fail
