#!/bin/sh
# Checks that the D-Bus activation file and the systemd unit name the same bus name,
# unit and binary. Usage: check-data-files.sh ACTIVATION_FILE UNIT_FILE BINDIR. TAP.
activation=$1
unit=$2
bindir=$3
n=0
fail=0

check() {
  # check DESCRIPTION FILE EXACT-LINE
  n=$((n + 1))
  if grep -qxF "$3" "$2"; then
    echo "ok $n - $1"
  else
    echo "not ok $n - $1: no line '$3' in $2"
    fail=1
  fi
}

echo "1..17"
check "activation: group" "$activation" "[D-BUS Service]"
check "activation: bus name" "$activation" "Name=org.zlayer.Tunnel1"
check "activation: never exec'd by the bus" "$activation" "Exec=/bin/false"
check "activation: as root" "$activation" "User=root"
check "activation: handed to systemd" "$activation" "SystemdService=zlayer-tunneld.service"
check "unit: Type=dbus" "$unit" "Type=dbus"
check "unit: bus name" "$unit" "BusName=org.zlayer.Tunnel1"
check "unit: binary" "$unit" "ExecStart=$bindir/zlayer-tunneld"
check "unit: reload through D-Bus, so a refusal fails it" "$unit" "ExecReload=$bindir/zlayer-tunnel reload"
check "unit: restart on failure" "$unit" "Restart=on-failure"
check "unit: read-only system" "$unit" "ProtectSystem=strict"
check "unit: no new privileges" "$unit" "NoNewPrivileges=yes"
check "unit: only CAP_NET_BIND_SERVICE" "$unit" "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"
check "unit: address families" "$unit" "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK"
check "unit: state directory" "$unit" "StateDirectory=zlayer-tunnel"
check "unit: alias for bus activation" "$unit" "Alias=dbus-org.zlayer.Tunnel1.service"
n=$((n + 1))
if grep -q '@[a-z_]*@' "$unit"; then
  echo "not ok $n - unit: every @variable@ substituted"
  fail=1
else
  echo "ok $n - unit: every @variable@ substituted"
fi
exit $fail
