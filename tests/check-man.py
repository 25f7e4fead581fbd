#!/usr/bin/env python3
"""The man pages (doc/*.scd.in) against the programs they describe. Prints TAP.

  check-man.py --source-root DIR --cli ZLAYER_TUNNEL --daemon ZLAYER_TUNNELD [PAGE...]

zlayer-tunnel(1): every command of `zlayer-tunnel --help` and every verb of a command's
usage line (node add, session stop, token new) has a `## COMMAND` section, and every
such section is a command. For each command, every option its --help lists has an entry
(`*-s*, *--long*=_ARG_`) in its section, or is mentioned there and has an entry in the
section's group preamble (the bus options of DAEMON COMMANDS); short form and argument
name must match. The other way, an entry or a synopsis option the binary no longer has
fails, and so does any --option anywhere in a page that no program has.
zlayer-tunneld(8): the same for its OPTIONS; its signals (g_unix_signal_add in
daemon/zlt-daemon-main.c) have entries under SIGNALS.
Both: the exit codes (the EXIT_ enums) under EXIT STATUS, the environment variables the
sources read (g_getenv) under ENVIRONMENT.
zlayer-tunnel.conf(5): every key of data/zlayer-tunnel.conf, commented `#key=` lines
included, has an entry (`*key*=_VALUE_`) in its group's section; every group the
daemon knows (its unknown-group message lists them) has a section; and every key the
page documents is known to zlayer-tunneld --check (a probe per key: a key the programs
no longer know fails).
zlayer-tunnel-tokens(5): every field the token-file validator accepts (its unknown-key
message lists them) has an entry, and every documented field is accepted.
PAGES (the built ones): `man --warnings -l` renders each without a warning.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HELP_ENV = dict(os.environ, LC_ALL="C.UTF-8", LANGUAGE="")

# options of other programs that the pages show in examples
FOREIGN_OPTIONS = {"--now", "--dest", "--object-path"}


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = False

    def ok(self, good, description, details=()):
        self.n += 1
        print("%s %d - %s" % ("ok" if good else "not ok", self.n, description))
        if not good:
            self.failed = True
            for line in details:
                print("# " + line)

    def skip(self, description):
        self.n += 1
        print("ok %d # SKIP %s" % (self.n, description))

    def done(self):
        print("1..%d" % self.n)
        return 1 if self.failed else 0


def run(argv, env=HELP_ENV):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=60, check=False)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# ---- --help ----

OPTION_LINE = re.compile(r"^\s+(?:-([A-Za-z0-9]), )?--([a-z0-9][a-z0-9-]*)(?:=(\S+))?(?:\s|$)")


def help_options(text):
    """{--long: (short or None, argument or None)} of a GOption help, --help left out"""
    options = {}
    for line in text.splitlines():
        m = OPTION_LINE.match(line)
        if m and m.group(2) != "help":
            options["--" + m.group(2)] = (m.group(1) and "-" + m.group(1), m.group(3))
    return options


def cli_commands(cli):
    """[(path, options)] for every command and verb of zlayer-tunnel"""
    rc, out, _ = run([cli, "--help"])
    if rc != 0:
        raise RuntimeError("%s --help exited %d" % (cli, rc))
    names = []
    in_commands = False
    for line in out.splitlines():
        if line.startswith("commands"):
            in_commands = True
        elif in_commands:
            m = re.match(r"^  ([a-z][a-z-]*)(?:\s|$)", line)
            if m:
                names.append(m.group(1))
    commands = []
    for name in names:
        rc, out, err = run([cli, name, "--help"])
        if rc != 0:
            raise RuntimeError("%s %s --help exited %d: %s" % (cli, name, rc, err))
        verbs = command_verbs(name, out)
        if not verbs:
            commands.append((name, help_options(out)))
            continue
        for verb in verbs:
            rc, vout, err = run([cli, name, verb, "--help"])
            if rc != 0:
                raise RuntimeError("%s %s %s --help exited %d: %s" % (cli, name, verb, rc, err))
            commands.append((name + " " + verb, help_options(vout)))
    return commands


def command_verbs(name, help_text):
    """The verbs of a usage line: "usage: zlayer-tunnel node add … | node remove NAME"
    or GOption's "Usage:\\n  token [OPTION…] new — make a token" (as the completion)"""
    lines = help_text.splitlines()
    usage = [l for l in lines if l.startswith("usage: ")]
    for i, line in enumerate(lines[:-1]):
        if line == "Usage:":
            usage.append(lines[i + 1])
    verbs = []
    for line in usage:
        for m in re.finditer(r"(?:^|[ |])%s(?: \[OPTION…\])? ([a-z][a-z-]*)" % re.escape(name),
                             line):
            if m.group(1) not in verbs:
                verbs.append(m.group(1))
    return verbs


