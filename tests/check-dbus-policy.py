#!/usr/bin/python3
"""Checks the system bus policy data/org.zlayer.Tunnel1.conf against the API contract.

Usage: check-dbus-policy.py POLICY INTERFACE_XML. Prints TAP.

Only root may own the name; root may call everything. The default context denies
owning the name and sending to it, then allows the standard read-only calls and the
daemon's own interfaces, whose mutating methods the daemon authorizes call by call
(polkit, or root and the admin group; see tests/test-polkit.c and test-daemon's
permission test): every method of the interface XML is reachable, nothing else is.
"""
import sys
import xml.etree.ElementTree as ET

NAME = "org.zlayer.Tunnel1"
READ_ONLY = {
    ("org.freedesktop.DBus.Introspectable", "Introspect"),
    ("org.freedesktop.DBus.Properties", "Get"),
    ("org.freedesktop.DBus.Properties", "GetAll"),
    ("org.freedesktop.DBus.ObjectManager", "GetManagedObjects"),
    ("org.zlayer.Tunnel1.Manager", "ListTunnels"),
}

results = []


def check(ok, what):
    results.append((bool(ok), what))


def main():
    policy_path, api_path = sys.argv[1], sys.argv[2]
    root = ET.parse(policy_path).getroot()
    check(root.tag == "busconfig", "root element is <busconfig>")

    policies = root.findall("policy")
    default = [p for p in policies if p.get("context") == "default"]
    check(len(default) == 1, "exactly one default-context policy")
    check(not [p for p in policies if p.get("context") == "mandatory"],
          "no mandatory-context policy")
    others = [p for p in policies if p.get("context") is None and p.get("user") != "root"]
    check(not others, "no policy for users or groups other than root (examples stay comments)")

    # owning the name
    for p in policies:
        for rule in p:
            if rule.tag == "allow" and rule.get("own") is not None:
                check(p.get("user") == "root" and rule.get("own") == NAME,
                      "allow own=%s only in the root policy" % rule.get("own"))
            if rule.tag == "allow" and rule.get("own_prefix") is not None:
                check(False, "no allow own_prefix")
    root_policy = [p for p in policies if p.get("user") == "root"]
    check(len(root_policy) == 1, "one policy for root")
    if root_policy:
        rules = [(r.tag, dict(r.attrib)) for r in root_policy[0]]
        check(("allow", {"own": NAME}) in rules, "root may own %s" % NAME)
        check(("allow", {"send_destination": NAME}) in rules, "root may call everything")

    if not default:
        return
    rules = list(default[0])
    # default context: deny own and send first, then the read-only exceptions
    check(rules and rules[0].tag == "deny" and rules[0].attrib == {"own": NAME},
          "default context denies owning %s first" % NAME)
    check(len(rules) > 1 and rules[1].tag == "deny"
          and rules[1].attrib == {"send_destination": NAME},
          "default context denies sending to %s" % NAME)
    allowed = set()
    allowed_ifaces = set()
    for rule in rules[2:]:
        attrs = dict(rule.attrib)
        if rule.tag != "allow" or attrs.get("send_destination") != NAME:
            check(False, "unexpected <%s %s> after the default denies" % (rule.tag, attrs))
            continue
        if set(attrs) == {"send_destination", "send_interface", "send_member"}:
            key = (attrs.get("send_interface"), attrs.get("send_member"))
            check(key in READ_ONLY, "a single-method allow is a read-only call: %s.%s" % key)
            allowed.add(key)
        elif set(attrs) == {"send_destination", "send_interface"}:
            check(attrs["send_interface"].startswith(NAME + "."),
                  "a whole-interface allow is one of the daemon's own: %s"
                  % attrs["send_interface"])
            allowed_ifaces.add(attrs["send_interface"])
        else:
            check(False, "default allow names destination and interface (and a member for "
                  "standard interfaces): %s" % attrs)
    missing = {k for k in READ_ONLY if k not in allowed and k[0] not in allowed_ifaces}
    check(not missing, "default allows every read-only call: %s"
          % sorted("%s.%s" % k for k in missing))

    # every interface of the API with methods is reachable (the daemon authorizes)
    api = ET.parse(api_path).getroot()
    n_methods = 0
    for iface in api.findall("interface"):
        methods = iface.findall("method")
        n_methods += len(methods)
        if methods:
            check(iface.get("name") in allowed_ifaces,
                  "%s can be called (the daemon authorizes its methods)" % iface.get("name"))
    check(allowed_ifaces <= {i.get("name") for i in api.findall("interface")},
          "no allow for an interface the API does not have")
    check(n_methods > 0, "the interface XML has methods")


if __name__ == "__main__":
    try:
        main()
    except ET.ParseError as e:
        check(False, "well-formed XML: %s" % e)
    print("1..%d" % len(results))
    for i, (ok, what) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, what))
    sys.exit(0 if all(ok for ok, _ in results) else 1)
