#!/usr/bin/env python3
"""Run the -finstrument-functions example and check its JSON report.

Usage: check-instrument.py INSTRUMENT

The example's call graph is known (see examples/instrument.c): every function's
calls and primitive calls, and every caller -> callee edge with its calls, must be
exactly what the program does, with the functions named from the symbol tables.
"""
import json
import os
import subprocess
import sys
import tempfile

# name: (calls, prim_calls)
SITES = {
    'main': (1, 1),
    'worker': (1, 1),
    'top': (150, 150),
    'left': (150, 150),
    'right': (150, 150),
    'bottom': (300, 300),
    'fib': (465, 1),
}
EDGES = {
    ('main', 'top'): 100,
    ('worker', 'top'): 50,
    ('top', 'left'): 150,
    ('top', 'right'): 150,
    ('left', 'bottom'): 150,
    ('right', 'bottom'): 150,
    ('main', 'fib'): 1,
    ('fib', 'fib'): 464,
}


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'report.json')
        env = dict(os.environ, PROBE_OUTPUT=out, PROBE_FORMAT='json')
        proc = subprocess.run([argv[1]], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
        sys.stderr.write(proc.stderr)
        if proc.returncode != 0:
            print('instrument exited %d' % proc.returncode)
            return 1
        with open(out) as f:
            doc = json.load(f)
    if doc.get('schema') != 'probe/1':
        print('schema is %r' % doc.get('schema'))
        return 1
    sites = doc['sites']
    by_name = {}
    for s in sites:
        by_name.setdefault(s['name'], []).append(s)
    bad = 0
    for name, (calls, prim) in sorted(SITES.items()):
        found = by_name.get(name, [])
        if len(found) != 1:
            print('%s: %d sites, expected 1' % (name, len(found)))
            bad += 1
            continue
        s = found[0]
        if (s['calls'], s['prim_calls']) != (calls, prim):
            print('%s: calls %d/%d, expected %d/%d'
                  % (name, s['calls'], s['prim_calls'], calls, prim))
            bad += 1
        if s['kind'] != 'scope' or s['function'] != name or not s['file']:
            print('%s: described as %r' % (name, s))
            bad += 1
        if s['total_ns'] < s['self_ns'] or s['max_ns'] < s['min_ns']:
            print('%s: inconsistent times %r' % (name, s))
            bad += 1
    # Every edge between the example's functions, and no other.
    edges = {}
    for e in doc['edges']:
        caller = sites[e['caller_id']]['name']
        callee = sites[e['callee_id']]['name']
        if caller in SITES and callee in SITES:
            edges[(caller, callee)] = e['calls']
    if edges != EDGES:
        for key in sorted(set(edges) | set(EDGES)):
            if edges.get(key) != EDGES.get(key):
                print('edge %s -> %s: %r calls, expected %r'
                      % (key[0], key[1], edges.get(key), EDGES.get(key)))
        bad += 1
    if bad:
        return 1
    print('ok: %d sites, %d edges checked' % (len(SITES), len(EDGES)))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
