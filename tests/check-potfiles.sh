#!/bin/sh
# Fails when a source file with translatable strings is missing from po/POTFILES.in.
# Prints TAP so meson reports each file.
srcdir=${1:-$(dirname "$0")/..}
cd "$srcdir" || exit 1
n=0
fail=0
out=""
for f in $(find core plugins daemon -name '*.c' 2>/dev/null | sort); do
  grep -q '_ \?("' "$f" || continue
  n=$((n + 1))
  if grep -qx "$f" po/POTFILES.in; then
    out="$out
ok $n - $f listed"
  else
    out="$out
not ok $n - $f has _() strings but is not in po/POTFILES.in"
    fail=1
  fi
done
for f in $(grep -v '^#' po/POTFILES.in | grep -v '^$'); do
  n=$((n + 1))
  if [ -f "$f" ]; then
    out="$out
ok $n - $f exists"
  else
    out="$out
not ok $n - po/POTFILES.in lists $f which does not exist"
    fail=1
  fi
done
echo "1..$n"
printf '%s\n' "$out" | sed '/^$/d'
exit $fail
