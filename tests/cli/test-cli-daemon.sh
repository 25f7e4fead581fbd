#!/bin/sh
# The CLI's daemon commands against the build-tree zlayer-tunneld on a private session
# bus. Run it under dbus-run-session:
#
#   dbus-run-session -- sh test-cli-daemon.sh ZLAYER_TUNNEL [ZLAYER_TUNNELD]
#
# Without a daemon the CLI must say so and exit 4 (always checked). With ZLAYER_TUNNELD
# it starts the daemon with server and agent roles on 127.0.0.1; the agent exposes
# "ctl", which is the daemon's own server control port (a real TCP service). Then it
# checks status/tunnels/services/sessions (tables and --json), expose/unexpose (each
# expose option on the D-Bus Service object and in --json; a hostname routed on the
# server's shared HTTP port), reload,
# nodes and node add/remove, session start/stop, disconnect, monitor, a refused reload
# (exit 3), errors without the GDBus prefix, and "not running" again once the daemon is
# stopped.
# Prints TAP. Waits are bounded polls, never fixed sleeps.
# absolute: some commands run in other directories
cli=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
daemon=${2:-}
py=/usr/bin/python3
name=org.zlayer.Tunnel1
not_running="zlayer-tunnel: zlayer-tunneld is not running (no owner of $name on the session bus)"

if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  echo "1..0 # SKIP no session bus: run under dbus-run-session"
  exit 0
fi
export ZLT_BUS=session

tmp=$(mktemp -d) || exit 1
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then
    kill "$daemon_pid" 2>/dev/null
    wait "$daemon_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
fail=0
result() {
  # result STATUS DESCRIPTION [FILE TO SHOW ON FAILURE]
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then
    echo "ok $n - $2"
  else
    echo "not ok $n - $2"
    if [ -n "${3:-}" ] && [ -f "$3" ]; then
      sed 's/^/# /' "$3"
    fi
    fail=1
  fi
}
skip() {
  n=$((n + 1))
  echo "ok $n # SKIP $1"
}

# poll SECONDS COMMAND...: until COMMAND succeeds or the deadline passes
poll() {
  deadline=$(($(date +%s) + $1))
  shift
  while :; do
    "$@" && return 0
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# json FILE EXPRESSION: EXPRESSION (Python, the document is d) holds
json() {
  "$py" -c 'import json, sys
try:
    d = json.load(open(sys.argv[1]))
    sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)
except (ValueError, KeyError, TypeError, OSError) as e:
    print("# %s: %s" % (type(e).__name__, e), file=sys.stderr)
    sys.exit(1)' "$1" "$2"
}

# cli_json FILE COMMAND...: run the CLI with --json into FILE, exit 0 and valid JSON
cli_json() {
  out=$1
  shift
  "$cli" "$@" --json >"$out" 2>"$out.err" && "$py" -m json.tool "$out" >/dev/null 2>&1
}

plan=69

# prop PATH NAME: a property of the daemon's Service object at PATH, as gdbus prints it
prop() {
  gdbus call --session --dest "$name" --object-path "$1" \
    --method org.freedesktop.DBus.Properties.Get org.zlayer.Tunnel1.Service "$2" 2>&1
}

# agent_path FILE SERVICE: the object path of the agent's SERVICE in services --json FILE
agent_path() {
  "$py" -c 'import json, sys
d = json.load(open(sys.argv[1]))
agent = [t["path"] for t in json.load(open(sys.argv[3]))["tunnels"] if t["role"] == "agent"]
print([s["path"] for s in d["services"] if s["name"] == sys.argv[2] and s["tunnel"] in agent][0])' \
    "$1" "$2" "$tmp/status.json" 2>/dev/null
}

has_owner() {
  gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
    --method org.freedesktop.DBus.NameHasOwner "$name" 2>/dev/null | grep -q true
}

echo "1..$plan"

# ---- no daemon ----

