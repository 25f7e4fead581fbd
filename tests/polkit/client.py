#!/usr/bin/python3
# A caller of zlayer-tunneld's mutating methods for tests/test-polkit.c, run as another
# user (setpriv) with DBUS_SYSTEM_BUS_ADDRESS pointing at the test's private bus; the
# system's PyGObject, nothing from the build tree.
#
#   client.py [--interactive] [--wait] [--dest NAME] METHOD...
#
# Calls each Manager METHOD with harmless arguments (names and paths that do not exist,
# so a call that passes the caller check fails with the method's own error, or Reload
# succeeds) and prints one line per call: "METHOD ok" or "METHOD ERROR-NAME MESSAGE".
# --interactive sets ALLOW_INTERACTIVE_AUTHORIZATION on the calls; --wait reads a line
# from standard input first (the test registers its polkit agent for this process
# meanwhile); --dest calls NAME instead of org.zlayer.Tunnel1.
import sys

import gi

gi.require_version("Gio", "2.0")
gi.require_version("GLib", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

PATH = "/org/zlayer/Tunnel1"
ARGS = {
    "Reload": None,
    "Expose": GLib.Variant("(sqa{sv})", ("polkit-x", 1, {})),
    "Unexpose": GLib.Variant("(s)", ("polkit-x",)),
    "StartAccess": GLib.Variant("(sa{sv})", ("polkit-x", {})),
    "StopAccess": GLib.Variant("(o)", (PATH + "/Session/999999",)),
    "AddNodeTunnel": GLib.Variant("(sa{sv})", ("polkit-n", {})),
    "RemoveNodeTunnel": GLib.Variant("(s)", ("polkit-n",)),
    "DisconnectTunnel": GLib.Variant("(os)", (PATH + "/Tunnel/999999", "")),
}


def main():
    args = sys.argv[1:]
    flags = Gio.DBusCallFlags.NO_AUTO_START
    dest = "org.zlayer.Tunnel1"
    wait = False
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--interactive":
            flags |= Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION
        elif opt == "--wait":
            wait = True
        elif opt == "--dest":
            dest = args.pop(0)
        else:
            print("unknown option " + opt, file=sys.stderr)
            return 2
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    if wait:
        sys.stdin.readline()
    for method in args:
        try:
            bus.call_sync(dest, PATH, "org.zlayer.Tunnel1.Manager", method, ARGS[method],
                          None, flags, 60000, None)
            print(method, "ok", flush=True)
        except GLib.Error as e:
            name = Gio.DBusError.get_remote_error(e) or "local"
            message = e.message
            if message.startswith("GDBus.Error:%s: " % name):
                message = message[len("GDBus.Error:%s: " % name):]
            print(method, name, message.replace("\n", " "), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
