#!/bin/sh
# run-fuzzer.sh TARGET SEEDS DICT ARTIFACTS: one bounded libFuzzer run of TARGET, as
# the 'fuzz' test suite does it: the seeds first (a crash there fails at once), then
# fuzzing for ZLT_FUZZ_TIME seconds (default 20). New inputs go to a temporary corpus
# that is removed afterwards; a crash leaves its input in ARTIFACTS (printed below).
# DICT may be empty. Extra libFuzzer options can come in ZLT_FUZZ_ARGS.
set -eu
target=$1
seeds=$2
dict=$3
artifacts=$4

work=$(mktemp -d "${TMPDIR:-/tmp}/zlt-fuzz-corpus-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$artifacts"
name=$(basename "$target")

# libFuzzer's own exit code for a crash is 77, which meson counts as "skipped"
set -- -max_total_time="${ZLT_FUZZ_TIME:-20}" -timeout=25 -rss_limit_mb=4096 \
  -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
  -artifact_prefix="$artifacts/$name-"
[ -z "$dict" ] || set -- "$@" -dict="$dict"
# shellcheck disable=SC2086
"$target" "$@" ${ZLT_FUZZ_ARGS:-} "$work" "$seeds"
