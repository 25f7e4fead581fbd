#!/usr/bin/python3
# check-reference.py REFERENCE-DIR EXAMPLES-DIR: the built reference has its pages, and
# each page shows its examples as they are in examples/ (every line, in order). TAP.

import html
import os
import re
import sys

PAGES = {
    'writing-a-validator.html': ['example-validator.c', 'check-validator.c'],
    'embedding.html': ['embed-server.c', 'embed-agent.c', 'embed-access.c', 'example-echo.c'],
    'overview.html': [],
}


def page_text(path):
    with open(path, encoding='utf-8') as f:
        text = re.sub(r'<[^>]+>', '', f.read())
    return html.unescape(text)


def shows_in_order(text, source):
    pos = 0
    for line in source.splitlines():
        line = line.strip()
        if not line:
            continue
        found = text.find(line, pos)
        if found < 0:
            return line
        pos = found + len(line)
    return None


def main(reference, examples):
    checks = []
    for page, sources in PAGES.items():
        path = os.path.join(reference, page)
        checks.append(('%s exists' % page, os.path.exists(path), None))
        if not os.path.exists(path):
            continue
        text = page_text(path)
        for name in sources:
            with open(os.path.join(examples, name), encoding='utf-8') as f:
                missing = shows_in_order(text, f.read())
            checks.append(('%s shows %s' % (page, name), missing is None, missing))
    for name in ['index.html', 'class.Validator.html', 'struct.Message.html',
                 'struct.Credential.html', 'class.Grant.html', 'class.Server.html',
                 'class.Agent.html', 'class.AccessManager.html', 'class.NodeManager.html']:
        checks.append(('%s exists' % name, os.path.exists(os.path.join(reference, name)), None))

    print('1..%d' % len(checks))
    failed = 0
    for n, (what, ok, detail) in enumerate(checks, 1):
        print('%s %d - %s' % ('ok' if ok else 'not ok', n, what))
        if not ok:
            failed += 1
            if detail:
                print('# first line not shown: %s' % detail)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2]))
