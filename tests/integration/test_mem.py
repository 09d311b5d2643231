#!/usr/bin/env python3
"""Integration tests of `probe run --mem`: the heap profiler on real processes.

usage: test_mem.py PROBE CHILD SCOPES CASE

PROBE is the probe executable; CHILD (mem-child.c) a program with no libprobe code
whose first argument picks an allocation pattern; SCOPES (mem-scopes.c) one with
PROBE_SCOPEs that allocate. CASE names one of the functions
case_* below. Exits 0 when every check passes, 77 to skip, 1 with a message per
failure. Estimates are checked against wide bounds: the profile is sampled.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

PROBE, CHILD, SCOPES, CASE = sys.argv[1:5]
MiB = 1024 * 1024

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def run(args, sample=None, **kwargs):
    """Run 'probe run' with @args (and PROBE_MEM_SAMPLE=@sample); @return (status,
    stdout, stderr)."""
    env = dict(os.environ)
    env.pop('PROBE_MEM_SAMPLE', None)
    if sample:
        env['PROBE_MEM_SAMPLE'] = str(sample)
    p = subprocess.run([PROBE, 'run'] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=120, **kwargs)
    return (p.returncode, p.stdout.decode('utf-8', 'replace'),
            p.stderr.decode('utf-8', 'replace'))


def heap_json(what, sample=None):
    """The JSON heap report of CHILD @what, or None."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'heap.json')
    rc, _, err = run(['--mem=' + out, '--', CHILD, what], sample)
    doc = None
    if check(rc == 0, '%s: exit %d: %s' % (what, rc, err)):
        try:
            with open(out) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            check(False, '%s: not a JSON heap report: %s' % (what, e))
    shutil.rmtree(d)
    return doc


def top(rows):
    return rows[0]['frames'][0] if rows and rows[0].get('frames') else None


def case_leak():
    """10 MiB leaked in 1 KiB blocks: leak_blocks first, within 20 % of 10 MiB."""
    # 16 KiB between samples: ~640 samples, so 20 % is 5 standard deviations.
    doc = heap_json('leak', sample=16384)
    if not doc:
        return
    leaks = doc['leaks']
    check(top(leaks) == 'leak_blocks', 'leak: first leak %r' % (leaks[:1],))
    if leaks:
        b = leaks[0]['bytes']
        check(abs(b - 10 * MiB) <= 0.2 * 10 * MiB, 'leak: %d bytes, not 10 MiB' % b)
    # The text report on stderr says the same.
    rc, _, err = run(['--mem', '--', CHILD, 'leak'], sample=16384)
    sect = err.split('leaks (in use at exit):', 1)
    check(rc == 0 and len(sect) == 2 and
          re.search(r'^\s+\S+ \S+\s+\d+\s+leak_blocks$', sect[1].splitlines()[2] if
                    len(sect[1].splitlines()) > 2 else '', re.M),
          'leak: text report %r' % err[-2000:])


def case_noleak():
    """Everything allocated is freed: no leak."""
    doc = heap_json('noleak', sample=16384)
    if doc:
        check(doc['leaks'] == [], 'noleak: leaks %r' % doc['leaks'][:3])
        check(any(s['frames'][:1] == ['balanced'] for s in doc['sites']),
              'noleak: balanced() not among the sites')


def case_peak():
    """A 50 MiB peak freed before exit: peak_builder first at the peak."""
    doc = heap_json('peak', sample=65536)
    if not doc:
        return
    peak = doc['peak']
    check(top(peak) == 'peak_builder', 'peak: first at peak %r' % (peak[:1],))
    if peak:
        b = peak[0]['bytes']
        check(40 * MiB <= b <= 60 * MiB, 'peak: %d bytes at the peak, not ~50 MiB' % b)
    check(40 * MiB <= doc['peak_bytes'] <= 60 * MiB, 'peak: peak_bytes %d' %
          doc['peak_bytes'])
    check(doc['leaks'] == [], 'peak: leaks %r' % doc['leaks'][:3])


