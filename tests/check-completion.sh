#!/usr/bin/env bash
# The bash completion (completion/zlayer-tunnel), run by bash itself against the build
# tree's programs: the script is sourced in `bash --norc`, COMP_WORDS, COMP_CWORD,
# COMP_LINE and COMP_POINT are set as readline sets them (words split at '=' too), the
# function `complete -p` registered is called, and COMPREPLY is checked. Twice: with
# bash-completion's helpers loaded (when installed) and without them.
#
#   check-completion.sh COMPLETION ZLAYER_TUNNEL ZLAYER_TUNNELD
#
# Under dbus-run-session it also starts the build tree's zlayer-tunneld on the private
# session bus and checks that `unexpose` and `session start` offer its services.
# Prints TAP.
set -u

self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

if [ "${1:-}" != --mode ]; then
  # the parent: each mode in a fresh `bash --norc`, then the plan
  # absolute: the runs below are in scratch directories
  abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
  completion=$(abs "$1") cli=$(abs "$2") daemon=$(abs "$3")
  tmp=$(mktemp -d) || exit 1
  daemon_pid=
  cleanup() {
    if [ -n "$daemon_pid" ]; then
      kill "$daemon_pid" 2>/dev/null
      wait "$daemon_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
  }
  trap cleanup EXIT
  trap 'exit 1' INT TERM

  # a daemon with an agent role and two services (its server is unreachable: the
  # services are listed all the same)
  daemon_up=no
  if [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] && [ -x "$daemon" ]; then
    (umask 077 && echo "zlt_$(printf '%064d' 0)" >"$tmp/agent.token")
    cat >"$tmp/daemon.conf" <<CONF
[agent]
server=ws://127.0.0.1:9/tunnel/v1
token-file=$tmp/agent.token
backoff-min=5
backoff-max=5

[service:web-1]
local-port=8080

[service:db]
local-port=5432
expose=internal
CONF
    "$daemon" --session --config "$tmp/daemon.conf" >"$tmp/daemon.log" 2>&1 &
    daemon_pid=$!
    # bounded poll until the services are on the bus (or the daemon died)
    for _ in $(seq 1 200); do
      if "$cli" services --session --json 2>/dev/null | grep -q '"name" : "db"'; then
        daemon_up=yes
        break
      fi
      kill -0 "$daemon_pid" 2>/dev/null || break
      sleep 0.1
    done
    [ $daemon_up = yes ] || sed 's/^/# daemon: /' "$tmp/daemon.log"
  fi

  n=0
  fail=0
  for mode in bash-completion plain; do
    mkdir "$tmp/$mode"
    out=$(cd "$tmp/$mode" && env -u ZLT_BUS -u BASH_ENV bash --norc --noprofile "$self" --mode "$mode" \
      "$completion" "$cli" "$daemon" "$daemon_up" 2>&1)
    rc=$?
    while IFS= read -r line; do
      case $line in
        "ok "* | "not ok "*)
          n=$((n + 1))
          status=${line%% -*}
          echo "$status $n -${line#* -}"
          [ "$status" = ok ] || fail=1
          ;;
        *) echo "# $line" ;;
      esac
    done <<<"$out"
    if [ $rc -ne 0 ]; then
      n=$((n + 1))
      echo "not ok $n - the $mode run exited $rc"
      fail=1
    fi
  done
  echo "1..$n"
  exit $fail
fi

# ---- a child: one mode, in bash --norc, in a scratch directory ----
mode=$2 completion=$3 cli=$4 daemon=$5 daemon_up=$6

if [ "$mode" = bash-completion ]; then
  bc=/usr/share/bash-completion/bash_completion
  if [ ! -r "$bc" ]; then
    echo "ok - [$mode] # SKIP $bc is not installed"
    exit 0
  fi
  # shellcheck disable=SC1090
  . "$bc"
fi
# shellcheck disable=SC1090
. "$completion"

# the build tree's programs, found on PATH as an installed one would be
PATH=$(dirname "$cli"):$(dirname "$daemon"):$PATH
export ZLT_COMPLETION_PROGRAM=$cli ZLT_COMPLETION_DAEMON=$daemon

