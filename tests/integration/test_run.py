#!/usr/bin/env python3
"""Integration tests of `probe run`: profile real processes that know nothing of it.

usage: test_run.py PROBE CHILD SCOPES INDEXER STATIC CASE

PROBE is the probe executable; CHILD (run-child.c) a program with no libprobe code;
SCOPES (run-scopes.c) one with PROBE_SCOPEs of its own; INDEXER the bundled example;
STATIC a statically linked program, or '' when none could be built. CASE names one of
the functions case_* below. Exits 0 when every check passes, 77 to skip, 1 with a
message per failure.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

PROBE, CHILD, SCOPES, INDEXER, STATIC, CASE = sys.argv[1:7]

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


# In a sanitizer build, the sanitizer's runtime (TEST_SANITIZER_RUNTIME) must be loaded
# before the libprobe.so that probe run preloads into programs built without it.
SANITIZER_RUNTIME = os.environ.get('TEST_SANITIZER_RUNTIME', '')


def probe(args, **kwargs):
    """Run probe with @args; @return (exit status, stdout, stderr) as text."""
    kwargs.setdefault('timeout', 60)
    if SANITIZER_RUNTIME:
        env = dict(kwargs.get('env') or os.environ)
        env['LD_PRELOAD'] = ':'.join(p for p in (SANITIZER_RUNTIME,
                                                 env.get('LD_PRELOAD', '')) if p)
        kwargs['env'] = env
    p = subprocess.run([PROBE] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       **kwargs)
    return (p.returncode, p.stdout.decode('utf-8', 'replace'),
            p.stderr.decode('utf-8', 'replace'))


def run(args, **kwargs):
    """Run 'probe run' with @args."""
    return probe(['run'] + args, **kwargs)


def load_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        failures.append('%s: %s is not a JSON report: %s' % (what, path, e))
        return None


def stacks(doc):
    """The sampled stacks of a JSON report."""
    samples = doc.get('samples') if isinstance(doc, dict) else None
    return samples.get('stacks', []) if isinstance(samples, dict) else []


def sampled_functions(doc):
    """The function names in a JSON report's sampled stacks."""
    return {f for s in stacks(doc) for f in s.get('frames', [])}


def tree_rows(text):
    """(total %, depth, name) of every row of the tree report's call trees."""
    rows = []
    for line in text.splitlines():
        m = re.match(r'^\s*([\d.]+)%\s+([\d.]+)%\s+\d+\s+[\d.]+ \S+( +)(\S.*)$', line)
        if m:
            rows.append((float(m.group(1)), len(m.group(3)), m.group(4).strip()))
    return rows


def last_line(text):
    lines = text.strip().splitlines()
    return lines[-1] if lines else ''


def case_hot_function():
    """The hot function tops main's tree, its share within 5 points of the truth."""
    rc, out, err = run([CHILD, 'hot'])
    if not check(rc == 0, 'hot: status %d, stderr %r' % (rc, err)):
        return
    truth = json.loads(out.strip().splitlines()[-1])
    share = 100.0 * truth['hot_ns'] / truth['total_ns']
    rows = tree_rows(err)
    main = [i for i, r in enumerate(rows) if r[2] == 'main']
    if not check(main, 'hot: no main in the tree:\n' + err):
        return
    depth = rows[main[0]][1]
    children = []
    for r in rows[main[0] + 1:]:
        if r[1] <= depth:
            break
        if r[1] == min(x[1] for x in rows[main[0] + 1:] if x[1] > depth):
            children.append(r)
    check(children and children[0][2] == 'hot' and
          all(c[0] <= children[0][0] for c in children),
          'hot: hot() is not main\'s first and largest child: %r' % children)
    got = [c[0] for c in children if c[2] == 'hot']
    # Within 5 points, also on a contended CPU: the program's loop makes no system
    # call (samples drift toward system call returns when CPUs are contended).
    check(got and abs(got[0] - share) <= 5.0,
          'hot: hot() is %r%% of the tree, %.1f%% of the thread\'s CPU time by its own '
          'measure (wall %.1f s for %.1f s of CPU)' % (got, share, truth['wall_ns'] / 1e9,
                                                      truth['total_ns'] / 1e9))