def case_temp():
    """1 KiB allocated and freed a million times: reported as temporary."""
    doc = heap_json('temp')
    if not doc:
        return
    temps = doc['temporaries']
    check(top(temps) == 'churn', 'temp: first temporary %r' % (temps[:1],))
    site = [s for s in doc['sites'] if s['frames'][:1] == ['churn']]
    if check(site and temps, 'temp: churn() not among the sites'):
        # About 1 GB allocated; nearly every sampled block freed at once.
        a = site[0]['bytes']
        check(0.7 * 1000 * MiB <= a <= 1.3 * 1000 * MiB, 'temp: %d bytes allocated' % a)
        check(temps[0]['bytes'] >= 0.8 * a, 'temp: %d of %d bytes temporary' %
              (temps[0]['bytes'], a))


def case_realloc():
    """realloc and posix_memalign, heavily: the output is the unprofiled one."""
    plain = subprocess.run([CHILD, 'realloc'], stdout=subprocess.PIPE, timeout=120)
    check(plain.returncode == 0 and plain.stdout.startswith(b'sum '),
          'realloc: unprofiled run %r' % plain.stdout)
    for sample in (None, 1, 4096):  # the default, every block, often
        rc, out, err = run(['--mem=/dev/null', '--', CHILD, 'realloc'], sample)
        check(rc == 0 and out.encode() == plain.stdout,
              'realloc (sample %s): %d %r, unprofiled %r %s' %
              (sample, rc, out, plain.stdout, err[-500:]))


def case_threads():
    """A thousand short threads that allocate."""
    rc, _, err = run(['--mem=/dev/null', '--', CHILD, 'threads'], sample=4096)
    check(rc == 0, 'threads: exit %d: %s' % (rc, err[-1000:]))


def case_pprof():
    """go tool pprof -sample_index=inuse_space -top reads the heap profile."""
    go = shutil.which('go')
    if not go:
        print('go is not installed')
        sys.exit(77)
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'heap.pb.gz')
    rc, _, err = run(['--mem=' + out, '--', CHILD, 'leak'], sample=16384)
    check(rc == 0, 'pprof: exit %d: %s' % (rc, err))
    env = dict(os.environ, HOME=d, GOCACHE=os.path.join(d, 'cache'), PPROF_TMPDIR=d)
    p = subprocess.run([go, 'tool', 'pprof', '-sample_index=inuse_space', '-top', out],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=120)
    text = p.stdout.decode('utf-8', 'replace')
    rows = [l for l in text.splitlines() if re.match(r'^\s*[\d.]+[kMG]?B\s', l)]
    check(p.returncode == 0 and rows and rows[0].split()[-1] == 'leak_blocks',
          'pprof: go tool pprof: %d %s %s' % (p.returncode, text,
                                              p.stderr.decode('utf-8', 'replace')))
    shutil.rmtree(d)


def case_scopes():
    """Per-scope bytes are exact: 100 blocks of 4 KiB are 409,600 bytes, 100 allocations,
    counted in every enclosing scope, and once per recursion."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'report.json')
    rc, _, err = run(['--mem=/dev/null', '-o', out, SCOPES])
    sites = {}
    if check(rc == 0, 'scopes: exit %d: %s' % (rc, err)):
        with open(out) as f:
            sites = {s['name']: s.get('mem') for s in json.load(f)['sites']}
    want = {
        'blocks': {'allocs': 100, 'bytes': 409600},
        'outer': {'allocs': 101, 'bytes': 409610},
        'recurse': {'allocs': 5, 'bytes': 5120},
    }
    for name, w in want.items():
        m = sites.get(name) or {}
        check(m.get('allocs') == w['allocs'] and m.get('bytes') == w['bytes'] and
              m.get('freed_bytes', 0) >= w['bytes'],
              'scopes: %s has %r, want %r and as much freed' % (name, m, w))
    # The text report's section says the same.
    rc, _, err = run(['--mem=/dev/null', '-f', 'text', SCOPES])
    check(re.search(r'^\s+100\s+409600\s+\d+\s+blocks$', err, re.M),
          'scopes: text report %r' % err[-1500:])
    shutil.rmtree(d)


def case_tag():
    """PROBE_MEM_TAG("parser") around plain malloc of 100 blocks of 1 KiB: the tag has
    100 allocations and 102,400 bytes, and none live once they are freed (half
    outside the scope, on another thread)."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'report.json')
    rc, _, err = run(['--mem=/dev/null', '-o', out, SCOPES])
    tags = {}
    if check(rc == 0, 'tag: exit %d: %s' % (rc, err)):
        with open(out) as f:
            mem = json.load(f).get('memory') or {}
        tags = {t['tag']: t for t in mem.get('tags', [])}
    t = tags.get('parser') or {}
    check(t.get('allocs') == 100 and t.get('alloc_bytes') == 102400,
          'tag: parser has %r, want 100 allocs of 102400 bytes' % t)
    check(t.get('frees') == 100 and t.get('live_count') == 0 and
          t.get('live_bytes') == 0 and t.get('peak_bytes') == 102400,
          'tag: parser has %r, want 100 frees, none live, peak 102400' % t)
    check(list(tags) == ['parser'], 'tag: tags %r' % list(tags))
    # The text report's memory summary shows it.
    rc, _, err = run(['--mem=/dev/null', '-f', 'text', SCOPES])
    check(re.search(r'^\s+0\s+0 B\s.*\sparser$', err, re.M),
          'tag: text report %r' % err[-1500:])
    shutil.rmtree(d)