# ---- scdoc sources ----

def scd_lines(path):
    """the lines of a page, literal blocks (```) blanked out"""
    lines = []
    literal = False
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if line.startswith("```"):
                literal = not literal
                lines.append("")
            else:
                lines.append("" if literal else line)
    return lines


def raw_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def sections(lines):
    """{(h1, h2 or None): [lines]}; h2 None is the part of h1 before its first ##"""
    result = {}
    h1, h2 = None, None
    for line in lines:
        if line.startswith("# "):
            h1, h2 = line[2:].strip(), None
            result.setdefault((h1, None), [])
        elif line.startswith("## "):
            h2 = line[3:].strip()
            result.setdefault((h1, h2), [])
        elif h1 is not None:
            result[(h1, h2)].append(line)
    return result


ENTRY_OPTION = re.compile(r"\*(-[A-Za-z0-9])\*|\*(--[a-z0-9][a-z0-9-]*)\*(?:=_(.+?)_)?(?=,|$)")


def option_entries(lines):
    """{--long: (short, argument)} of the entry lines (`*-c*, *--config*=_FILE_` then a
    tab-indented description) in @lines"""
    entries = {}
    for i, line in enumerate(lines):
        if not line.startswith("*-") or i + 1 >= len(lines) or not lines[i + 1].startswith("\t"):
            continue
        short = None
        for m in ENTRY_OPTION.finditer(line):
            if m.group(1):
                short = m.group(1)
            else:
                entries[m.group(2)] = (short, m.group(3))
                short = None
    return entries


def mentioned_options(lines):
    return set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", "\n".join(lines)))


def synopsis_options(lines, program):
    """options in the synopsis lines (`*zlayer-tunnel server* [...]`)"""
    found = set()
    for line in lines:
        if line.startswith("*" + program):
            found |= mentioned_options([line])
    return found


def entry_words(lines):
    """the bold words that start entry lines (*SIGHUP*, *0*, *ZLT_BUS*)"""
    words = set()
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and lines[i + 1].startswith("\t"):
            words |= set(re.findall(r"\*([^*]+)\*", line))
    return words


def compare_options(tap, what, expected, entries, common=None, mentioned=frozenset()):
    """every option of @expected (from --help) documented as the binary has it"""
    missing, wrong = [], []
    for option, (short, arg) in sorted(expected.items()):
        entry = entries.get(option)
        if entry is None and common is not None and option in common and option in mentioned:
            entry = common[option]
        if entry is None:
            missing.append(option)
        elif entry != (short, arg):
            wrong.append("%s: the page has %s%s, --help has %s%s" % (
                option, entry[0] + ", " if entry[0] else "", option + ("=" + entry[1] if entry[1] else ""),
                short + ", " if short else "", option + ("=" + arg if arg else "")))
    tap.ok(not missing, "%s: every option of --help has an entry" % what,
           ["no entry for " + o for o in missing])
    tap.ok(not wrong, "%s: short forms and arguments as in --help" % what, wrong)


# ---- zlayer-tunnel(1) ----