def case_scopes_and_samples():
    """A program with its own scopes: scopes and samples in one JSON report."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'out.json')
    rc, _, err = run(['-o', out, SCOPES])
    check(rc == 0, 'scopes: status %d: %s' % (rc, err))
    doc = load_json(out, 'scopes')
    if not doc:
        return
    sites = {s['name']: s for s in doc.get('sites', [])}
    check(sites.get('round', {}).get('calls') == 20 and
          sites.get('crunch', {}).get('calls') == 20,
          'scopes: the scopes are not all there: %r' % sorted(sites))
    check(stacks(doc), 'scopes: no samples in the report')
    check('crunch' in sampled_functions(doc), 'scopes: crunch() was never sampled: %r'
          % sorted(n for n in sampled_functions(doc) if n)[:20])
    check(last_line(err).startswith('probe run: wrote ' + out + ' (json)'),
          'scopes: last line %r' % last_line(err))
    shutil.rmtree(d)


def case_exit_status():
    """Status 0 and 3 kept; the report is written either way."""
    d = tempfile.mkdtemp()
    for status in (0, 3):
        out = os.path.join(d, 'out%d.json' % status)
        rc, _, err = run(['-o', out, CHILD, 'exit', str(status)])
        check(rc == status, 'exit %d: status %d: %s' % (status, rc, err))
        doc = load_json(out, 'exit %d' % status)
        check(doc and 'spin' in sampled_functions(doc), 'exit %d: spin not sampled' % status)
    shutil.rmtree(d)


def case_segv():
    """Death by SIGSEGV: 139, the dump on stderr, and the report still written."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'out.json')
    rc, _, err = run(['-o', out, CHILD, 'segv'])
    check(rc == 128 + 11, 'segv: status %d, not 139' % rc)
    check('Fatal error: Segmentation fault' in err, 'segv: no dump: %r' % err)
    doc = load_json(out, 'segv')
    check(doc and 'spin' in sampled_functions(doc), 'segv: spin not in the report')
    rc, _, err = run(['--no-fault', '-o', out, CHILD, 'segv'])
    check(rc == 139 and 'Fatal error' not in err, 'segv --no-fault: %d %r' % (rc, err))
    check(load_json(out, 'segv --no-fault'), 'segv --no-fault: no report')
    shutil.rmtree(d)


def case_thread_exit():
    """exit() from a second thread while main waits: its status, and the report."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'out.json')
    rc, _, err = run(['-o', out, CHILD, 'thread-exit'])
    check(rc == 5, 'thread-exit: status %d: %s' % (rc, err))
    doc = load_json(out, 'thread-exit')
    check(doc and 'spin' in sampled_functions(doc), 'thread-exit: spin not in the report')
    shutil.rmtree(d)


def case_underscore_exit():
    """_exit() loses the report, and probe run says so."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'out.json')
    rc, _, err = run(['-o', out, CHILD, '_exit'])
    check(rc == 4, '_exit: status %d' % rc)
    check('no report was written' in last_line(err), '_exit: last line %r' % last_line(err))
    shutil.rmtree(d)


def child_files(d):
    return sorted(f for f in os.listdir(d) if re.match(r'^out\.json\.\d+$', f))


