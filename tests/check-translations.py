#!/usr/bin/env python3
"""Keeps the translations in po/ complete and checks that they reach the user. TAP.

check-translations.py catalog SOURCE_ROOT
    Extracts the catalog from the current sources the way `meson compile
    zlayer-tunnel-pot` does (xgettext over po/POTFILES.in with the glib preset's
    arguments and the ITS rules in data/), into a temporary directory, and fails
    for each language in po/LINGUAS whose .po file misses a msgid of the sources,
    has an untranslated or fuzzy message, fails `msgfmt --check`, or changes the
    printf conversions of a message. Each failure names the messages.

check-translations.py runtime SOURCE_ROOT LOCALEDIR ZLAYER_TUNNEL ZLAYER_TUNNELD
    Runs the built programs with LANGUAGE set to each language of po/LINGUAS under
    LC_ALL=C.UTF-8 (glibc ignores LANGUAGE only in the C/POSIX locale; C.UTF-8 is
    built into glibc 2.35 and later, so no locale has to be generated) and
    ZLT_LOCALEDIR=LOCALEDIR (the build tree's po/ directory, where meson compiles
    LANG/LC_MESSAGES/zlayer-tunnel.mo), and checks that the CLI's, the daemon's and
    the core library's messages come out as the .po file translates them, and in
    English without LANGUAGE.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

PACKAGE = "zlayer-tunnel"

# mesonbuild/modules/i18n.py, PRESET_ARGS['glib'] (meson 1.0): what po/meson.build's
# `i18n.gettext(..., preset: 'glib')` passes to xgettext
GLIB_PRESET_ARGS = [
    "--from-code=UTF-8",
    "--add-comments",
    "--keyword=_",
    "--keyword=N_",
    "--keyword=C_:1c,2",
    "--keyword=NC_:1c,2",
    "--keyword=g_dcgettext:2",
    "--keyword=g_dngettext:2,3",
    "--keyword=g_dpgettext2:2c,3",
    "--flag=N_:1:pass-c-format",
    "--flag=C_:2:pass-c-format",
    "--flag=NC_:2:pass-c-format",
    "--flag=g_dngettext:2:pass-c-format",
    "--flag=g_strdup_printf:1:c-format",
    "--flag=g_string_printf:2:c-format",
    "--flag=g_string_append_printf:2:c-format",
    "--flag=g_error_new:3:c-format",
    "--flag=g_set_error:4:c-format",
    "--flag=g_markup_printf_escaped:1:c-format",
    "--flag=g_log:3:c-format",
    "--flag=g_print:1:c-format",
    "--flag=g_printerr:1:c-format",
    "--flag=g_printf:1:c-format",
    "--flag=g_fprintf:2:c-format",
    "--flag=g_sprintf:2:c-format",
    "--flag=g_snprintf:3:c-format",
]

HOW_TO_UPDATE = (
    "to update: meson compile -C _build {pkg}-update-po, then in po/{lang}.po give "
    "every listed message its translation (an empty msgstr is untranslated; remove "
    "the '#, fuzzy' flag once a guessed translation is checked) and run "
    "msgfmt --check -o /dev/null po/{lang}.po"
)


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = False

    def result(self, ok, description, diagnostics=()):
        self.n += 1
        print(("ok" if ok else "not ok") + " %d - %s" % (self.n, description))
        for line in diagnostics:
            for part in str(line).splitlines() or [""]:
                print("# " + part)
        if not ok:
            self.failed = True
        sys.stdout.flush()

    def skip(self, description, reason):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, description, reason))

    def finish(self):
        print("1..%d" % self.n)
        return 1 if self.failed else 0


def unquote(s):
    """The text of a PO string literal (without its quotes)."""
    out = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b",
               "f": "\f", "v": "\v"}
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append(escapes.get(s[i + 1], s[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_po(path):
    """Entries of a .po/.pot file: dicts with msgctxt, msgid, msgid_plural, msgstr
    (a list), flags, refs and obsolete. The header is the entry with msgid ''."""
    entries = []
    cur = None
    field = None

    def new_entry():
        return {"flags": set(), "refs": [], "msgstr": [], "obsolete": False,
                "msgctxt": None, "msgid_plural": None}

    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            obsolete = line.startswith("#~")
            if obsolete:
                line = line[2:].lstrip()
            if not line.strip():
                if cur is not None and "msgid" in cur:
                    entries.append(cur)
                cur, field = None, None
                continue
            if cur is None:
                cur = new_entry()
            cur["obsolete"] = cur["obsolete"] or obsolete
            if line.startswith("#,"):
                cur["flags"].update(flag.strip() for flag in line[2:].split(","))
                continue
            if line.startswith("#:"):
                cur["refs"].extend(line[2:].split())
                continue
            if line.startswith("#"):
                continue
            m = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+"(.*)"$', line)
            if m:
                key, text = m.group(1), unquote(m.group(2))
                if key.startswith("msgstr"):
                    cur["msgstr"].append(text)
                    field = ("msgstr", len(cur["msgstr"]) - 1)
                else:
                    cur[key] = text
                    field = key
            elif line.startswith('"') and line.endswith('"') and field is not None:
                text = unquote(line[1:-1])
                if isinstance(field, tuple):
                    cur["msgstr"][field[1]] += text
                else:
                    cur[field] += text
    if cur is not None and "msgid" in cur:
        entries.append(cur)
    return entries


def key_of(entry):
    return (entry["msgctxt"], entry["msgid"])


def show(entry, with_refs=True):
    text = entry["msgid"].replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    if len(text) > 120:
        text = text[:117] + "..."
    s = 'msgid "%s"' % text
    if entry["msgctxt"] is not None:
        s = 'msgctxt "%s" ' % entry["msgctxt"] + s
    if with_refs and entry["refs"]:
        s += " (" + " ".join(entry["refs"][:3]) + ("…" if len(entry["refs"]) > 3 else "") + ")"
    return s


CONVERSION = re.compile(
    r"%(?:(\d+)\$)?[-+ #0']*(?:\d+|\*)?(?:\.(?:\d+|\*)?)?(?:hh|h|ll|l|L|q|j|z|Z|t)?([diouxXeEfFgGaAcspnm%])"
)


def conversions(text):
    """The printf conversions of @text in argument order, as (length+type) strings,
    or None when a '%' starts no valid conversion."""
    found = {}
    sequential = []
    pos = 0
    while True:
        i = text.find("%", pos)
        if i < 0:
            break
        m = CONVERSION.match(text, i)
        if m is None:
            return None
        pos = m.end()
        if m.group(2) == "%":
            continue
        spec = m.group(0)
        # the argument's type: drop position, flags, width and precision
        kind = re.sub(r"^%(?:\d+\$)?[-+ #0']*(?:\d+|\*)?(?:\.(?:\d+|\*)?)?", "", spec)
        kind = {"i": "d"}.get(kind, kind)
        if m.group(1) is not None:
            found[int(m.group(1))] = kind
        else:
            sequential.append(kind)
    if found and sequential:
        return None
    if found:
        return [found.get(k) for k in range(1, max(found) + 1)]
    return sequential


def run(argv, **kwargs):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kwargs)


def read_linguas(srcdir):
    langs = []
    with open(os.path.join(srcdir, "po", "LINGUAS"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0]
            langs.extend(line.split())
    return langs


def check_policy(srcdir, env, tmp, policy_in, lang):
    """(ok, description, diagnostics): msgfmt --xml merges @lang into @policy_in (as
    meson's i18n.merge_file builds it), each message as po/LANG.po translates it."""
    import xml.etree.ElementTree as ET

    description = "%s: msgfmt --xml merges po/%s.po into %s" % (lang, lang, policy_in)
    podir = os.path.join(tmp, "podir-" + lang)
    os.makedirs(podir, exist_ok=True)
    shutil.copy(os.path.join(srcdir, "po", lang + ".po"), podir)
    with open(os.path.join(podir, "LINGUAS"), "w") as f:
        f.write(lang + "\n")
    out = os.path.join(tmp, lang + "-" + os.path.basename(policy_in)[:-3])
    r = run(["msgfmt", "--xml", "-d", podir, "--template", os.path.join(srcdir, policy_in),
             "-o", out], env=env)
    if r.returncode != 0:
        return False, description, [r.stderr]
    lang_attr = "{http://www.w3.org/XML/1998/namespace}lang"
    bad = []
    n = 0
    for action in ET.parse(out).getroot().iter("action"):
        for tag in ("description", "message"):
            source = [e for e in action.findall(tag) if e.get(lang_attr) is None]
            merged = [e for e in action.findall(tag) if e.get(lang_attr) == lang]
            if not source:
                continue
            want = translation(srcdir, lang, source[0].text or "")
            n += 1
            if not merged or merged[0].text != want:
                bad.append("action %s <%s>: expected %r, got %r"
                           % (action.get("id"), tag, want, merged[0].text if merged else None))
    return not bad and n > 0, description + " (%d messages)" % n, bad


def check_catalog(srcdir):
    tap = Tap()
    tmp = tempfile.mkdtemp(prefix="zlt-translations-")
    try:
        pot = os.path.join(tmp, PACKAGE + ".pot")
        env = dict(os.environ)
        # like meson's `--internal gettext pot --datadirs=`: the ITS rules in data/its
        env["GETTEXTDATADIRS"] = os.path.join(srcdir, "data")
        r = run(["xgettext", "--package-name=" + PACKAGE, "--directory=" + srcdir,
                 "--files-from=" + os.path.join(srcdir, "po", "POTFILES.in"),
                 "--output=" + pot] + GLIB_PRESET_ARGS, env=env)
        ok = r.returncode == 0 and os.path.exists(pot)
        tap.result(ok, "xgettext extracts the catalog of the current sources",
                   [] if ok else [r.stderr])
        if not ok:
            return tap.finish()
        template = [e for e in parse_po(pot) if e["msgid"] != "" and not e["obsolete"]]
        tap.result(len(template) > 0, "the catalog holds %d messages" % len(template))
        policy = [e for e in template if any(ref.startswith("data/") for ref in e["refs"])]
        tap.result(len(policy) > 0, "the catalog holds the polkit policy's messages (%d)" % len(policy),
                   [] if policy else ["xgettext found no ITS rules for data/*.policy.in"])

        langs = read_linguas(srcdir)
        tap.result(len(langs) > 0, "po/LINGUAS lists languages: " + " ".join(langs))
        unlisted = sorted(f[:-3] for f in os.listdir(os.path.join(srcdir, "po"))
                          if f.endswith(".po") and f[:-3] not in langs)
        tap.result(not unlisted, "every po/*.po is listed in po/LINGUAS",
                   ["not listed (meson neither builds nor installs it): po/%s.po" % l
                    for l in unlisted])

        checked_policies = {}
        for lang in langs:
            po = os.path.join(srcdir, "po", lang + ".po")
            hint = HOW_TO_UPDATE.format(pkg=PACKAGE, lang=lang)
            if not os.path.exists(po):
                tap.result(False, "%s: po/%s.po exists" % (lang, lang),
                           ["po/LINGUAS lists %s but po/%s.po is missing" % (lang, lang),
                            "create it: msginit --locale=%s --input=<the pot> --output=po/%s.po"
                            % (lang, lang)])
                continue

            r = run(["msgfmt", "--check", "-o", os.devnull, po])
            tap.result(r.returncode == 0, "%s: msgfmt --check accepts po/%s.po" % (lang, lang),
                       [] if r.returncode == 0 else [r.stderr])

            entries = parse_po(po)
            live = [e for e in entries if not e["obsolete"]]
            by_key = {key_of(e): e for e in live}

            header = by_key.get((None, ""))
            header_ok = header is not None and ("Language: %s\n" % lang) in header["msgstr"][0] \
                and "charset=UTF-8" in header["msgstr"][0]
            tap.result(header_ok, "%s: the header names the language and UTF-8" % lang,
                       [] if header_ok else ['expected "Language: %s\\n" and "charset=UTF-8"' % lang])

            missing = [e for e in template if key_of(e) not in by_key]
            tap.result(not missing,
                       "%s: every message of the current sources is in po/%s.po" % (lang, lang),
                       ["%d missing from po/%s.po:" % (len(missing), lang)]
                       + [show(e) for e in missing] + [hint] if missing else [])

            wanted = {key_of(e) for e in template}
            current = [by_key[k] for k in (key_of(e) for e in template) if k in by_key]
            untranslated = [e for e in current if not e["msgstr"] or any(s == "" for s in e["msgstr"])]
            tap.result(not untranslated, "%s: no untranslated message" % lang,
                       ["%d untranslated in po/%s.po:" % (len(untranslated), lang)]
                       + [show(e) for e in untranslated] + [hint] if untranslated else [])

            fuzzy = [e for e in live if e["msgid"] != "" and "fuzzy" in e["flags"]]
            tap.result(not fuzzy, "%s: no fuzzy message" % lang,
                       ["%d fuzzy in po/%s.po:" % (len(fuzzy), lang)]
                       + [show(e) for e in fuzzy] + [hint] if fuzzy else [])

            # msgfmt --check only compares the conversions of entries flagged c-format;
            # this covers every message whose msgid is a valid format
            bad_format = []
            for e in current:
                want = conversions(e["msgid"])
                if "no-c-format" in e["flags"] or want is None:
                    continue
                for text in e["msgstr"]:
                    got = conversions(text)
                    if got is None and not want:
                        continue  # a literal '%' in a message that is no format
                    if text and got != want:
                        bad_format.append("%s: msgstr has conversions %s, msgid %s"
                                          % (show(e, False), got, want))
            tap.result(not bad_format, "%s: each translation keeps its printf conversions" % lang,
                       bad_format)

            # what meson's i18n.merge_file does for the installed polkit policy
            for policy_in in sorted(ref.split(":")[0] for e in policy for ref in e["refs"]
                                    if ref.startswith("data/")):
                if policy_in in checked_policies.get(lang, set()):
                    continue
                checked_policies.setdefault(lang, set()).add(policy_in)
                tap.result(*check_policy(srcdir, env, tmp, policy_in, lang))

            stale = [e for e in live if e["msgid"] != "" and key_of(e) not in wanted]
            if stale:
                # not a failure: msgmerge (update-po) turns them into obsolete entries
                print("# %s: %d messages of po/%s.po are no longer in the sources (update-po "
                      "marks them obsolete)" % (lang, len(stale), lang))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.finish()


def translation(srcdir, lang, msgid):
    for e in parse_po(os.path.join(srcdir, "po", lang + ".po")):
        if not e["obsolete"] and e["msgctxt"] is None and e["msgid"] == msgid and e["msgstr"]:
            return e["msgstr"][0]
    return None


def cformat(template, args):
    """@template with its %s conversions (sequential or %N$s) replaced by @args."""
    it = iter(args)

    def one(m):
        if m.group(0) == "%%":
            return "%"
        if m.group(1):
            return args[int(m.group(1)) - 1]
        return next(it)

    return re.sub(r"%%|%(?:(\d+)\$)?s", one, template)


def check_runtime(srcdir, localedir, cli, daemon):
    tap = Tap()
    langs = read_linguas(srcdir)
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith("LC_") and k not in ("LANG", "LANGUAGE")}
    base_env["LC_ALL"] = "C.UTF-8"
    base_env["ZLT_LOCALEDIR"] = localedir

    r = run(["locale", "-a"]) if shutil.which("locale") else None
    if r is not None and r.returncode == 0 and not any(
            name.lower() in ("c.utf8", "c.utf-8") for name in r.stdout.split()):
        print("1..0 # SKIP this libc has no C.UTF-8 locale")
        return 0

    tmp = tempfile.mkdtemp(prefix="zlt-translations-")
    try:
        # [server] with a certificate and no key: an error of the core library (its
        # gi18n-lib domain), reported by the CLI
        pair_conf = os.path.join(tmp, "pair.conf")
        with open(pair_conf, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:0\ntls-certificate = %s\n"
                    % os.path.join(tmp, "missing.pem"))
        pair_msgid = "tls-certificate and tls-key go together: set both or neither"
        # an unknown group: an error of the daemon's own code
        group_conf = os.path.join(tmp, "group.conf")
        with open(group_conf, "w") as f:
            f.write("[no-such-group]\n")
        group_msgid = ("%s: [%s]: unknown group (known: [server], [validator:NAME], [agent], "
                       "[service:NAME], [node:NAME], [daemon])")
        option_msgid = "Check the configuration and exit without starting"

        def outputs(lang):
            """(rc, stdout, stderr) of the four runs, in @lang (None: no LANGUAGE)."""
            env = dict(base_env)
            if lang is not None:
                env["LANGUAGE"] = lang
            out = []
            for argv in ([cli, "--help"], [cli, "server", "--help"],
                         [cli, "server", "--check", "--config", pair_conf],
                         [daemon, "--check", "--config", group_conf]):
                r = run(argv, env=env, timeout=30)
                out.append((r.returncode, r.stdout, r.stderr))
            return out

        english = outputs(None)
        usage = english[0][1]
        ok = english[0][0] == 0 and usage.startswith("usage: zlayer-tunnel ")
        tap.result(ok, "without LANGUAGE, zlayer-tunnel --help prints the English usage",
                   [] if ok else ["rc %d, stdout:" % english[0][0], usage])
        ok = english[1][0] == 0 and option_msgid in english[1][1]
        tap.result(ok, "without LANGUAGE, zlayer-tunnel server --help is English",
                   [] if ok else ["rc %d, stdout:" % english[1][0], english[1][1]])
        ok = english[2][0] == 3 and pair_msgid in english[2][2]
        tap.result(ok, "without LANGUAGE, the core library's config error is English",
                   [] if ok else ["rc %d, stderr:" % english[2][0], english[2][2]])
        english_group = cformat(group_msgid, [group_conf, "no-such-group"])
        ok = english[3][0] == 3 and english_group in english[3][2]
        tap.result(ok, "without LANGUAGE, zlayer-tunneld's config error is English",
                   [] if ok else ["rc %d, stderr:" % english[3][0], english[3][2]])

        for lang in langs:
            mo = os.path.join(localedir, lang, "LC_MESSAGES", PACKAGE + ".mo")
            tap.result(os.path.exists(mo), "%s: the build compiled %s" % (lang, mo))
            got = outputs(lang)

            want = translation(srcdir, lang, usage)
            ok = want is not None and got[0][0] == 0 and got[0][1] == want
            tap.result(ok, "%s: zlayer-tunnel --help prints the usage as po/%s.po translates it"
                       % (lang, lang),
                       [] if ok else ["expected:", want or "(po/%s.po has no translation of the "
                                      "usage text)" % lang, "got rc %d:" % got[0][0], got[0][1]])

            want = translation(srcdir, lang, option_msgid)
            ok = want is not None and got[1][0] == 0 and want in got[1][1] \
                and option_msgid not in got[1][1]
            tap.result(ok, "%s: zlayer-tunnel server --help describes its options translated"
                       % lang, [] if ok else ["expected a line with: %s" % want, got[1][1]])

            want = translation(srcdir, lang, pair_msgid)
            ok = want is not None and got[2][0] == 3 and want in got[2][2]
            tap.result(ok, "%s: zlayer-tunnel reports the core library's config error translated"
                       % lang,
                       [] if ok else ["expected: %s" % want, "got rc %d:" % got[2][0], got[2][2]])

            want = translation(srcdir, lang, group_msgid)
            want = cformat(want, [group_conf, "no-such-group"]) if want is not None else None
            ok = want is not None and got[3][0] == 3 and want in got[3][2]
            tap.result(ok, "%s: zlayer-tunneld reports its own config error translated" % lang,
                       [] if ok else ["expected: %s" % want, "got rc %d:" % got[3][0], got[3][2]])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.finish()


def main(argv):
    if len(argv) >= 3 and argv[1] == "catalog":
        return check_catalog(argv[2])
    if len(argv) >= 6 and argv[1] == "runtime":
        return check_runtime(argv[2], argv[3], argv[4], argv[5])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
