#!/usr/bin/env python3
"""probe report and probe diff on reports a real program saved (report-work.c).

usage: test_report.py PROBE REPORT_WORK CASE
"""
import json
import os
import resource
import subprocess
import sys
import tempfile

PROBE, WORK, CASE = sys.argv[1:4]
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print('FAIL:', msg)
    return cond


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=120, **kw)


def work(tmp, factor, name):
    path = os.path.join(tmp, name)
    r = run([WORK, 'work', str(factor), path])
    assert r.returncode == 0, r.stderr
    return path


def one_line_error(r, what):
    check(r.returncode != 0, f'{what}: status 0')
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    check(lines and lines[0].startswith('probe '), f'{what}: stderr {r.stderr!r}')
    check(not r.stdout, f'{what}: wrote to stdout: {r.stdout[:200]!r}')
    return lines[0] if lines else ''


def case_merge(tmp):
    """Three forked children's reports merge: calls summed, threads named by pid."""
    prefix = os.path.join(tmp, 'child')
    r = run([WORK, 'children', '3', prefix])
    assert r.returncode == 0, r.stderr
    files = [f'{prefix}{i}.json' for i in range(3)]
    out = os.path.join(tmp, 'merged.json')
    r = run([PROBE, 'report', *files, '-f', 'json', '-o', out])
    check(r.returncode == 0, f'report -o: {r.stderr}')
    merged = json.load(open(out))
    parts = [json.load(open(f)) for f in files]

    def site(doc, name):
        return next(s for s in doc['sites'] if s['name'] == name)
    for name in ('helper', 'steady', 'tunable'):
        check(site(merged, name)['calls'] == sum(site(p, name)['calls'] for p in parts),
              f'{name}: calls not summed')
        check(site(merged, name)['max_ns'] == max(site(p, name)['max_ns'] for p in parts),
              f'{name}: max_ns')
        hist = {}
        for p in parts:
            for b, c in site(p, name)['hist']:
                hist[b] = hist.get(b, 0) + c
        check(site(merged, name)['hist'] == sorted([b, c] for b, c in hist.items()),
              f'{name}: histograms not summed')
    names = [t['name'] for t in merged['threads']]
    pids = [p['pid'] for p in parts]
    check(len(set(pids)) == 3, f'pids {pids}')
    check(names == [f'pid {p}: child' for p in pids], f'thread names {names}')
    # Text is the library's own formatter on the merged snapshot.
    r = run([PROBE, 'report', *files])
    check(r.returncode == 0 and 'helper' in r.stdout and f'pid {pids[1]}' in r.stdout,
          f'text: {r.stdout[:300]} {r.stderr}')
    # --thread picks the process.
    r = run([PROBE, 'report', *files, '--thread', f'pid {pids[1]}', '-f', 'json'])
    one = json.loads(r.stdout)
    check(one['pid'] == pids[1] and len(one['threads']) == 1, f'--thread: {one["threads"]}')


def case_table(tmp):
    """pstats-like: sort, limit, filter, callers, callees; one report round-trips."""
    path = work(tmp, 2, 'a.json')
    r = run([PROBE, 'report', path, '-f', 'json', '--sort', 'calls', '--limit', '2'])
    rows = json.loads(r.stdout)
    check(len(rows) == 2, f'--limit 2: {rows}')
    r = run([PROBE, 'report', path, '-f', 'json', '--sort', 'self'])
    rows = json.loads(r.stdout)
    selfs = [x['self_ns'] for x in rows]
    check(selfs == sorted(selfs, reverse=True) and len(rows) == 3, f'--sort self: {rows}')
    r = run([PROBE, 'report', path, '-f', 'json', '--sort', 'name', '--filter', '^(t|h)'])
    check([x['name'] for x in json.loads(r.stdout)] == ['helper', 'tunable'],
          f'--filter: {r.stdout}')
    r = run([PROBE, 'report', path, '-f', 'json', '--callers', 'helper'])
    rows = json.loads(r.stdout)
    check([x['name'] for x in rows] == ['tunable'] and rows[0]['calls'] == 200,
          f'--callers: {rows}')
    r = run([PROBE, 'report', path, '-f', 'json', '--callees', 'tunable'])
    check([x['name'] for x in json.loads(r.stdout)] == ['helper'], f'--callees: {r.stdout}')
    r = run([PROBE, 'report', path, '--sort', 'p99', '--limit', '1'])
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 2, f'text table: {r.stdout}')
    # The saved JSON, loaded and written again, is byte-identical.
    r = run([PROBE, 'report', path, '-f', 'json'])
    check(r.stdout == open(path).read(), 'json -> report -f json differs')