def case_follow_fork():
    """Forks twice, one child execs: three valid reports, the parent's status kept."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'out.json')
    rc, stdout, err = run(['--follow-fork', '-o', out, CHILD, 'fork'])
    check(rc == 0, 'follow-fork: status %d: %s' % (rc, err))
    m = re.search(r'children (\d+) (\d+): 0 0', stdout)
    if not check(m, 'follow-fork: children did not both exit 0: %r' % stdout):
        return
    pids = sorted([m.group(1), m.group(2)])
    files = child_files(d)
    check(files == sorted('out.json.' + p for p in pids),
          'follow-fork: child files %r, children %r, stderr %r' % (files, pids, err))
    parent = load_json(out, 'follow-fork parent')
    check(parent and 'spin' in sampled_functions(parent), 'follow-fork: parent not sampled')
    # The parent waited for both: its own report lists their files.
    check(parent and parent.get('children') == [os.path.join(d, f) for f in files],
          'follow-fork: parent report lists %r, files %r' %
          (parent and parent.get('children'), files))
    for f in files:
        doc = load_json(os.path.join(d, f), 'follow-fork ' + f)
        check(doc and doc.get('schema') == parent.get('schema'), 'follow-fork: %s' % f)
    forked = load_json(os.path.join(d, 'out.json.' + m.group(1)), 'forked child')
    check(forked and 'spin' in sampled_functions(forked), 'follow-fork: forked child not sampled')
    lines = err.strip().splitlines()
    check(len(lines) >= 2 and lines[-2].startswith('probe run: 2 child reports:') and
          all(os.path.join(d, f) in lines[-2] for f in files),
          'follow-fork: the children are not listed: %r' % lines[-2:])
    check(lines and lines[-1].startswith('probe run: wrote ' + out),
          'follow-fork: last line %r' % lines[-1:])
    # The exec'd child saw the variables: it is profiled too.
    check('inherited PROBE_OUTPUT' in stdout, 'follow-fork: exec\'d child not configured')
    shutil.rmtree(d)


def case_no_follow():
    """Without --follow-fork children run with no trace of libprobe and write nothing."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'out.json')
    rc, stdout, err = run(['-o', out, CHILD, 'fork'])
    check(rc == 0, 'no-follow: status %d: %s' % (rc, err))
    check('children' in stdout and 'env checked' in stdout, 'no-follow: %r' % stdout)
    check('inherited' not in stdout, 'no-follow: a child inherited: %r' % stdout)
    check(child_files(d) == [], 'no-follow: child files %r' % child_files(d))
    check(load_json(out, 'no-follow parent'), 'no-follow: no parent report')
    shutil.rmtree(d)


def case_errors():
    """Each error: one line naming it, its status, and PROGRAM never runs."""
    d = tempfile.mkdtemp()
    marker = os.path.join(d, 'ran')
    plain = os.path.join(d, 'plain')
    with open(plain, 'w') as f:
        f.write('#!/bin/sh\ntouch %s\n' % marker)
    os.chmod(plain, 0o644)
    setuid = os.path.join(d, 'setuid-child')
    shutil.copy(CHILD, setuid)
    os.chmod(setuid, 0o4755)
    out = os.path.join(d, 'out.json')
    os.symlink(os.path.join(d, 'elsewhere'), os.path.join(d, 'link.json'))
    touch = [CHILD, 'touch', marker]
    cases = [
        (['/no/such/program'], 127, 'No such file'),
        (['no-such-program-anywhere'], 127, 'command not found'),
        ([plain], 126, 'permission denied'),
        ([d], 126, 'directory'),
        ([setuid, 'touch', marker], 126, 'setuid'),
        (['-o', os.path.join(d, 'no', 'dir', 'x.json')] + touch, 125, 'cannot write'),
        (['-o', os.path.join(d, 'link.json')] + touch, 125, 'symbolic link'),
        (['-f', 'nosuch'] + touch, 2, "unknown format 'nosuch'"),
        (['-f', 'text:nosuch=1'] + touch, 2, "text has no option 'nosuch'"),
        (['-f', 'text:limit=x'] + touch, 2, 'text option limit=x: limit takes a number'),
        (['-f', 'tree:threshold=200'] + touch, 2, 'tree option threshold=200: threshold '
                                                  'is a percentage from 0 to 100'),
        (['-o', os.path.join(d, 'out.xyz')] + touch, 2, 'cannot tell the format'),
        (['--hz', '0'] + touch, 2, '--hz=0'),
        (['--hz', '20001'] + touch, 2, '--hz=20001'),
        (['--hz', 'abc'] + touch, 2, '--hz=abc'),
        (['--bogus'] + touch, 2, "invalid option '--bogus'"),
        ([], 2, 'no program given'),
    ]
    if STATIC:
        cases.append(([STATIC], 126, 'static executable'))
    for args, status, text in cases:
        rc, _, err = run(args)
        first = err.splitlines()[0] if err else ''
        check(rc == status and text in first and first.startswith('probe run: '),
              'error %r: status %d (want %d), first line %r (want %r)'
              % (args, rc, status, first, text))
        check(not os.path.exists(marker), 'error %r: the program ran' % args)
        if os.path.exists(marker):
            os.unlink(marker)
    if not STATIC:
        print('no static executable could be built: that case is not checked')
    # PROBE_FORMAT with a bad option, read at exit by the library itself.
    env = dict(os.environ, PROBE_OUTPUT=out, PROBE_FORMAT='text:limit=x')
    p = subprocess.run([SCOPES], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=60)
    err = p.stderr.decode('utf-8', 'replace')
    check('PROBE_FORMAT=text:limit=x: text option limit=x: limit takes a number' in err,
          'PROBE_FORMAT=text:limit=x: stderr %r' % err)
    shutil.rmtree(d)


