#!/usr/bin/env python3
"""Run the heap example with PROBE_MEM=1 and check its heap report.

Usage: check-heap.py HEAP

Its JSON report names load_cache first among the live (leaks) sites, about 8 MiB,
and parse_lines first among the temporaries; the text report has the sections.
Without PROBE_MEM it says how to run it and exits 2.
"""
import json
import os
import subprocess
import sys


def run(exe, fmt, mem=True):
    env = dict(os.environ, PROBE_MEM_OUTPUT='/dev/null', PROBE_MEM_SAMPLE='65536')
    env.pop('PROBE_MEM', None)
    if mem:
        env['PROBE_MEM'] = '1'
    return subprocess.run([exe, fmt], capture_output=True, text=True, env=env,
                          timeout=60)


def main(argv):
    exe = argv[1]
    problems = []
    off = run(exe, 'json', mem=False)
    if off.returncode != 2:
        problems.append('without PROBE_MEM: exit %d' % off.returncode)
    r = run(exe, 'json')
    if r.returncode == 1 and 'not supported' in r.stderr.lower():
        return 77
    if r.returncode != 0:
        print('heap json exited %d: %s' % (r.returncode, r.stderr))
        return 1
    doc = json.loads(r.stdout.split('\n', 1)[1])
    leaks, temps = doc['leaks'], doc['temporaries']
    if not leaks or leaks[0]['frames'][0] != 'load_cache':
        problems.append('first live site %r' % leaks[:1])
    elif not 6 << 20 <= leaks[0]['bytes'] <= 10 << 20:
        problems.append('load_cache holds %d bytes, not about 8 MiB' % leaks[0]['bytes'])
    if not temps or temps[0]['frames'][0] != 'parse_lines':
        problems.append('first temporary %r' % temps[:1])
    t = run(exe, 'text')
    for section in ('top allocation sites', 'in use now',
                    'in use at the peak', 'temporary allocations'):
        if section not in t.stdout:
            problems.append('text report without %r' % section)
    for p in problems:
        print('FAIL: ' + p)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