"$cli" status >"$tmp/out" 2>"$tmp/err"
rc=$?
result $((rc != 4)) "status without a daemon exits 4 (got $rc)" "$tmp/err"
[ "$(cat "$tmp/err")" = "$not_running" ]
result $? "status without a daemon says so" "$tmp/err"
"$cli" tunnels --json >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 4 ] && [ ! -s "$tmp/out" ]
result $? "tunnels --json without a daemon exits 4 and prints no JSON (got $rc)" "$tmp/err"
env -u ZLT_BUS "$cli" expose web 8080 --session >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 4 ] && grep -qF "on the session bus" "$tmp/err"
result $? "expose --session without a daemon exits 4 (got $rc)" "$tmp/err"

# ---- with the daemon ----

if [ -z "$daemon" ] || [ ! -x "$daemon" ]; then
  while [ $n -lt $plan ]; do
    skip "zlayer-tunneld is not built"
  done
  exit $fail
fi

# a token, the server's token file with its hash, a free control port, a public range
"$cli" token new --name cli-test --output "$tmp/agent.token" >"$tmp/token.out" 2>&1
# the token may also reach services through access sessions (session start)
(umask 077 && echo "$(tail -n 1 "$tmp/token.out") register=* reach=* hostnames=*.cli.test" >"$tmp/tokens")
free_port() {
  "$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
port=$(free_port)
http_port=$(free_port)
lo=$((20000 + ($$ % 40) * 100)) # 20000-23999: clear of every other test's range
hi=$((lo + 99))
cat >"$tmp/daemon.conf" <<CONF
[daemon]
node-name=here

[server]
listen=127.0.0.1:$port
public-bind-address=127.0.0.1
port-range=$lo-$hi
validator=token-file
http-listen=127.0.0.1:$http_port
hostname-domains=*.cli.test

[validator:token-file]
path=$tmp/tokens

[agent]
server=ws://127.0.0.1:$port/tunnel/v1
token-file=$tmp/agent.token
backoff-min=0.1
backoff-max=1

[service:ctl]
local-port=$port
CONF

"$daemon" --session --config "$tmp/daemon.conf" >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
alive() { kill -0 "$daemon_pid" 2>/dev/null; }
owned_or_dead() { has_owner || ! alive; }
poll 20 owned_or_dead
has_owner
result $? "zlayer-tunneld owns $name on the session bus" "$tmp/daemon.log"
if [ $fail -ne 0 ]; then
  echo "Bail out! zlayer-tunneld did not start"
  exit 1
fi

# the agent registers ctl; both the agent's and the server's view of it appear
registered() {
  cli_json "$tmp/status.json" status &&
    json "$tmp/status.json" '
[s["name"] for t in d["tunnels"] if t["role"] == "agent" and t["state"] == "connected"
 for s in t["services"] if s["assigned_port"] > 0] == ["ctl"]
and [s["name"] for t in d["tunnels"] if t["role"] == "server" for s in t["services"]] == ["ctl"]'
}
poll 20 registered
result $? "status --json: the agent's tunnel is connected and ctl registered" "$tmp/status.json"

version=$("$cli" --version | cut -d' ' -f2)
json "$tmp/status.json" 'd["version"] == "'"$version"'"'
result $? "status --json: version $version" "$tmp/status.json"
json "$tmp/status.json" 'sorted(d["roles"]) == ["agent", "server"]'
result $? "status --json: roles server and agent" "$tmp/status.json"
json "$tmp/status.json" 'd["server"]["address"] == "127.0.0.1:'"$port"'"'
result $? "status --json: server address 127.0.0.1:$port" "$tmp/status.json"
json "$tmp/status.json" 'd["agent"]["server"] == "ws://127.0.0.1:'"$port"'/tunnel/v1"
and d["agent"]["state"] == "connected" and d["agent"]["last_error"] == ""'
result $? "status --json: agent server, state and last error" "$tmp/status.json"
json "$tmp/status.json" 'all(set(t) >= {"path", "id", "role", "state", "peer_address",
  "client_id", "token_name", "created_us", "last_activity_us", "bytes_in", "bytes_out",
  "rate_limit_in", "rate_limit_out", "services"} and all(set(s) >= {"name", "protocol", "expose", "local_port",
  "requested_port", "assigned_port", "active_connections", "total_connections",
  "bytes_in", "bytes_out", "tunnel"} for s in t["services"]) for t in d["tunnels"])
and any(s["local_port"] == '"$port"' for t in d["tunnels"] for s in t["services"])'
result $? "status --json: tunnels and services carry their keys and counters" "$tmp/status.json"