def case_chrome():
    """The chrome trace has the heap in use as a counter track: it parses, and for
    a 50 MiB peak freed before exit its values rise to about 50 MiB, then fall."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'out.trace.json')
    rc, _, err = run(['--trace', '--mem=/dev/null', '-o', out, '--', CHILD, 'peak'],
                     sample=65536)
    vals = []
    if check(rc == 0, 'chrome: exit %d: %s' % (rc, err)):
        with open(out) as f:
            doc = json.load(f)
        ev = [e for e in doc['traceEvents'] if e.get('ph') == 'C' and
              e.get('cat') == 'heap']
        ts = [float(e['ts']) for e in ev]
        check(ts == sorted(ts), 'chrome: heap points out of time order')
        vals = [e['args']['bytes'] for e in ev]
    check(len(vals) >= 10, 'chrome: %d heap points' % len(vals))
    if vals:
        top = vals.index(max(vals))
        check(40 * MiB <= vals[top] <= 60 * MiB, 'chrome: peak %d bytes' % vals[top])
        check(vals[0] < 0.2 * vals[top] and top > 0 and
              all(a <= b for a, b in zip(vals[:top], vals[1:top + 1])),
              'chrome: values do not rise to the peak: %r' % vals[:top + 1])
        check(min(vals[top:]) < 0.2 * vals[top],
              'chrome: values do not fall after the peak: %r' % vals[top:])
    shutil.rmtree(d)


def case_sites():
    """The top allocation sites are in the main JSON report ("heap") and in the
    tree format: the 10 MiB leaker's leak_blocks first, within 20 % of 10 MiB."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'report.json')
    rc, _, err = run(['--mem=/dev/null', '-o', out, '--', CHILD, 'leak'], sample=16384)
    heap = None
    if check(rc == 0, 'sites: exit %d: %s' % (rc, err)):
        with open(out) as f:
            heap = json.load(f).get('heap')
    if check(heap and heap.get('sites'), 'sites: no heap sites in %r' % heap):
        first = heap['sites'][0]
        check(first['frames'][:1] == ['leak_blocks'] and
              abs(first['bytes'] - 10 * MiB) <= 0.2 * 10 * MiB,
              'sites: first site %r' % first)
        check(heap['sample_bytes'] == 16384 and heap['samples'] > 0,
              'sites: heap %r' % {k: v for k, v in heap.items() if k != 'sites'})
    # Without --mem the key is there, null. SCOPES, whose scopes are always recorded:
    # the leaker may end before the sampler's first signal, and then writes nothing.
    rc, _, err = run(['-o', out, '--', SCOPES])
    if check(rc == 0, 'sites: exit %d without --mem: %s' % (rc, err)):
        with open(out) as f:
            doc = json.load(f)
        check('heap' in doc and doc['heap'] is None, 'sites: heap without --mem %r' %
              doc.get('heap'))
    rc, _, err = run(['--mem=/dev/null', '-f', 'tree', '--', CHILD, 'leak'], sample=16384)
    sect = err.split('Heap: top allocation sites', 1)
    rows = sect[1].splitlines()[2:3] if len(sect) == 2 else []
    m = re.match(r'^\s+(\d+)\s+(\d+)\s+leak_blocks <- main', rows[0]) if rows else None
    check(rc == 0 and m and abs(int(m.group(1)) - 10 * MiB) <= 0.2 * 10 * MiB,
          'sites: tree report %r' % err[-1500:])
    shutil.rmtree(d)


