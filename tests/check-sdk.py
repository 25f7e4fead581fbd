#!/usr/bin/python3
"""Checks the SDK boundary of libzlayer-tunnel-1. Prints TAP.

Usage: check-sdk.py --library LIB --plugins-dir DIR HEADER...

HEADER... are the installed headers. Checks that
- the library exports only zlt_* symbols, all under the version node ZLAYER_TUNNEL_1.0;
- every function an installed header declares at file scope is marked
  ZLT_AVAILABLE_IN_ALL, and the exported symbols are exactly those (nothing private
  leaks, nothing public is missing);
- no installed header includes a header that is not installed;
- the in-tree plugins include only their own headers, config.h and installed headers
  (they are built against the SDK alone).
"""
import argparse
import os
import re
import subprocess
import sys

MACRO = "ZLT_AVAILABLE_IN_ALL"
VERSION_NODE = "ZLAYER_TUNNEL_1.0"

results = []


def check(ok, what):
    results.append((bool(ok), what))


def strip_comments(text):
    return re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)


def file_scope_declarations(text):
    """(name, marked) for each function declared at file scope, and G_DECLARE_* types."""
    text = strip_comments(text)
    # join macro continuation lines and drop preprocessor lines
    text = re.sub(r"\\\n", " ", text)
    text = "\n".join("" if l.lstrip().startswith("#") else l for l in text.split("\n"))
    # drop brace bodies (structs, enums) so their function pointers are not taken
    out, depth = [], 0
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    text = "".join(out)
    # macros that declare nothing exported and end without a semicolon
    text = re.sub(r"G_DEFINE_AUTO\w*_CLEANUP_\w+ \([^)]*\)", ";", text)
    decls = []
    for stmt in text.split(";"):
        s = " ".join(stmt.split())
        s = re.sub(r"^G_BEGIN_DECLS ?|^G_END_DECLS ?", "", s)
        s = re.sub(r"G_BEGIN_DECLS|G_END_DECLS", "", s).strip()
        if not s or s.startswith("typedef"):
            continue
        marked = s.startswith(MACRO)
        m = re.search(r"G_DECLARE_\w+ \(\s*\w+\s*,\s*(\w+)\s*,", s)
        if m:
            decls.append((m.group(1) + "_get_type", marked))
            # what follows the G_DECLARE_*() call in the same statement
            rest = s[s.index(")", m.end()) + 1:].strip()
            if not rest or rest.startswith("typedef"):
                continue
            s = rest
            marked = s.startswith(MACRO)
        m = re.search(r"\b(\w+) \(", s)
        if m:
            decls.append((m.group(1), marked))
    return decls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", required=True)
    ap.add_argument("--plugins-dir", required=True)
    ap.add_argument("headers", nargs="+")
    args = ap.parse_args()

    out = subprocess.run(["nm", "-D", "--defined-only", args.library], check=True,
                         capture_output=True, text=True).stdout
    exported = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[1] == "A":
            continue
        name, _, version = parts[2].partition("@@")
        exported[name] = version
    check(exported, "the library exports symbols")
    bad = sorted(n for n in exported if not n.startswith("zlt_"))
    check(not bad, "only zlt_* symbols are exported" + (": not " + ", ".join(bad) if bad else ""))
    bad = sorted(n for n, v in exported.items() if v != VERSION_NODE)
    check(not bad, "every symbol has the version " + VERSION_NODE +
          (": not " + ", ".join(bad[:10]) if bad else ""))

    installed = {os.path.basename(h) for h in args.headers}
    declared = set()
    for h in args.headers:
        base = os.path.basename(h)
        with open(h, encoding="utf-8") as f:
            text = f.read()
        unmarked = sorted(n for n, marked in file_scope_declarations(text) if not marked)
        declared.update(n for n, marked in file_scope_declarations(text) if marked)
        check(not unmarked, "%s: every declaration is marked %s%s" %
              (base, MACRO, (": not " + ", ".join(unmarked)) if unmarked else ""))
        includes = re.findall(r'^#include "([^"]+)"', text, flags=re.M)
        private = sorted(i for i in includes if i not in installed)
        check(not private, "%s includes only installed headers%s" %
              (base, (": not " + ", ".join(private)) if private else ""))

    missing = sorted(declared - set(exported))
    check(not missing, "every public declaration is exported" +
          (": not " + ", ".join(missing[:20]) if missing else ""))
    leaked = sorted(set(exported) - declared)
    check(not leaked, "nothing else is exported" +
          (": also " + ", ".join(leaked[:20]) if leaked else ""))

    for root, _, files in sorted(os.walk(args.plugins_dir)):
        for fn in sorted(files):
            if not fn.endswith((".c", ".h")):
                continue
            path = os.path.join(root, fn)
            with open(path, encoding="utf-8") as f:
                includes = re.findall(r'^#include "([^"]+)"', f.read(), flags=re.M)
            bad = sorted(i for i in includes
                         if i != "config.h" and i not in installed
                         and not os.path.exists(os.path.join(root, i)))
            check(not bad, "plugin %s includes only the SDK%s" %
                  (os.path.relpath(path, args.plugins_dir),
                   (": not " + ", ".join(bad)) if bad else ""))

    print("1..%d" % len(results))
    for i, (ok, what) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, what))
    return 0 if all(ok for ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