def case_pprof():
    """go tool pprof -top reads -o out.pb.gz."""
    go = shutil.which('go')
    if not go:
        print('go is not installed')
        sys.exit(77)
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'out.pb.gz')
    rc, _, err = run(['-o', out, CHILD, 'hot'])
    check(rc == 0 and 'go tool pprof -http=: ' + out in last_line(err),
          'pprof: %d, last line %r' % (rc, last_line(err)))
    env = dict(os.environ, HOME=d, GOCACHE=os.path.join(d, 'cache'),
               PPROF_TMPDIR=d)
    p = subprocess.run([go, 'tool', 'pprof', '-top', out], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=120)
    text = p.stdout.decode('utf-8', 'replace')
    check(p.returncode == 0 and re.search(r'\bhot\b', text),
          'pprof: go tool pprof -top: %d %s %s' % (p.returncode, text,
                                                   p.stderr.decode('utf-8', 'replace')))
    shutil.rmtree(d)


def case_chrome():
    """--trace -o out.trace.json: a Chrome trace that parses, with the scopes."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'out.trace.json')
    rc, _, err = run(['--trace', '-o', out, SCOPES])
    check(rc == 0 and '(chrome)' in last_line(err) and 'perfetto' in last_line(err),
          'chrome: %d, last line %r' % (rc, last_line(err)))
    doc = load_json(out, 'chrome')
    events = doc.get('traceEvents', doc) if isinstance(doc, dict) else doc
    check(isinstance(events, list) and any(e.get('name') == 'crunch' for e in events
                                           if isinstance(e, dict)),
          'chrome: no crunch event')
    shutil.rmtree(d)


def case_formats():
    """The format follows the file name; -f overrides it."""
    d = tempfile.mkdtemp()
    for name, fmt in [('p.speedscope.json', 'speedscope'), ('p.folded', 'collapsed'),
                      ('callgrind.out.1', 'callgrind'), ('p.txt', 'text'),
                      ('p.pprof', 'pprof'), ('p.html', 'html')]:
        out = os.path.join(d, name)
        rc, _, err = run(['-o', out, CHILD, 'exit'])
        check(rc == 0 and '(%s)' % fmt in last_line(err) and os.path.getsize(out) > 0,
              'formats %s: %d %r' % (name, rc, last_line(err)))
    out = os.path.join(d, 'forced.txt')
    rc, _, err = run(['-f', 'json', '-o', out, CHILD, 'exit'])
    check(rc == 0 and load_json(out, '-f json'), 'formats: -f json')
    shutil.rmtree(d)


def case_indexer():
    """The Quick start: the bundled indexer's stdout stays its own, the tree on stderr."""
    rc, out, err = run([INDEXER])
    check(rc == 0 and 'words indexed on 4 threads' in out, 'indexer: %d %r' % (rc, out))
    check('Sampled call tree' not in out, 'indexer: the report went to stdout')
    names = {r[2] for r in tree_rows(err)}
    for fn in ['index_slice', 'tokenize', 'hash_words']:
        check(fn in names or any(n.startswith(fn + '.') for n in names),
              'indexer: %s not in the tree:\n%s' % (fn, err))


def case_help():
    """probe --help lists run; probe run --help describes every option."""
    rc, out, _ = probe(['--help'])
    check(rc == 0 and 'probe run [-o FILE]' in out, 'help: probe --help: %r' % out)
    rc, out, _ = run(['--help'])
    for opt in ['--output', '--format', '--hz', '--wall', '--trace', '--follow-fork',
                '--no-fault', '--help', 'PROBE_RUN_LIBRARY']:
        check(rc == 0 and opt in out, 'help: probe run --help lacks %s' % opt)


def case_wall():
    """--wall samples a program that sleeps: its blocked time is in the report."""
    d = tempfile.mkdtemp()
    out = os.path.join(d, 'out.json')
    rc, _, err = run(['--wall', '--hz', '200', '-o', out, 'sleep', '0.3'])
    check(rc == 0, 'wall: %d %s' % (rc, err))
    doc = load_json(out, 'wall')
    check(doc and any(s.get('blocked') for s in stacks(doc)),
          'wall: no blocked sample')
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
