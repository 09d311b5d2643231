#!/usr/bin/env python3
"""Run the memory example and check what it prints.

Usage: check-memory.py MEMORY FORMAT

The first summary lists 100 Documents and 1200 Nodes (10 to 14 per document), the
diff shows -50 Documents and one Node fewer freed than created, and the report
(text or JSON) carries the memory section with the 50 Documents still live.
"""
import json
import subprocess
import sys


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    fmt = argv[2]
    proc = subprocess.run(argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=20)
    sys.stderr.write(proc.stderr)
    out = proc.stdout
    if proc.returncode != 0:
        print(out)
        print('memory exited %d' % proc.returncode)
        return 1
    loaded, rest = out.split('What closing 50 documents changed:', 1)
    nodes = sum(10 + i % 5 for i in range(100))
    rows = {}
    for line in loaded.splitlines():
        cols = line.split()
        if cols and cols[-1] in ('Document', 'Node'):
            rows[cols[-1]] = int(cols[0])
    if rows != {'Document': 100, 'Node': nodes}:
        print(out)
        print('first summary: %r, want 100 Documents and %d Nodes' % (rows, nodes))
        return 1
    freed_nodes = sum(10 + i % 5 for i in range(50)) - 1
    diff = {}
    section = rest[rest.index('change between two snapshots'):]
    for line in section.split('\n\n', 1)[0].splitlines():
        cols = line.split()
        if cols and cols[-1] in ('Document', 'Node'):
            diff[cols[-1]] = int(cols[0])
    if diff != {'Document': -50, 'Node': -freed_nodes}:
        print(out)
        print('diff: %r, want -50 Documents and -%d Nodes' % (diff, freed_nodes))
        return 1
    if fmt == 'json':
        doc = json.loads(rest[rest.index('{"schema"'):])
        tags = {t['tag']: t for t in doc['memory']['tags']}
        if tags['Document']['live_count'] != 50 or tags['Document']['frees'] != 50:
            print(out)
            print('json memory: %r' % tags['Document'])
            return 1
    elif 'Memory (tagged objects):' not in rest:
        print(out)
        print('the text report has no memory summary')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