def check_cli_page(tap, page, cli, all_options):
    lines = scd_lines(page)
    secs = sections(lines)
    commands = cli_commands(cli)
    groups = ("COMMANDS", "DAEMON COMMANDS")
    documented = {h2: (h1, body) for (h1, h2), body in secs.items() if h1 in groups and h2}
    names = [name for name, _ in commands]
    missing = [n for n in names if n not in documented]
    tap.ok(not missing, "zlayer-tunnel(1): every command has a section (%d commands)" % len(names),
           ["no ## %s section" % n for n in missing])
    extra = [n for n in documented if n not in names]
    tap.ok(not extra, "zlayer-tunnel(1): every command section is a command",
           ["## %s: zlayer-tunnel has no such command" % n for n in extra])

    for name, expected in commands:
        if name not in documented:
            continue
        h1, body = documented[name]
        preamble = option_entries(secs.get((h1, None), []))
        entries = option_entries(body)
        compare_options(tap, "zlayer-tunnel %s" % name, expected, entries, preamble,
                        mentioned_options(body))
        stale = sorted((set(entries) | synopsis_options(body, "zlayer-tunnel " + name))
                       - set(expected) - {"--help"})
        tap.ok(not stale, "zlayer-tunnel %s: every option the page gives it exists" % name,
               ["%s is not an option of zlayer-tunnel %s" % (o, name) for o in stale])
    # the shared entries (--session, --json) are options of some command
    for h1 in groups:
        preamble = option_entries(secs.get((h1, None), []))
        stale = sorted(set(preamble) - all_options)
        tap.ok(not stale, "zlayer-tunnel(1) %s: the shared entries are options" % h1,
               ["%s is no command's option" % o for o in stale])


def check_exit_codes(tap, what, page, source):
    codes = sorted(set(re.findall(r"\bEXIT_[A-Z_]+ = (\d+)", raw_text(source))), key=int)
    words = entry_words(sections(scd_lines(page)).get(("EXIT STATUS", None), []))
    missing = [c for c in codes if c not in words]
    extra = sorted(w for w in words if w.isdigit() and w not in codes)
    tap.ok(codes and not missing and not extra,
           "%s: EXIT STATUS has the codes of %s (%s)" % (what, os.path.basename(source),
                                                        ", ".join(codes)),
           ["no entry for exit code %s" % c for c in missing]
           + ["exit code %s is not in the sources" % c for c in extra])


def check_environment(tap, what, page, sources):
    names = set()
    for source in sources:
        names |= set(re.findall(r'g_getenv \("([A-Z][A-Z0-9_]*)"\)', raw_text(source)))
    words = entry_words(sections(scd_lines(page)).get(("ENVIRONMENT", None), []))
    missing = sorted(names - words)
    tap.ok(names and not missing, "%s: ENVIRONMENT has %s" % (what, ", ".join(sorted(names))),
           ["no entry for %s" % n for n in missing])


# ---- zlayer-tunneld(8) ----

def check_daemon_page(tap, page, daemon, source_root):
    rc, out, err = run([daemon, "--help"])
    if rc != 0:
        raise RuntimeError("%s --help exited %d: %s" % (daemon, rc, err))
    expected = help_options(out)
    secs = sections(scd_lines(page))
    body = secs.get(("OPTIONS", None), [])
    entries = option_entries(body)
    compare_options(tap, "zlayer-tunneld(8)", expected, entries)
    synopsis = mentioned_options(secs.get(("SYNOPSIS", None), []))
    stale = sorted((set(entries) | synopsis) - set(expected) - {"--help"})
    tap.ok(not stale, "zlayer-tunneld(8): every option the page gives it exists",
           ["%s is not an option of zlayer-tunneld" % o for o in stale])
    main_c = os.path.join(source_root, "daemon", "zlt-daemon-main.c")
    signals = set(re.findall(r"g_unix_signal_add \((SIG[A-Z0-9]+)", raw_text(main_c)))
    words = entry_words(secs.get(("SIGNALS", None), []))
    documented = set()
    for w in words:
        documented |= set(re.findall(r"SIG[A-Z0-9]+", w))
    missing = sorted(signals - documented)
    extra = sorted(documented - signals)
    tap.ok(signals and not missing and not extra,
           "zlayer-tunneld(8): SIGNALS has what the daemon handles (%s)" % ", ".join(sorted(signals)),
           ["no entry for " + s for s in missing] + [s + " is not handled" for s in extra])
    return expected