"$cli" status >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "^zlayer-tunneld $version" "$tmp/out" && grep -q "ctl" "$tmp/out"
result $? "status prints the daemon and its services" "$tmp/out"

"$cli" tunnels >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] && head -n 1 "$tmp/out" | grep -q '^ID  *ROLE  *STATE' &&
  grep -q ' agent  *connected ' "$tmp/out" && grep -q ' server ' "$tmp/out"
result $? "tunnels prints a table with both roles" "$tmp/out"

"$cli" services >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] && head -n 1 "$tmp/out" | grep -q '^NAME  *ROLE  *PROTOCOL' &&
  [ "$(grep -c '^ctl ' "$tmp/out")" -eq 2 ]
result $? "services prints a table with ctl in both roles" "$tmp/out"
# columns line up: PROTOCOL's column holds tcp in every row
awk 'NR == 1 { col = index($0, "PROTOCOL"); next }
     substr($0, col, 3) != "tcp" { bad = 1 } END { exit bad || col == 0 }' "$tmp/out"
result $? "services: columns are aligned" "$tmp/out"

cli_json "$tmp/services.json" services
result $? "services --json is JSON" "$tmp/services.json.err"

# expose and unexpose change what services --json shows
"$cli" expose extra "$port" --remote-port 0 --protocol tcp --proxy-protocol v2 >"$tmp/out" 2>&1
result $? "expose extra exits 0" "$tmp/out"
# the agent is connected: the answer waited for the server's, and says the port
grep -q "^exposed extra (local port $port) on public port [0-9]*$" "$tmp/out"
result $? "expose says the public port" "$tmp/out"
"$cli" expose bad "$port" --proxy-protocol v3 >"$tmp/out" 2>&1
rc=$?
[ "$rc" -ne 0 ]
result $? "expose --proxy-protocol v3 fails (got $rc)" "$tmp/out"
extra_registered() {
  cli_json "$tmp/services.json" services &&
    json "$tmp/services.json" 'sorted(s["assigned_port"] > 0 for s in d["services"]
                                      if s["name"] == "extra") == [True, True]'
}
poll 20 extra_registered
result $? "services --json shows extra, registered" "$tmp/services.json"
json "$tmp/services.json" 'all(s["expose"] == "public" and s["protocol"] == "tcp"
                               for s in d["services"] if s["name"] == "extra")'
result $? "extra is public tcp" "$tmp/services.json"
json "$tmp/services.json" '[s["proxy_protocol"] for s in d["services"] if s["name"] == "extra"
                            and s["state"] == "registered"] != []
                           and all(s["state"] == "registered" for s in d["services"]
                                   if s["name"] == "extra")'
result $? "extra is registered, and the agent's says v2" "$tmp/services.json"
extra_path=$(agent_path "$tmp/services.json" extra)
prop "$extra_path" ProxyProtocol >"$tmp/out"
grep -qF "(<'v2'>,)" "$tmp/out"
result $? "--proxy-protocol v2 reached the agent's Service.ProxyProtocol ($extra_path)" "$tmp/out"

# the issue-13 options: rate limits in the config's units, a hostname (lowercased)
"$cli" expose limited "$port" --rate-limit-in 4M --rate-limit-out 512k \
  --hostname Web.CLI.test >"$tmp/out" 2>&1
result $? "expose limited --rate-limit-in 4M --rate-limit-out 512k --hostname exits 0" "$tmp/out"
grep -q "^exposed limited (local port $port) as web.cli.test on the server's shared HTTP and TLS ports$" "$tmp/out"
result $? "expose says the hostname" "$tmp/out"
limited_registered() {
  cli_json "$tmp/services.json" services &&
    json "$tmp/services.json" '[s["state"] for s in d["services"] if s["name"] == "limited"]
                               == ["registered", "registered"]'
}
poll 20 limited_registered
result $? "services --json: limited registered on both ends" "$tmp/services.json"
limited_path=$(agent_path "$tmp/services.json" limited)
prop "$limited_path" RateLimitIn >"$tmp/out" && grep -qF "(<uint64 4000000>,)" "$tmp/out"
result $? "--rate-limit-in 4M reached Service.RateLimitIn as 4000000" "$tmp/out"
prop "$limited_path" RateLimitOut >"$tmp/out" && grep -qF "(<uint64 512000>,)" "$tmp/out"
result $? "--rate-limit-out 512k reached Service.RateLimitOut as 512000" "$tmp/out"
prop "$limited_path" Hostname >"$tmp/out" && grep -qF "(<'web.cli.test'>,)" "$tmp/out"
result $? "--hostname reached Service.Hostname, lowercased" "$tmp/out"
json "$tmp/services.json" '[(s["rate_limit_in"], s["rate_limit_out"], s["hostname"],
  s["proxy_protocol"], s["replicas"], s["state"], s["last_error"], s["assigned_port"])
  for s in d["services"] if s["path"] == "'"$limited_path"'"]
  == [(4000000, 512000, "web.cli.test", "none", 1, "registered", "", 0)]'