def report(args):
    """Run 'probe report' with @args; @return (status, stdout, stderr)."""
    p = subprocess.run([PROBE, 'report'] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    return (p.returncode, p.stdout.decode('utf-8', 'replace'),
            p.stderr.decode('utf-8', 'replace'))


def text_section(text, heading):
    """The lines of the section of a text report that starts with @heading."""
    lines = text.splitlines()
    at = [i for i, l in enumerate(lines) if l.startswith(heading)]
    if not at:
        return None
    end = at[0]
    while end < len(lines) and lines[end].strip():
        end += 1
    return lines[at[0]:end]


def case_loaded():
    """A saved report read back keeps its heap and memory sections: the text report
    shows the same tables as the program's own, json writes them again as they were,
    and two merged sum them and drop the peaks, saying so."""
    d = tempfile.mkdtemp()
    saved = os.path.join(d, 'saved.json')
    own = os.path.join(d, 'own.txt')
    for args in (['-o', saved], ['-f', 'text', '-o', own]):
        rc, _, err = run(['--mem=/dev/null'] + args + [SCOPES])
        check(rc == 0, 'loaded: probe run %s: %d %s' % (args, rc, err))
    rc, text, err = report([saved, '-f', 'text'])
    check(rc == 0, 'loaded: report -f text: %d %s' % (rc, err))
    own_text = open(own).read()
    # Both runs allocate the same blocks under the same scopes and tag: exact figures.
    for heading in ('Heap by scope', 'Memory (tagged objects)'):
        want = text_section(own_text, heading)
        got = text_section(text, heading)
        check(want and got == want, 'loaded: %s: %r, the program wrote %r'
              % (heading, got, want))

    again = os.path.join(d, 'again.json')
    rc, _, err = report([saved, '-f', 'json', '-o', again])
    check(rc == 0, 'loaded: report -f json: %d %s' % (rc, err))
    a, b = json.load(open(saved)), json.load(open(again))
    for key in ('memory', 'heap'):
        check(a.get(key) and a.get(key) == b.get(key),
              'loaded: %s written back as %r, saved %r' % (key, b.get(key), a.get(key)))
    check([s.get('mem') for s in a['sites']] == [s.get('mem') for s in b['sites']],
          'loaded: the sites\' mem figures changed')

    # Two merged: counts summed, by tag name and by heap site; peaks dropped (null).
    merged = os.path.join(d, 'merged.json')
    rc, _, err = report([saved, again, '-f', 'json', '-o', merged])
    check(rc == 0, 'loaded: merge: %d %s' % (rc, err))
    m = json.load(open(merged))
    tag = {t['tag']: t for t in a['memory']['tags']}
    for t in m['memory']['tags']:
        one = tag.get(t['tag'], {})
        check(t['allocs'] == 2 * one.get('allocs', -1) and
              t['alloc_bytes'] == 2 * one.get('alloc_bytes', -1) and
              t['peak_bytes'] is None, 'loaded: merged tag %r from %r' % (t, one))
    h, mh = a['heap'], m['heap']
    check(mh['allocated_bytes'] == 2 * h['allocated_bytes'] and
          mh['samples'] == 2 * h['samples'] and mh['peak_bytes'] is None and
          mh.get('sites_partial') is True,
          'loaded: merged heap %r from %r' % (dict(mh, sites=None), dict(h, sites=None)))
    check([(s['frames'], s['bytes']) for s in mh['sites']] ==
          [(s['frames'], 2 * s['bytes']) for s in h['sites']],
          'loaded: merged heap sites %r from %r' % (mh['sites'], h['sites']))
    rc, text, _ = report([saved, again, '-f', 'text'])
    check('peaks of the tags and of the heap are not known' in text,
          'loaded: no note on the dropped peaks:\n' + text)
    # The merged report, read back and written again, keeps its nulls and marks.
    rc, out, _ = report([merged, '-f', 'json'])
    check(rc == 0 and json.loads(out).get('heap') == mh and
          json.loads(out).get('memory') == m['memory'],
          'loaded: merged report written back differently')
    shutil.rmtree(d)


def main():
    fn = globals().get('case_' + CASE)
    if not fn:
        print('unknown case %r' % CASE)
        return 1
    fn()
    for f in failures:
        print('FAIL: ' + f)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