# ---- configuration ----

def normalise_group(group):
    for prefix in ("service:", "node:"):
        if group.startswith(prefix):
            return prefix + "NAME"
    return group


def shipped_keys(conf):
    """{group: [keys]} of the shipped file, commented `#key=` and `#[group]` lines too"""
    keys = {}
    group = None
    with open(conf, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^#?\[([a-z][a-z0-9:-]*)\]\s*$", line)
            if m:
                group = normalise_group(m.group(1))
                keys.setdefault(group, [])
                continue
            m = re.match(r"^#?([a-z][a-z0-9-]*)=", line)
            if m and group is not None and m.group(1) not in keys[group]:
                keys[group].append(m.group(1))
    return keys


def key_entries(lines):
    entries = []
    for i, line in enumerate(lines):
        if line.startswith("*") and i + 1 < len(lines) and lines[i + 1].startswith("\t"):
            entries += re.findall(r"\*([a-z][a-z0-9-]*)\*=", line)
    return entries


def page_groups(page):
    """{group: [documented keys]} of the GROUPS AND KEYS sections (## [group])"""
    groups = {}
    for (h1, h2), body in sections(scd_lines(page)).items():
        if h1 == "GROUPS AND KEYS" and h2:
            m = re.match(r"^\[([a-z][a-zA-Z0-9:-]*)\]$", h2)
            if m:
                groups[m.group(1)] = key_entries(body)
    return groups


class Prober:
    """Runs zlayer-tunneld --check on small configs in a private directory"""

    def __init__(self, daemon, tmp):
        self.daemon = daemon
        self.tmp = tmp
        self.hash = "0" * 64  # sha256 of nothing we use; only the format matters
        self.tokens = os.path.join(tmp, "tokens")
        self.agent_token = os.path.join(tmp, "agent.token")
        self.write(self.tokens, self.hash + " name=probe\n")
        self.write(self.agent_token, "zlt_" + "0" * 64 + "\n")

    def write(self, path, text):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    def check(self, text):
        path = os.path.join(self.tmp, "probe.conf")
        self.write(path, text)
        return run([self.daemon, "--check", "--config", path])

    def server(self, extra_server="", extra_validator=""):
        return ("[server]\nlisten=127.0.0.1:0\nvalidator=token-file\n%s"
                "[validator:token-file]\npath=%s\n%s" % (extra_server, self.tokens, extra_validator))

    def agent(self, extra_agent="", extra_service=""):
        return ("[agent]\nserver=ws://127.0.0.1:9/tunnel/v1\ntoken-file=%s\n%s"
                "[service:probe]\nlocal-port=1\n%s" % (self.agent_token, extra_agent, extra_service))

    def config_for(self, group, line):
        if group == "daemon":
            return "[daemon]\n%s\n" % line + self.server()
        if group == "server":
            return self.server(extra_server=line + "\n")
        if group == "validator:token-file":
            return self.server(extra_validator=line + "\n")
        if group == "validator:postgres":
            return ("[server]\nlisten=127.0.0.1:0\nvalidator=postgres\n[validator:postgres]\n"
                    "conninfo=hostaddr=127.0.0.1 port=9 dbname=probe\n%s\n" % line)
        if group == "validator:webhook":
            return ("[server]\nlisten=127.0.0.1:0\nvalidator=webhook\n[validator:webhook]\n"
                    "url=https://127.0.0.1:9/hook\n%s\n" % line)
        if group == "validator:allow-all":
            return ("[server]\nlisten=127.0.0.1:0\nvalidator=allow-all\ninsecure=true\n"
                    "allow-legacy-auth=true\n[validator:allow-all]\n%s\n" % line)
        if group == "agent":
            return self.agent(extra_agent=line + "\n")
        if group == "service:NAME":
            return self.agent(extra_service=line + "\n")
        if group == "node:NAME":
            return ("[daemon]\nnode-name=a\n[node:probe]\nfrom=a\nto=b\n"
                    "server=ws://127.0.0.1:9/tunnel/v1\nlocal-port=1\ntoken-file=%s\n%s\n"
                    % (self.agent_token, line))
        return None

    def key_unknown(self, group, key):
        """True when --check calls @key of @group unknown, None when the config for the
        group cannot be made"""
        text = self.config_for(group, "%s=probe" % key)
        if text is None:
            return None
        _, _, err = self.check(text)
        return re.search(r"\] %s: unknown key" % re.escape(key), err) is not None

    def known_groups(self):
        _, _, err = self.check("[zlt-probe-group]\n" + self.server())
        m = re.search(r"unknown group \(known: (.*)\)", err)
        return [normalise_group(g) for g in re.findall(r"\[([^\]]+)\]", m.group(1))] if m else []

    def token_fields(self, line_fields):
        self.write(self.tokens, "%s name=probe %s\n" % (self.hash, line_fields))
        try:
            return self.check(self.server())
        finally:
            self.write(self.tokens, self.hash + " name=probe\n")


def check_conf_page(tap, page, conf, prober):
    documented = page_groups(page)
    shipped = shipped_keys(conf)
    for group, keys in sorted(shipped.items()):
        if group not in documented:
            tap.ok(False, "zlayer-tunnel.conf(5) [%s]: has a section" % group,
                   ["no ## [%s] section" % group])
            continue
        missing = [k for k in keys if k not in documented[group]]
        tap.ok(not missing, "zlayer-tunnel.conf(5) [%s]: every key of %s (%d) has an entry"
               % (group, os.path.basename(conf), len(keys)),
               ["no entry for %s" % k for k in missing])

    known = prober.known_groups()
    tap.ok(bool(known), "zlayer-tunneld --check lists the groups it knows")
    missing = [g for g in known if g not in documented
               and not (g == "validator:NAME" and any(d.startswith("validator:") for d in documented))]
    tap.ok(known and not missing, "zlayer-tunnel.conf(5): every group the daemon knows has a section",
           ["no ## [%s] section" % g for g in missing])

    for group, keys in sorted(documented.items()):
        # the probe must be able to tell: an unknown key is reported as such
        canary = prober.key_unknown(group, "zlt-no-such-key")
        if not canary:
            tap.skip("zlayer-tunnel.conf(5) [%s]: the daemon does not report unknown keys of "
                     "this group, its keys cannot be probed" % group)
            continue
        unknown = [k for k in keys if prober.key_unknown(group, k)]
        tap.ok(not unknown, "zlayer-tunnel.conf(5) [%s]: zlayer-tunneld knows every documented "
               "key (%d)" % (group, len(keys)),
               ["%s: unknown to zlayer-tunneld --check" % k for k in unknown])


def check_tokens_page(tap, page, prober):
    secs = sections(scd_lines(page))
    fields = key_entries(secs.get(("FIELDS", None), []))
    _, _, err = prober.token_fields("zlt-probe-field=1")
    m = re.search(r"unknown key ‘zlt-probe-field’ \(expected (.*)\)", err)
    accepted = re.split(r", | or ", m.group(1)) if m else []
    tap.ok(bool(accepted), "the token-file validator lists the fields it accepts",
           ["stderr: " + err.strip()])
    missing = [f for f in accepted if f not in fields]
    tap.ok(accepted and not missing,
           "zlayer-tunnel-tokens(5): every field the validator accepts has an entry (%s)"
           % ", ".join(accepted), ["no entry for %s=" % f for f in missing])
    rejected = []
    for field in fields:
        _, _, err = prober.token_fields("%s=probe" % field)
        if "unknown key ‘%s’" % field in err:
            rejected.append(field)
    tap.ok(fields and not rejected, "zlayer-tunnel-tokens(5): every documented field is accepted",
           ["%s=: unknown to the validator" % f for f in rejected])


# ---- every page ----

def check_all_mentions(tap, pages, all_options):
    for page in pages:
        text = raw_text(page)
        unknown = sorted(set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", text))
                         - all_options - FOREIGN_OPTIONS)
        tap.ok(not unknown, "%s: every --option it names exists" % os.path.basename(page),
               ["%s is no option of zlayer-tunnel or zlayer-tunneld" % o for o in unknown])


def check_rendering(tap, built):
    man = shutil.which("man")
    if not built:
        # CI installs scdoc (.ci/deps): there a page that was not built is a failure
        if os.environ.get("CI") == "true":
            tap.ok(False, "man pages built", ["CI=true but no page was built: is scdoc missing?"])
        else:
            tap.skip("man pages not built (no scdoc)")
        return
    if man is None:
        tap.skip("man is not installed: pages not rendered")
        return
    for page in built:
        env = dict(HELP_ENV, MANWIDTH="80", MAN_KEEP_FORMATTING="")
        rc, out, err = run([man, "--warnings", "-E", "UTF-8", "-l", page], env=env)
        tap.ok(rc == 0 and not err.strip() and len(out) > 500,
               "%s renders without warnings" % os.path.basename(page),
               ["exit %d" % rc] + err.strip().splitlines())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-root", required=True)
    parser.add_argument("--cli", required=True)
    parser.add_argument("--daemon", required=True)
    parser.add_argument("pages", nargs="*", help="built man pages to render")
    args = parser.parse_args()

    doc = os.path.join(args.source_root, "doc")
    cli_page = os.path.join(doc, "zlayer-tunnel.1.scd.in")
    daemon_page = os.path.join(doc, "zlayer-tunneld.8.scd.in")
    conf_page = os.path.join(doc, "zlayer-tunnel.conf.5.scd.in")
    tokens_page = os.path.join(doc, "zlayer-tunnel-tokens.5.scd.in")
    conf = os.path.join(args.source_root, "data", "zlayer-tunnel.conf")
    tap = Tap()

    all_options = {"--help", "--version"}  # zlayer-tunnel's own, before a command
    for _, options in cli_commands(args.cli):
        all_options |= set(options)
    all_options |= set(check_daemon_page(tap, daemon_page, args.daemon, args.source_root))
    check_cli_page(tap, cli_page, args.cli, all_options)
    check_exit_codes(tap, "zlayer-tunnel(1)", cli_page,
                     os.path.join(args.source_root, "daemon", "zlt-cli.h"))
    check_exit_codes(tap, "zlayer-tunneld(8)", daemon_page,
                     os.path.join(args.source_root, "daemon", "zlt-daemon-main.c"))
    sources = []
    for sub in ("core", "daemon", "plugins"):
        for root, _, files in os.walk(os.path.join(args.source_root, sub)):
            sources += [os.path.join(root, f) for f in files if f.endswith(".c")]
    check_environment(tap, "zlayer-tunnel(1)", cli_page, sources)
    check_environment(tap, "zlayer-tunneld(8)", daemon_page,
                      [s for s in sources if "zlt-cli" not in s])
    check_all_mentions(tap, [cli_page, daemon_page, conf_page, tokens_page], all_options)

    with tempfile.TemporaryDirectory() as tmp:
        prober = Prober(args.daemon, tmp)
        check_conf_page(tap, conf_page, conf, prober)
        check_tokens_page(tap, tokens_page, prober)

    check_rendering(tap, args.pages)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