result $? "services --json: the agent's limited: limits, hostname (no public port), replicas, state" \
  "$tmp/services.json"
json "$tmp/services.json" '[(s["hostname"], s["replicas"], s["rate_limit_in"])
  for s in d["services"] if s["name"] == "limited" and s["path"] != "'"$limited_path"'"]
  == [("web.cli.test", 1, 0)]'
result $? "services --json: the server's limited has the hostname, 1 replica, no limit of its own" \
  "$tmp/services.json"
cli_json "$tmp/tunnels.json" tunnels &&
  json "$tmp/tunnels.json" '[(s["rate_limit_in"], s["rate_limit_out"], s["hostname"])
  for t in d["tunnels"] if t["role"] == "agent" for s in t["services"]
  if s["name"] == "limited"] == [(4000000, 512000, "web.cli.test")]
  and all(set(s) >= {"proxy_protocol", "replicas", "hostname", "rate_limit_in",
      "rate_limit_out", "state", "last_error"} for t in d["tunnels"] for s in t["services"])'
result $? "tunnels --json: every service carries the issue-13 keys" "$tmp/tunnels.json"
# the hostname routes: a request with that Host on the shared HTTP port reaches the
# service (the daemon's own control port answers it), an unknown host gets the 404 page
http_get() {
  "$py" -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET / HTTP/1.1\r\nHost: " + sys.argv[2].encode() + b"\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.decode("utf-8", "replace"))' "$http_port" "$1" 2>&1
}
http_get web.cli.test >"$tmp/out"
head -n 1 "$tmp/out" | grep -q "^HTTP/1.1 " && ! grep -q "no tunnel for" "$tmp/out"
result $? "the shared HTTP port routes Host: web.cli.test to limited" "$tmp/out"
http_get other.cli.test >"$tmp/out"
head -n 1 "$tmp/out" | grep -q "^HTTP/1.1 404" && grep -q "no tunnel for other.cli.test" "$tmp/out"
result $? "an unknown host gets the 404 page" "$tmp/out"

# bad values: a usage error before the daemon is asked, or its refusal; nothing kept
"$cli" expose bad "$port" --rate-limit-in 4X >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q -- "--rate-limit-in" "$tmp/out"
result $? "expose --rate-limit-in 4X is a usage error naming the option (got $rc)" "$tmp/out"
"$cli" expose bad "$port" --rate-limit-out 99999999999G >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q -- "--rate-limit-out" "$tmp/out"
result $? "expose --rate-limit-out past the largest rate is a usage error (got $rc)" "$tmp/out"
"$cli" expose bad "$port" --protocol udp --rate-limit-in 1M >"$tmp/out" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "only tcp services are limited" "$tmp/out"
result $? "expose udp with a rate limit: the daemon's refusal (got $rc)" "$tmp/out"
"$cli" expose bad "$port" --hostname web2.cli.test --remote-port "$hi" >"$tmp/out" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "hostname" "$tmp/out"
result $? "expose --hostname with --remote-port: refused (got $rc)" "$tmp/out"
"$cli" expose bad "$port" --hostname 'bad!host' >"$tmp/out" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "hostname" "$tmp/out"
result $? "expose --hostname 'bad!host': refused (got $rc)" "$tmp/out"
cli_json "$tmp/services.json" services &&
  json "$tmp/services.json" '"bad" not in [s["name"] for s in d["services"]]'