def helper_doubled(base, new):
    """The diff's sites, and whether helper is first with +50..+200 % and nothing
    grew by 1000 % (the bounds the checks below rely on)."""
    r = run([PROBE, 'diff', base, new, '--measure', 'p50', '-f', 'json'])
    check(r.returncode == 0, f'diff: {r.returncode} {r.stderr}')
    sites = json.loads(r.stdout)['sites']
    d = sites[0]['p50']['delta_pct']
    worst = max((s['p50']['delta_pct'] or 0) for s in sites)
    return sites, sites[0]['name'] == 'helper' and 50 <= d <= 200 and worst <= 1000


def case_diff(tmp):
    """One function made 2x slower is first, with about +100 %."""
    # The median: preemption by other processes moves totals, not medians. Still,
    # the two runs are timed by the wall clock: a run that shares its core with
    # other processes for its whole length (SMT sibling, frequency) is slower
    # throughout. So the pair of runs is repeated, up to 5 times (about 1 s each),
    # until helper's p50 doubles; only 5 disturbed pairs in a row fail the test.
    # Beside two busy loops a single pair missed in 7 of 20 tries.
    for attempt in range(5):
        base = work(tmp, 1, 'base.json')
        new = work(tmp, 2, 'new.json')
        sites, ok = helper_doubled(base, new)
        if ok:
            break
        print(f'attempt {attempt + 1}: helper not doubled: '
              f'{[(s["name"], s["p50"]["delta_pct"]) for s in sites]}')
    check(sites[0]['name'] == 'helper', f'first is {sites[0]["name"]}: {sites}')
    d = sites[0]['p50']['delta_pct']
    check(50 <= d <= 200, f'helper p50 delta {d} %')
    r = run([PROBE, 'diff', base, new, '--measure', 'p50'])
    first = r.stdout.splitlines()[1].split()
    check(first[:2] == ['changed', 'helper'], f'text: {r.stdout}')
    # --fail-above: 3 above, 0 below; the same report never regresses.
    r = run([PROBE, 'diff', base, new, '--measure', 'p50', '--fail-above', '30'])
    check(r.returncode == 3, f'--fail-above 30: {r.returncode}')
    check('grew by more than 30' in r.stderr, f'stderr {r.stderr!r}')
    r = run([PROBE, 'diff', base, new, '--measure', 'p50', '--fail-above', '1000'])
    check(r.returncode == 0, f'--fail-above 1000: {r.returncode}')
    r = run([PROBE, 'diff', base, base, '--fail-above', '0'])
    check(r.returncode == 0, f'same report: {r.returncode} {r.stdout}')
    # A site that vanished and one that appeared are marked.
    doc = json.load(open(new))
    doc['sites'][0]['name'] = 'renamed'
    renamed = os.path.join(tmp, 'renamed.json')
    json.dump(doc, open(renamed, 'w'))
    r = run([PROBE, 'diff', base, renamed, '-f', 'json'])
    st = {s['name']: s['status'] for s in json.loads(r.stdout)['sites']}
    check(st.get('renamed') == 'new' and 'gone' in st.values(), f'statuses {st}')


def case_diff_large(tmp):
    """Two reports of 20,000 sites each: matched exactly, in well under 1 s of CPU."""
    doc = json.load(open(work(tmp, 1, 'w.json')))
    proto = doc['sites'][0]
    n = 20000

    def sites(scale, shift):
        # The sites of generated code: one file, function and line, long names; in
        # the opposite order in the other report; every 1000th one only in one.
        out = []
        for i in range(n):
            k = n - 1 - i if shift else i
            s = dict(proto, id=i, name=f'generated::parser::scope_{k:06d}', line=1,
                     file='generated.c', function='generated', calls=k + 1 + (k % 5) * scale,
                     hist=[])
            if k % 1000 == 999:
                s['name'] = f'only{shift}_{k}'
            out.append(s)
        return out
    paths = []
    for scale, shift in ((0, 0), (1, 1)):
        d = dict(doc, sites=sites(scale, shift), edges=[], nodes=[], events=[])
        paths.append(os.path.join(tmp, f'big{shift}.json'))
        json.dump(d, open(paths[-1], 'w'))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = run([PROBE, 'diff', *paths, '--measure', 'calls', '-f', 'json'])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if not check(r.returncode == 0, f'diff: {r.returncode} {r.stderr}'):
        return
    rows = json.loads(r.stdout)['sites']
    st = {}
    for row in rows:
        st.setdefault(row['status'], []).append(row)
    # 20 sites in each report only: gone from the base, new in the other.
    check(len(st.get('gone', [])) == 20 and len(st.get('new', [])) == 20,
          f'gone/new: {len(st.get("gone", []))}/{len(st.get("new", []))}')
    changed = st.get('changed', [])
    check(len(changed) == n - 20, f'{len(changed)} matched of {n - 20}')
    bad = [c for c in changed
           if c['calls']['new'] - c['calls']['old'] != int(c['name'][-6:]) % 5]
    check(not bad, f'{len(bad)} sites matched to the wrong one: {bad[:3]}')
    # Loading both and writing the rows takes about 0.2 s of CPU; the quadratic
    # match took 1.7 s.
    print(f'probe diff of 2 x {n} sites: {cpu:.2f} s of CPU')
    check(cpu < 0.8, f'probe diff took {cpu:.2f} s of CPU')


