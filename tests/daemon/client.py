#!/usr/bin/python3
# A zlayer-tunneld client that is not ours: the system's PyGObject, nothing from the
# build tree. Run by test-daemon with DBUS_SESSION_BUS_ADDRESS pointing at its private
# bus, always as /usr/bin/python3. Prints TAP-like lines and "# all passed" at the end.
#
#   client.py full PORT  objects, properties, counters in PropertiesChanged while bytes
#                      flow, Expose/Unexpose (public port PORT) with objects coming and
#                      going, named errors, an access session (StartAccess, traffic,
#                      Session.Stop)
#   client.py denied   as a user who may read but not change anything
#   client.py admin    as a member of the configured admin group
import socket
import sys
import threading

import gi

gi.require_version("Gio", "2.0")
gi.require_version("GLib", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

NAME = "org.zlayer.Tunnel1"
PATH = "/org/zlayer/Tunnel1"
IFACE = "org.zlayer.Tunnel1."
ERROR = "org.zlayer.Tunnel1.Error."

count = 0
failed = 0


def check(ok, what):
    global count, failed
    count += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", count, what), flush=True)
    if not ok:
        failed += 1


def wait_for(predicate, seconds=20):
    """Runs the main context until predicate() holds or the deadline passes."""
    ctx = GLib.MainContext.default()
    deadline = GLib.get_monotonic_time() + seconds * 1000000
    tick = GLib.timeout_add(20, lambda: True)
    try:
        while not predicate() and GLib.get_monotonic_time() < deadline:
            ctx.iteration(True)
    finally:
        GLib.source_remove(tick)
    return predicate()


def remote_error(call):
    try:
        call()
    except GLib.Error as e:
        return Gio.DBusError.get_remote_error(e)
    return None


def prop(proxy, name):
    value = proxy.get_cached_property(name)
    return value.unpack() if value is not None else None


class Client:
    def __init__(self):
        self.bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        self.om = Gio.DBusObjectManagerClient.new_sync(
            self.bus, Gio.DBusObjectManagerClientFlags.DO_NOT_AUTO_START, NAME, PATH,
            None, None, None)
        self.manager = Gio.DBusProxy.new_sync(
            self.bus, Gio.DBusProxyFlags.DO_NOT_AUTO_START, None, NAME, PATH,
            IFACE + "Manager", None)

    def call(self, method, args):
        return self.manager.call_sync(method, args, Gio.DBusCallFlags.NONE, 10000, None)

    def proxies(self, iface):
        out = []
        for obj in self.om.get_objects():
            p = obj.get_interface(IFACE + iface)
            if p is not None:
                out.append(p)
        return out

    def tunnel(self, role):
        for t in self.proxies("Tunnel"):
            if prop(t, "Role") == role:
                return t
        return None

    def service(self, name, role):
        tunnel = self.tunnel(role)
        for s in self.proxies("Service"):
            if (prop(s, "Name") == name and tunnel is not None
                    and prop(s, "Tunnel") == tunnel.get_object_path()):
                return s
        return None


def echo_through(port, payload):
    """Sends payload to 127.0.0.1:port, half-closes and reads the echo, in a thread."""
    result = {}

    def run():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                got = bytearray()
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got.extend(chunk)
                result["echo"] = bytes(got)
        except OSError as e:
            result["error"] = str(e)
        result["done"] = True

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def full(c, extra_port):
    check(prop(c.manager, "Version") not in (None, ""), "Manager.Version is set")
    check(sorted(prop(c.manager, "Roles")) == ["agent", "server"], "both roles run")
    agent, server = c.tunnel("agent"), c.tunnel("server")
    check(agent is not None and server is not None, "a tunnel object for each role")
    check(prop(agent, "Id") == prop(server, "Id"), "both ends name the same tunnel id")
    check(prop(server, "State") == "connected", "the server's tunnel is connected")
    echo = c.service("echo", "server")
    check(echo is not None and prop(echo, "AssignedPort") > 0, "echo has a public port")
    tunnels = c.call("ListTunnels", None).unpack()[0]
    check(sorted(tunnels) == sorted([agent.get_object_path(), server.get_object_path()]),
          "ListTunnels lists both tunnel objects")

    # counters through PropertiesChanged while bytes flow
    seen = []
    echo.connect("g-properties-changed",
                 lambda proxy, changed, invalidated: seen.append(changed.unpack()))
    before = prop(echo, "BytesIn")
    payload = bytes(range(256)) * 4096  # 1 MiB
    thread, result = echo_through(prop(echo, "AssignedPort"), payload)
    wait_for(lambda: "done" in result, 30)
    thread.join()
    check(result.get("echo") == payload,
          "1 MiB echoed through the tunnel (%s)" % result.get("error", "%d bytes" % len(result.get("echo", b""))))
    wait_for(lambda: prop(echo, "BytesIn") >= before + len(payload), 10)
    check(prop(echo, "BytesIn") >= before + len(payload), "BytesIn counted the bytes")
    check(any("BytesIn" in changed for changed in seen),
          "BytesIn changed through PropertiesChanged (%d signals)" % len(seen))
    check(len(seen) < 50, "changes are coalesced, not one per chunk")

    # Expose / Unexpose: objects come and go
    added, removed = [], []
    c.om.connect("object-added", lambda om, obj: added.append(obj.get_object_path()))
    c.om.connect("object-removed", lambda om, obj: removed.append(obj.get_object_path()))
    local_port = prop(c.service("echo", "agent"), "LocalPort")
    path = c.call("Expose", GLib.Variant("(sqa{sv})", ("py-extra", local_port, {
        "remote-port": GLib.Variant("q", extra_port),
        "proxy-protocol": GLib.Variant("s", "none")}))).unpack()[0]
    wait_for(lambda: c.service("py-extra", "server") is not None
             and prop(c.service("py-extra", "server"), "AssignedPort") == extra_port)
    check(path in added or c.om.get_object(path) is not None, "Expose made the service object")
    check(prop(c.service("py-extra", "agent"), "ProxyProtocol") == "none",
          "ProxyProtocol follows the proxy-protocol option")
    check(prop(c.service("echo", "server"), "ProxyProtocol") == "none",
          "a server's service writes no PROXY header")
    c.call("Expose", GLib.Variant("(sqa{sv})", ("py-proxied", local_port, {
        "proxy-protocol": GLib.Variant("s", "v1")})))
    wait_for(lambda: c.service("py-proxied", "agent") is not None)
    check(prop(c.service("py-proxied", "agent"), "ProxyProtocol") == "v1",
          "Expose with proxy-protocol v1: ProxyProtocol is v1")
    c.call("Unexpose", GLib.Variant("(s)", ("py-proxied",)))
    c.call("Expose", GLib.Variant("(sqa{sv})", ("py-limited", local_port, {
        "rate-limit-in": GLib.Variant("t", 4000000),
        "rate-limit-out": GLib.Variant("t", 1000000)})))
    wait_for(lambda: c.service("py-limited", "agent") is not None)
    check(prop(c.service("py-limited", "agent"), "RateLimitIn") == 4000000
          and prop(c.service("py-limited", "agent"), "RateLimitOut") == 1000000,
          "Expose with rate limits: RateLimitIn and RateLimitOut follow them")
    check(prop(c.service("echo", "agent"), "RateLimitIn") == 0, "no limit: RateLimitIn is 0")
    check(prop(c.service("echo", "server"), "Replicas") == 1
          and prop(c.service("echo", "agent"), "Replicas") == 1,
          "one agent serves echo: Replicas is 1 on both ends")
    check(prop(c.service("echo", "server"), "ReplicaBalance") == "round-robin"
          and prop(c.service("echo", "server"), "ReplicaState") == "ready"
          and prop(c.service("echo", "agent"), "ReplicaBalance") == ""
          and prop(c.service("echo", "agent"), "ReplicaState") == "",
          "the server's echo: ReplicaBalance round-robin (the default), ReplicaState ready; "
          "the agent's: empty")
    c.call("Unexpose", GLib.Variant("(s)", ("py-limited",)))
    check(c.service("py-extra", "server") is not None, "the server's view appeared too")
    thread, result = echo_through(extra_port, b"hello from python")
    wait_for(lambda: "done" in result, 30)
    thread.join()
    check(result.get("echo") == b"hello from python",
          "the exposed service works (%s)" % result.get("error", "%d bytes" % len(result.get("echo", b""))))
    c.call("Unexpose", GLib.Variant("(s)", ("py-extra",)))
    wait_for(lambda: c.service("py-extra", "agent") is None
             and c.service("py-extra", "server") is None)
    check(path in removed, "Unexpose removed the service object")
    check(c.service("py-extra", "server") is None, "and the server's view")

    # named errors
    check(remote_error(lambda: c.call("Unexpose", GLib.Variant("(s)", ("nope",))))
          == ERROR + "NotFound", "Unexpose of an unknown service: NotFound")
    check(remote_error(lambda: c.call("Expose", GLib.Variant("(sqa{sv})", ("echo", 1, {}))))
          == ERROR + "DuplicateName", "Expose of a taken name: DuplicateName")
    check(remote_error(lambda: c.call("Expose", GLib.Variant("(sqa{sv})", ("py-pp", 1, {
        "proxy-protocol": GLib.Variant("s", "v3")})))) == "org.freedesktop.DBus.Error.InvalidArgs",
        "Expose with proxy-protocol v3: InvalidArgs")
    check(remote_error(lambda: c.call("Expose", GLib.Variant("(sqa{sv})", ("py-pp", 1, {
        "protocol": GLib.Variant("s", "udp"), "proxy-protocol": GLib.Variant("s", "v2")}))))
          == ERROR + "InvalidConfig", "Expose of a udp service with proxy-protocol: InvalidConfig")
    check(remote_error(lambda: c.call("StartAccess", GLib.Variant("(sa{sv})", ("bad name!", {}))))
          == ERROR + "InvalidConfig", "StartAccess of an invalid name: InvalidConfig")
    check(remote_error(lambda: c.call("StartAccess", GLib.Variant("(sa{sv})", ("echo", {
        "ttl": GLib.Variant("i", 5)})))) == "org.freedesktop.DBus.Error.InvalidArgs",
        "StartAccess with a mistyped option: InvalidArgs")
    check(remote_error(lambda: c.call("StopAccess", GLib.Variant("(o)", (PATH + "/Session/999",))))
          == ERROR + "NotFound", "StopAccess of an unknown session: NotFound")
    check(remote_error(lambda: c.call("AddNodeTunnel", GLib.Variant("(sa{sv})", ("n", {}))))
          == ERROR + "InvalidConfig", "AddNodeTunnel (empty definition): InvalidConfig")

    # on-demand access last: its own tunnel shows up as one more server-role tunnel
    path = c.call("StartAccess", GLib.Variant("(sa{sv})", ("echo", {
        "ttl": GLib.Variant("u", 600)}))).unpack()[0]
    check(path.startswith(PATH + "/Session/"), "StartAccess returns a session object")
    wait_for(lambda: c.om.get_object(path) is not None)
    obj = c.om.get_object(path)
    session = obj.get_interface(IFACE + "Session") if obj is not None else None
    check(session is not None and prop(session, "RemoteService") == "echo",
          "the Session object names the service")
    address = prop(session, "LocalAddress") if session is not None else ""
    check(address.startswith("127.0.0.1:"), "and its local address (%s)" % address)
    thread, result = echo_through(int(address.rsplit(":", 1)[1]), b"hello through access")
    wait_for(lambda: "done" in result, 30)
    thread.join()
    check(result.get("echo") == b"hello through access",
          "a session reaches the service (%s)" % result.get("error", "%d bytes" % len(result.get("echo", b""))))
    wait_for(lambda: prop(session, "BytesOut") >= 20)
    check(prop(session, "BytesOut") >= 20 and prop(session, "BytesIn") >= 20,
          "the session counts the bytes")
    session.call_sync("Stop", None, Gio.DBusCallFlags.NONE, 10000, None)
    wait_for(lambda: c.om.get_object(path) is None)
    check(path in removed, "Session.Stop removed the session object")


def denied(c):
    check(len(c.proxies("Tunnel")) == 2, "anyone may read the objects")
    check(len(c.call("ListTunnels", None).unpack()[0]) == 2, "anyone may list tunnels")
    check(remote_error(lambda: c.call("Reload", None)) == ERROR + "PermissionDenied",
          "Reload: PermissionDenied")
    check(remote_error(lambda: c.call("Expose", GLib.Variant("(sqa{sv})", ("x", 1, {}))))
          == ERROR + "PermissionDenied", "Expose: PermissionDenied")
    server = c.tunnel("server")
    check(remote_error(lambda: c.call("DisconnectTunnel", GLib.Variant(
        "(os)", (server.get_object_path(), "")))) == ERROR + "PermissionDenied",
        "DisconnectTunnel: PermissionDenied")
    check(remote_error(lambda: c.call("StartAccess", GLib.Variant("(sa{sv})", ("echo", {}))))
          == ERROR + "PermissionDenied", "StartAccess: PermissionDenied")
    check(remote_error(lambda: c.call("StopAccess", GLib.Variant("(o)", (PATH + "/Session/0",))))
          == ERROR + "PermissionDenied", "StopAccess: PermissionDenied")
    check(prop(c.tunnel("server"), "State") == "connected", "the tunnel is still up")


def admin(c):
    local_port = prop(c.service("echo", "agent"), "LocalPort")
    path = c.call("Expose", GLib.Variant("(sqa{sv})", ("admin-made", local_port, {}))).unpack()[0]
    check(path.startswith(PATH + "/Service/"), "a member of the admin group may Expose")
    c.call("Unexpose", GLib.Variant("(s)", ("admin-made",)))
    check(True, "and Unexpose")
    check(remote_error(lambda: c.call("Unexpose", GLib.Variant("(s)", ("nope",))))
          == ERROR + "NotFound", "errors past the caller check are the method's own")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "full"
    c = Client()
    check(c.om.get_name_owner() is not None, "the daemon owns " + NAME)
    if mode == "full":
        full(c, int(sys.argv[2]))
    else:
        {"denied": denied, "admin": admin}[mode](c)
    print("1..%d" % count)
    if failed:
        print("# %d failed" % failed)
        return 1
    print("# all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