result $? "no refused expose left a service behind" "$tmp/services.json"
"$cli" unexpose limited >"$tmp/out" 2>&1
result $? "unexpose limited exits 0" "$tmp/out"

"$cli" unexpose extra >"$tmp/out" 2>&1
result $? "unexpose extra exits 0" "$tmp/out"
extra_gone() {
  cli_json "$tmp/services.json" services &&
    json "$tmp/services.json" '"extra" not in [s["name"] for s in d["services"]]
                               and "ctl" in [s["name"] for s in d["services"]]'
}
poll 20 extra_gone
result $? "services --json no longer shows extra (ctl stays)" "$tmp/services.json"

"$cli" unexpose no-such-service >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && [ -s "$tmp/err" ] && ! grep -q 'GDBus' "$tmp/err"
result $? "a D-Bus error exits 1 with the daemon's message, no GDBus prefix (got $rc)" "$tmp/err"

"$cli" expose 'bad name' 80 >"$tmp/out" 2>&1
rc=$?
result $((rc != 2)) "expose with an invalid name is a usage error (got $rc)" "$tmp/out"

cli_json "$tmp/sessions.json" sessions && json "$tmp/sessions.json" 'd == {"sessions": []}'
result $? "sessions --json lists no sessions" "$tmp/sessions.json"
"$cli" sessions >"$tmp/out" 2>&1
result $? "sessions exits 0" "$tmp/out"

"$cli" reload >"$tmp/out" 2>&1
result $? "reload exits 0" "$tmp/out"
poll 20 registered
result $? "after reload the tunnel and ctl are still there" "$tmp/status.json"

# ---- help, nodes, sessions, disconnect, monitor, a refused reload ----

"$cli" --help >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] && grep -q "monitor" "$tmp/out" && [ ! -s "$tmp/err" ]
result $? "--help goes to stdout and exits 0 (got $rc)" "$tmp/err"

cli_json "$tmp/nodes.json" nodes && json "$tmp/nodes.json" 'd == {"nodes": []}'
result $? "nodes --json lists no node tunnels" "$tmp/nodes.json"

cp "$tmp/agent.token" "$tmp/link.token"
"$cli" node add link --from elsewhere --to here --local-port 5432 --protocol sctp \
  --token-file "$tmp/link.token" >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q "protocol" "$tmp/out"
result $? "node add with protocol sctp: the daemon's refusal, exit 3 (got $rc)" "$tmp/out"

(cd "$tmp" && "$cli" node add link --from elsewhere --to here --local-port 5432 \
  --token-file link.token) >"$tmp/out" 2>&1
result $? "node add link (inbound here, a relative token file) exits 0" "$tmp/out"
cli_json "$tmp/nodes.json" nodes &&
  json "$tmp/nodes.json" '[(n["name"], n["direction"], n["local_port"]) for n in d["nodes"]]
                          == [("link", "inbound", 5432)]'
result $? "nodes --json shows link, inbound" "$tmp/nodes.json"
cli_json "$tmp/status.json" status &&
  json "$tmp/status.json" '"node" in d["roles"] and [n["name"] for n in d["nodes"]] == ["link"]'
result $? "status --json: the node role and the node tunnel" "$tmp/status.json"
"$cli" node remove link >"$tmp/out" 2>&1 &&
  cli_json "$tmp/nodes.json" nodes && json "$tmp/nodes.json" 'd == {"nodes": []}'
result $? "node remove link: gone" "$tmp/nodes.json"

"$cli" session start ctl --ttl 10m --json >"$tmp/session.json" 2>"$tmp/err" &&
  json "$tmp/session.json" 'd["remote_service"] == "ctl" and d["local_address"] != ""'
result $? "session start ctl: a session reaching ctl" "$tmp/err"
sid=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/session.json" 2>/dev/null)
cli_json "$tmp/sessions.json" sessions &&
  json "$tmp/sessions.json" '[s["id"] for s in d["sessions"]] == ["'"$sid"'"]'
result $? "sessions --json lists it" "$tmp/sessions.json"
"$cli" session stop "$sid" >"$tmp/out" 2>&1 &&
  cli_json "$tmp/sessions.json" sessions && json "$tmp/sessions.json" 'd == {"sessions": []}'