def case_loaded(tmp):
    """A report read back names the program recorded and keeps its timeline."""
    path = os.path.join(tmp, 't.json')
    r = run([WORK, 'trace', '6', path])
    assert r.returncode == 0, r.stderr
    saved = json.load(open(path))
    check(saved.get('command') == [WORK, 'trace', '6', path], f'command {saved.get("command")}')

    # -o x.html: the page's data names the program and has helper as the hot scope
    # (6x the spins of steady, 3x tunable's own).
    page = os.path.join(tmp, 't.html')
    r = run([PROBE, 'report', path, '-o', page])
    check(r.returncode == 0 and not r.stdout, f'report -o t.html: {r.returncode} {r.stderr}')
    html = open(page).read()
    start = html.index('<script id="probe-data" type="application/json">') + 48
    data = json.loads(html[start:html.index('</script>', start)])
    facts = data['facts']
    check(facts['written_by'] == ' '.join([WORK, 'trace', '6', path]),
          f'written_by {facts["written_by"]!r}')
    check(facts['pid'] == saved['pid'], f'html pid {facts["pid"]}, recorded {saved["pid"]}')
    scopes = [s for s in data['sites'] if s[1] == 0 and s[5]]
    hot = max(scopes, key=lambda s: s[7])  # [name, kind, file, line, fn, calls, total, self]
    check(hot[0] == 'helper' and hot[5] == 200, f'hot scope {hot}')

    # json -> load -> chrome: every scope event of the program, on its thread.
    r = run([PROBE, 'report', path, '-f', 'chrome'])
    check(r.returncode == 0, f'-f chrome: {r.stderr}')
    ev = json.loads(r.stdout)['traceEvents']
    pids = {e['pid'] for e in ev if 'pid' in e}
    check(pids == {saved['pid']}, f'chrome pids {pids}, recorded {saved["pid"]}')
    tids = {t['tid'] for t in saved['threads']}
    for name, calls in (('steady', 200), ('tunable', 200), ('helper', 200)):
        b = [e for e in ev if e['ph'] == 'B' and e['name'] == name]
        e_ = [e for e in ev if e['ph'] == 'E' and e['name'] == name]
        check(len(b) == calls and len(e_) == calls, f'{name}: {len(b)} B, {len(e_)} E')
        check({e['tid'] for e in b} <= tids, f'{name}: tids {({e["tid"] for e in b})}')
    ts = [e['ts'] for e in ev if e['ph'] in 'BE']
    check(ts == sorted(ts), 'events out of time order')


def case_errors(tmp):
    """Every error is one clear line and a non-zero status."""
    good = work(tmp, 1, 'g.json')
    bad = os.path.join(tmp, 'bad.json')
    open(bad, 'w').write('{"schema":"probe/1","clock":')
    other = os.path.join(tmp, 'other.json')
    open(other, 'w').write('{"schema":"pprof/9"}')
    cases = [
        ([PROBE, 'report', os.path.join(tmp, 'missing.json')], 'no such file'),
        ([PROBE, 'report', bad], 'at byte 28'),
        ([PROBE, 'report', other], 'expected "probe/1"'),
        ([PROBE, 'report', good, '--sort', 'speed'], 'unknown sort key'),
        ([PROBE, 'report', good, '--filter', '(('], 'bad regular expression'),
        ([PROBE, 'report', good, '-f', 'nope'], 'unknown format'),
        ([PROBE, 'report', good, '--callers', 'nobody'], "no scope named 'nobody'"),
        ([PROBE, 'report', good, '--limit', '-1'], '--limit'),
        ([PROBE, 'report'], 'no report given'),
        ([PROBE, 'diff', good], 'two reports wanted'),
        ([PROBE, 'diff', good, bad], 'at byte 28'),
        ([PROBE, 'diff', good, good, '--fail-above', 'x'], '--fail-above'),
    ]
    for args, want in cases:
        r = run(args)
        line = one_line_error(r, ' '.join(args[1:]))
        check(want in line, f'{args[1:]}: {line!r} lacks {want!r}')


with tempfile.TemporaryDirectory() as tmp:
    globals()['case_' + CASE](tmp)
sys.exit(1 if failures else 0)
