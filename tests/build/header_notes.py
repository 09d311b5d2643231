#!/usr/bin/env python3
"""The headers are the manual: probe.h's overview names every public function, and
each snapshot accessor and writer function says whether it is thread-safe.

usage: header_notes.py SOURCE_ROOT
"""
import glob
import os
import re
import sys


def main(root):
    failures = []
    inc = os.path.join(root, 'include', 'probe')
    with open(os.path.join(inc, 'probe.h')) as f:
        overview = f.read().split('*/', 1)[0]
    for h in sorted(glob.glob(os.path.join(inc, '*.h'))):
        with open(h) as f:
            text = f.read()
        for m in re.finditer(r'(/\*\*(?:(?!\*/).)*?\*/)\s*\nPROBE_EXPORT [^;]*?\b'
                             r'(probe_[a-z0-9]\w*)\s*\(', text, re.S):
            doc, name = m.groups()
            if name.startswith(('probe_snapshot_', 'probe_writer_')) and \
                    'Thread-safe' not in doc and 'thread' not in doc.lower():
                failures.append('%s: %s has no thread-safety note' %
                                (os.path.basename(h), name))
        for name in re.findall(r'PROBE_EXPORT [^;]*?\b(probe_(?:sampler|trace)_\w+)\s*\(',
                               text):
            if name + '()' not in overview:
                failures.append('probe.h overview does not list %s()' % name)
    for f in failures:
        print('FAIL:', f)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
