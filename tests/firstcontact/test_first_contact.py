#!/usr/bin/env python3
"""First contact: what a new user sees of a small program run with the environment
variables (docs/environment.md).

usage: test_first_contact.py TINY CASE

TINY is tiny.c built; CASE names one of the functions case_* below. Exits 0 when every
check passes, 77 to skip, 1 with a message per failure.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

TINY, CASE = sys.argv[1:3]
# The kernel's name of the main thread: the program's name, at most 15 bytes.
COMM = os.path.basename(TINY)[:15]

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def tiny(env, args=()):
    """Run TINY with @env added; @return (status, stderr)."""
    full = dict(os.environ)
    for k in list(full):
        if k.startswith(('PROBE_', 'FC_')):
            del full[k]
    full.update(env)
    p = subprocess.run([TINY] + list(args), env=full, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stderr.decode('utf-8', 'replace')


def report(tmp, fmt, extra=None):
    out = os.path.join(tmp, 'report.' + fmt.split(':')[0])
    env = {'PROBE_OUTPUT': out, 'PROBE_FORMAT': fmt}
    env.update(extra or {})
    rc, err = tiny(env)
    check(rc == 0, '%s: exit status %d: %s' % (fmt, rc, err))
    with open(out) as f:
        return f.read()


def case_elapsed(tmp):
    """A 100 us program reports an elapsed time under 1 ms: no calibration wait at
    report time. The best of ten runs, so that a busy machine's preemption of some
    runs does not count."""
    best = None
    for _ in range(10):
        doc = json.loads(report(tmp, 'json'))
        ns = doc['clock']['elapsed_ns']
        best = ns if best is None else min(best, ns)
        check(doc['clock']['ns_per_tick'] > 0, 'ns_per_tick %r' % doc['clock'])
        scope = [s for s in doc['sites'] if s['name'] == 'tiny_work']
        # The scope ran >= 100 us of CPU: its time must not be scaled to nonsense.
        if check(len(scope) == 1, 'no tiny_work site'):
            check(90000 <= scope[0]['total_ns'] <= ns,
                  'tiny_work took %d ns of %d ns elapsed' % (scope[0]['total_ns'], ns))
    limit = int(os.environ.get('FC_ELAPSED_MAX_NS', '1000000'))
    check(best < limit, 'elapsed %d ns, best of 10 runs, for a 100 us program' % best)


def case_rusage_wall(tmp):
    """rusage.wall_ns is the process's age, not a CLOCK_MONOTONIC reading: no more
    than the run's wall time as this script saw it (plus the 10 ms step of the
    process start time), no less than the report's elapsed time."""
    start = time.monotonic()
    doc = json.loads(report(tmp, 'json'))
    took = int((time.monotonic() - start) * 1e9)
    wall = doc['rusage']['wall_ns']
    check(doc['clock']['elapsed_ns'] <= wall <= took + 10000000,
          'rusage.wall_ns %d, elapsed_ns %d, the run took %d ns' %
          (wall, doc['clock']['elapsed_ns'], took))


def case_name_text(tmp):
    text = report(tmp, 'text')
    lines = [l for l in text.splitlines() if l.strip().endswith(COMM)]
    check(lines, 'no thread named %r in the Threads table:\n%s' % (COMM, text))


def case_name_json(tmp):
    doc = json.loads(report(tmp, 'json'))
    names = [t.get('name') for t in doc['threads']]
    check(names == [COMM], 'threads named %r, not [%r]' % (names, COMM))


def chrome_names(doc):
    return [e['args']['name'] for e in doc['traceEvents']
            if e.get('ph') == 'M' and e.get('name') == 'thread_name']


def case_name_flight(tmp):
    doc = json.loads(report(tmp, 'chrome', {'PROBE_TRACE': 'flight'}))
    names = chrome_names(doc)
    check(names == [COMM], 'flight trace names threads %r, not [%r]' % (names, COMM))


def case_name_stream(tmp):
    path = os.path.join(tmp, 'stream.json')
    rc, err = tiny({'PROBE_TRACE': 'stream:' + path})
    check(rc == 0, 'exit status %d: %s' % (rc, err))
    with open(path) as f:
        names = chrome_names(json.load(f))
    check(names == [COMM], 'stream trace names threads %r, not [%r]' % (names, COMM))


def case_name_crash(tmp):
    rc, err = tiny({'PROBE_FAULT': '1'}, ['crash'])
    check(rc == -11, 'exit status %d, not SIGSEGV' % rc)
    line = [l for l in err.splitlines() if l.startswith('Current thread ')]
    check(line and ('"%s"' % COMM) in line[0],
          'crash dump names the thread %r, not "%s":\n%s' % (line, COMM, err))


def case_bad_format(tmp):
    out = os.path.join(tmp, 'out')
    rc, err = tiny({'PROBE_OUTPUT': out, 'PROBE_FORMAT': 'jsno'})
    check(rc == 0, 'exit status %d' % rc)
    check('jsno' in err, 'the message does not name the bad format: %r' % err)
    for name in ('text', 'json', 'chrome', 'collapsed', 'pprof', 'callgrind'):
        check(name in err, 'the message does not list %r: %r' % (name, err))
    check(not os.path.exists(out), 'a report was written with a bad format')


def case_enoent_message(tmp):
    out = os.path.join(tmp, 'no', 'such', 'dir', 'out')
    rc, err = tiny({'PROBE_OUTPUT': out})
    check('no such file or directory' in err, 'message %r' % err)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        globals()['case_' + CASE](tmp)
    for f in failures:
        print('FAIL:', f)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
