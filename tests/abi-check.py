#!/usr/bin/env python3
"""Diff the symbols a shared library exports against its version script.

Usage: abi-check.py NM LIBRARY VERSION_SCRIPT

Every name in the script's global: section must be exported (defined) by the
library, and the library must export nothing else. Exits 77 (skip) when nm cannot
read dynamic symbols.
"""
import re
import subprocess
import sys


def script_globals(path):
    names = set()
    section = None
    unversioned = False
    with open(path) as f:
        for line in f:
            # The "# unversioned:" comment lists names exported outside any node.
            if line.startswith('# unversioned:'):
                unversioned = True
            elif unversioned and line.startswith('#   '):
                names.update(line[1:].split())
            line = line.split('#')[0].strip()
            m = re.match(r'^(global|local)\s*:\s*(.*)$', line)
            if m:
                section, line = m.group(1), m.group(2)
            if section != 'global':
                continue
            for item in line.split(';'):
                item = item.strip()
                if item and item not in ('{', '}') and not item.startswith('}'):
                    names.add(item)
    return names


def exported(nm, lib):
    try:
        out = subprocess.run([nm, '-D', '--defined-only', lib], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print('cannot run %s: %s' % (nm, e))
        sys.exit(77)
    names = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        kind, name = parts[-2], parts[-1]
        if kind == 'A':           # version nodes such as PROBE_0
            continue
        names.add(re.sub(r'@.*$', '', name))
    return names


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    nm, lib, script = argv[1:]
    want = script_globals(script)
    have = exported(nm, lib)
    if not want:
        print('no global: names in %s' % script)
        return 1
    missing = sorted(want - have)
    extra = sorted(have - want)
    for name in missing:
        print('in the version script but not exported: %s' % name)
    for name in extra:
        print('exported but not in the version script: %s' % name)
    if missing or extra:
        return 1
    print('%d symbols, all listed' % len(have))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