check() {
  # check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then
    echo "ok - [$mode] $1"
  else
    echo "not ok - [$mode] $1"
    echo "expected: «$2»"
    echo "got:      «$3»"
  fi
}

# complete LINE: COMPREPLY for the cursor at the end of LINE, sorted, one line
complete_line() {
  local line=$1 w
  COMP_LINE=$line
  COMP_POINT=${#line}
  COMP_WORDS=()
  # readline's split: blanks, and '=' stands alone (it is in COMP_WORDBREAKS)
  for w in $line; do
    if [[ $w == *=* ]]; then
      COMP_WORDS+=("${w%%=*}" = )
      [ -n "${w#*=}" ] && COMP_WORDS+=("${w#*=}")
    else
      COMP_WORDS+=("$w")
    fi
  done
  [[ $line == *' ' || $line == *= ]] && COMP_WORDS+=('')
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  local spec func
  spec=$(complete -p "${COMP_WORDS[0]}" 2>/dev/null) || {
    echo "<no completion registered for ${COMP_WORDS[0]}>"
    return
  }
  func=$(sed -nE 's/.* -F ([^ ]+) .*/\1/p' <<<"$spec")
  "$func" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//'
}

# ---- registration ----
check "complete -p zlayer-tunnel" "complete -F _zlayer_tunnel zlayer-tunnel" \
  "$(complete -p zlayer-tunnel 2>&1)"
check "complete -p zlayer-tunneld" "complete -F _zlayer_tunneld zlayer-tunneld" \
  "$(complete -p zlayer-tunneld 2>&1)"

# ---- commands and verbs ----
check "zlayer-tunnel st<TAB>" "status" "$(complete_line 'zlayer-tunnel st')"
check "zlayer-tunnel se<TAB>" "server services session sessions" \
  "$(complete_line 'zlayer-tunnel se')"
all=$(complete_line 'zlayer-tunnel ')
check "zlayer-tunnel <TAB>: every command of --help" \
  "access agent demo disconnect expose monitor node nodes reload server services session sessions status token tunnels unexpose" \
  "$all"
check "zlayer-tunnel --<TAB>" "--help --version" "$(complete_line 'zlayer-tunnel --')"
check "zlayer-tunnel node <TAB>" "add remove" "$(complete_line 'zlayer-tunnel node ')"
check "zlayer-tunnel session <TAB>" "start stop" "$(complete_line 'zlayer-tunnel session ')"
check "zlayer-tunnel session st<TAB>" "start stop" "$(complete_line 'zlayer-tunnel session st')"
check "zlayer-tunnel token <TAB>" "new" "$(complete_line 'zlayer-tunnel token ')"
check "zlayer-tunnel status <TAB>: no verbs" "" "$(complete_line 'zlayer-tunnel status ')"

# ---- options ----
check "zlayer-tunnel agent --to<TAB>" "--token-env --token-file" \
  "$(complete_line 'zlayer-tunnel agent --to')"
check "zlayer-tunnel server --tls<TAB>" "--tls-cert --tls-key" \
  "$(complete_line 'zlayer-tunnel server --tls')"
check "zlayer-tunnel status --<TAB>" "--help --json --session --system" \
  "$(complete_line 'zlayer-tunnel status --')"
check "zlayer-tunnel node add web --<TAB>: the verb's options" \
  "--exposure --from --help --local-port --protocol --remote-port --server --session --system --to --token-file" \
  "$(complete_line 'zlayer-tunnel node add web --')"
check "zlayer-tunnel session start db --<TAB>" "--help --json --local-port --session --system --ttl" \
  "$(complete_line 'zlayer-tunnel session start db --')"
check "zlayer-tunnel expose web 80 --<TAB>: the issue-13 options too" \
  "--help --hostname --internal --local-host --protocol --proxy-protocol --rate-limit-in --rate-limit-out --remote-port --session --system" \
  "$(complete_line 'zlayer-tunnel expose web 80 --')"
check "zlayer-tunnel expose web 80 --rate<TAB>" "--rate-limit-in --rate-limit-out" \
  "$(complete_line 'zlayer-tunnel expose web 80 --rate')"
check "zlayer-tunnel expose web 80 --rate-limit-in <TAB>: no files for a rate" "" \
  "$(complete_line 'zlayer-tunnel expose web 80 --rate-limit-in ')"
check "zlayer-tunnel expose web 80 --proxy-protocol <TAB>" "none v1 v2" \
  "$(complete_line 'zlayer-tunnel expose web 80 --proxy-protocol ')"
check "zlayer-tunnel token new --<TAB>" "--expires --help --name --output --owns --reach --register" \
  "$(complete_line 'zlayer-tunnel token new --')"
check "zlayer-tunnel agent --config x.conf --re<TAB>: past an option's argument" \
  "--retry-forever" "$(complete_line 'zlayer-tunnel agent --config x.conf --re')"
check "zlayer-tunneld --c<TAB>" "--check --config" "$(complete_line 'zlayer-tunneld --c')"

# ---- option arguments ----
mkdir -p conf.d
: >server.conf
: >cert.pem
: >key.pem
check "zlayer-tunnel server --config <TAB>: files" "cert.pem conf.d key.pem server.conf" \
  "$(complete_line 'zlayer-tunnel server --config ' | sed 's|conf.d/|conf.d|')"
check "zlayer-tunnel server --config s<TAB>" "server.conf" \
  "$(complete_line 'zlayer-tunnel server --config s')"
check "zlayer-tunnel server -c s<TAB>: the short form" "server.conf" \
  "$(complete_line 'zlayer-tunnel server -c s')"
check "zlayer-tunnel server --config=s<TAB>" "server.conf" \
  "$(complete_line 'zlayer-tunnel server --config=s')"
check "zlayer-tunnel server --tls-key k<TAB>" "key.pem" \
  "$(complete_line 'zlayer-tunnel server --tls-key k')"
check "zlayer-tunnel agent --ca-file c<TAB>" "cert.pem conf.d" \
  "$(complete_line 'zlayer-tunnel agent --ca-file c' | sed 's|conf.d/|conf.d|')"
check "zlayer-tunnel token new --output s<TAB>" "server.conf" \
  "$(complete_line 'zlayer-tunnel token new --output s')"
check "zlayer-tunnel node add l --token-file k<TAB>" "key.pem" \
  "$(complete_line 'zlayer-tunnel node add l --token-file k')"
check "zlayer-tunneld --config s<TAB>" "server.conf" "$(complete_line 'zlayer-tunneld --config s')"
check "zlayer-tunnel agent --server <TAB>: no files for a URL" "" \
  "$(complete_line 'zlayer-tunnel agent --server ')"
check "zlayer-tunnel expose web 80 --protocol <TAB>" "tcp udp" \
  "$(complete_line 'zlayer-tunnel expose web 80 --protocol ')"
check "zlayer-tunnel expose web 80 -p <TAB>: the short form" "tcp udp" \
  "$(complete_line 'zlayer-tunnel expose web 80 -p ')"
check "zlayer-tunnel node add l --exposure <TAB>" "internal public" \
  "$(complete_line 'zlayer-tunnel node add l --exposure ')"

# ---- names from the daemon ----
if [ "$daemon_up" = yes ]; then
  check "zlayer-tunnel unexpose --session <TAB>: the daemon's services" "db web-1" \
    "$(complete_line 'zlayer-tunnel unexpose --session ')"
  check "zlayer-tunnel session start --session w<TAB>" "web-1" \
    "$(complete_line 'zlayer-tunnel session start --session w')"
  check "zlayer-tunnel unexpose --session db <TAB>: one name only" "" \
    "$(complete_line 'zlayer-tunnel unexpose --session db ')"
  check "ZLT_BUS=session zlayer-tunnel unexpose <TAB>" "db web-1" \
    "$(ZLT_BUS=session complete_line 'zlayer-tunnel unexpose ')"
else
  echo "ok - [$mode] # SKIP no daemon on a session bus: names from the daemon"
fi
exit 0