result $? "session stop: gone" "$tmp/out"
"$cli" session start no-such-service >"$tmp/out" 2>&1
rc=$?
result $((rc != 1)) "session start of a missing service: refused, exit 1 (got $rc)" "$tmp/out"

# the monitor sees what happens next; we started it, we stop it by its PID
"$cli" monitor --json >"$tmp/monitor.out" 2>"$tmp/monitor.err" &
monitor_pid=$!
seen_tunnels() { grep -q '"type" *: *"tunnel"' "$tmp/monitor.out"; }
poll 20 seen_tunnels
server_tunnel=$("$py" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print([t["id"] for t in d["tunnels"] if t["role"] == "server"][0])' "$tmp/status.json" 2>/dev/null)
"$cli" disconnect "$server_tunnel" --reason "test" >"$tmp/out" 2>&1
result $? "disconnect the agent's tunnel on the server exits 0" "$tmp/out"
poll 20 registered
result $? "the agent comes back with ctl" "$tmp/status.json"
monitor_saw() {
  "$py" -c 'import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
removed = any(l["event"] == "removed" and l["type"] == "tunnel" and l["id"] == sys.argv[2]
              for l in lines)
changed = any(l["event"] == "changed" and "properties" in l for l in lines)
sys.exit(0 if removed and changed else 1)' "$tmp/monitor.out" "$server_tunnel" 2>/dev/null
}
poll 20 monitor_saw
result $? "monitor --json printed the tunnel's removal and property changes, a line each" \
  "$tmp/monitor.out"
kill "$monitor_pid" 2>/dev/null
wait "$monitor_pid"
rc=$?
result $rc "monitor exits 0 on SIGTERM (got $rc)" "$tmp/monitor.err"

cp "$tmp/daemon.conf" "$tmp/daemon.conf.good"
sed 's/^port-range=.*/port-range=20-10/' "$tmp/daemon.conf.good" >"$tmp/daemon.conf"
"$cli" reload >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q "port-range" "$tmp/out"
result $? "reload of an invalid config exits 3 and names the key (got $rc)" "$tmp/out"
cp "$tmp/daemon.conf.good" "$tmp/daemon.conf"

# a second daemon on the same bus says who has the name (an agent-only config: it binds
# no port, so the name is what it trips on)
cat >"$tmp/agent-only.conf" <<CONF
[agent]
server=ws://127.0.0.1:$port/tunnel/v1
token-file=$tmp/agent.token
CONF
"$daemon" --session --config "$tmp/agent-only.conf" >"$tmp/second.log" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "owned by another process" "$tmp/second.log"
result $? "a second daemon exits 1: the name is owned by another process (got $rc)" \
  "$tmp/second.log"

# a system bus whose policy does not let us own the name (our policy file is not where
# it reads policies): the daemon names the cause and where this build put the file
cat >"$tmp/deny.conf" <<BUS
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=$tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <deny own="$name"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
BUS
dbus-daemon --config-file="$tmp/deny.conf" --nofork --print-address=1 >"$tmp/deny.addr" 2>/dev/null &
deny_bus_pid=$!
has_address() { [ -s "$tmp/deny.addr" ]; }
poll 10 has_address
DBUS_SYSTEM_BUS_ADDRESS=$(head -n 1 "$tmp/deny.addr") "$daemon" --config "$tmp/agent-only.conf" \
  >"$tmp/denied.log" 2>&1
rc=$?
kill "$deny_bus_pid" 2>/dev/null
wait "$deny_bus_pid" 2>/dev/null
[ $rc -eq 1 ] && grep -q "policy" "$tmp/denied.log" && grep -q "dbus-1/system.d" "$tmp/denied.log"
result $? "refused by the system bus: the daemon names the policy file and where it goes (got $rc)" \
  "$tmp/denied.log"

# stop the daemon we started; the CLI says it is not running
kill "$daemon_pid"
wait "$daemon_pid"
rc=$?
daemon_pid=""
result $rc "zlayer-tunneld exits 0 on SIGTERM (got $rc)" "$tmp/daemon.log"
"$cli" status >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 4 ] && [ "$(cat "$tmp/err")" = "$not_running" ]
result $? "status after the daemon stopped exits 4 and says so (got $rc)" "$tmp/err"

exit $fail
