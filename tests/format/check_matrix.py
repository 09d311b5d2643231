#!/usr/bin/env python3
"""Run test-format-matrix for each of the 16 mixes of {scopes, samples, timeline,
counters} and parse every formatter's output back.

usage: check_matrix.py PROGRAM

PROGRAM (test-format-matrix.c) records the parts it is given and writes DIR/out.FORMAT
for every formatter. JSON formats are parsed with the json module, callgrind and pprof
with the readers of check_callgrind.py and check_pprof.py, folded stacks and text line
by line; then each output must show what was recorded (and no scope or sample that was
not). The names and values checked are those of that program.
Exits 0 when every check passes, 1 with a message per failure.
"""

import itertools
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_callgrind  # noqa: E402
import check_pprof  # noqa: E402

PARTS = ['scopes', 'samples', 'timeline', 'counters']
SCOPES = ['mx_outer', 'mx_inner']
SPIN = 'mx_spin_loop'
COUNTER = 'mx_counter'
COUNTER_TOTAL = 15

failures = []


def expect(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def load_json(where, raw):
    def no_constant(name):
        raise ValueError(f'non-JSON constant {name}')

    try:
        return json.loads(raw.decode('utf-8', errors='strict'), parse_constant=no_constant)
    except ValueError as e:
        expect(False, f'{where}: not valid JSON: {e}\n{raw[:3000].decode(errors="replace")}')
        return None


def text_lines(where, raw):
    """Well-formed text: UTF-8, no NUL, empty or ending with a newline."""
    try:
        text = raw.decode('utf-8', errors='strict')
    except UnicodeDecodeError as e:
        expect(False, f'{where}: not valid UTF-8: {e}')
        text = raw.decode('utf-8', errors='replace')
    expect('\0' not in text, f'{where}: a NUL byte')
    expect(not text or text.endswith('\n'), f'{where}: does not end with a newline')
    return text.split('\n')[:-1]


def check_json(where, doc, has):
    if not expect(isinstance(doc, dict) and doc.get('schema') == 'probe/1',
                  f'{where}: not a probe/1 report'):
        return
    sites = {s['name']: s for s in doc.get('sites', [])}
    for name in SCOPES:
        calls = sites.get(name, {}).get('calls', 0)
        expect((calls > 0) == has['scopes'], f'{where}: {name} has {calls} calls')
    counter = sites.get(COUNTER, {})
    want = (3, COUNTER_TOTAL) if has['counters'] else (0, 0)
    expect((counter.get('calls', 0), counter.get('value', 0)) == want,
           f'{where}: {COUNTER} {counter}, want (calls, value) {want}')
    samples = doc.get('samples')
    if has['samples']:
        stacks = samples.get('stacks', []) if expect(isinstance(samples, dict),
                                                     f'{where}: samples {samples!r}') else []
        expect(any(SPIN in s.get('frames', []) for s in stacks),
               f'{where}: no sampled stack has {SPIN}')
    else:
        expect(samples is None, f'{where}: samples {samples!r} without a sampler run')


def check_chrome(where, doc, has):
    if not expect(isinstance(doc, dict) and isinstance(doc.get('traceEvents'), list),
                  f'{where}: no traceEvents array'):
        return
    events = doc['traceEvents']
    names = {}
    for e in events:
        names.setdefault(e.get('ph'), []).append(e.get('name'))
    if has['timeline']:
        for name in SCOPES:
            b, e = names.get('B', []).count(name), names.get('E', []).count(name)
            want = (4 if name == 'mx_outer' else 12) if has['scopes'] else 0
            expect(b == e == want, f'{where}: {name}: {b} B and {e} E events, want {want}')
        counts = names.get('C', []).count(COUNTER)
        expect(counts == (3 if has['counters'] else 0), f'{where}: {counts} C events')
    else:
        for name in SCOPES:
            expect((name in names.get('X', [])) == has['scopes'],
                   f'{where}: {name} in X events: {names.get("X", [])}')


def check_speedscope(where, doc, has):
    if not expect(isinstance(doc, dict) and isinstance(doc.get('profiles'), list),
                  f'{where}: no profiles array'):
        return
    frames = [f.get('name') for f in doc.get('shared', {}).get('frames', [])]
    for name in SCOPES:
        expect((name in frames) == has['scopes'], f'{where}: {name} in frames {frames}')
    expect((SPIN in frames) == has['samples'], f'{where}: {SPIN} in frames {frames}')
    used = set()
    evented = 0
    for p in doc['profiles']:
        if p.get('type') == 'evented':
            evented += 1
            opened = [e['frame'] for e in p.get('events', []) if e.get('type') == 'O']
            closed = [e['frame'] for e in p.get('events', []) if e.get('type') == 'C']
            expect(sorted(opened) == sorted(closed), f'{where}: unbalanced O/C events')
            used.update(opened)
        else:
            samples, weights = p.get('samples', []), p.get('weights', [])
            expect(len(samples) == len(weights),
                   f'{where}: {len(samples)} samples, {len(weights)} weights')
            for s in samples:
                used.update(s)
    expect(all(isinstance(i, int) and 0 <= i < len(frames) for i in used),
           f'{where}: a frame index out of range: {sorted(used)}')
    used_names = {frames[i] for i in used if isinstance(i, int) and 0 <= i < len(frames)}
    for name in SCOPES:
        expect((name in used_names) == has['scopes'], f'{where}: {name} used')
    expect((SPIN in used_names) == has['samples'], f'{where}: {SPIN} used')
    expect((evented > 0) == (has['timeline'] and has['scopes']),
           f'{where}: {evented} evented profiles')


def check_collapsed(where, lines, has):
    stacks = []
    for n, line in enumerate(lines, start=1):
        m = re.fullmatch(r'(\S.*) (\d+)', line)
        if expect(m, f'{where}: line {n} is not "frames count": {line!r}'):
            stacks.append(m.group(1).split(';'))
    # The sampled stacks when there are any, else the scopes' paths.
    if has['samples']:
        expect(any(s[-1] == SPIN for s in stacks), f'{where}: no stack ends in {SPIN}')
    elif has['scopes']:
        expect(['mx_outer', 'mx_inner'] in stacks, f'{where}: no mx_outer;mx_inner')
    else:
        expect(not stacks, f'{where}: {len(stacks)} stacks from nothing')


def check_callgrind_profile(where, raw, has):
    check_callgrind.failures.clear()
    _, fns = check_callgrind.parse_profile(raw)
    failures.extend(f'{where}: {m}' for m in check_callgrind.failures)
    for name in SCOPES:
        shown = any(k.endswith(':' + name) for k in fns)
        expect(shown == has['scopes'], f'{where}: {name} in {sorted(fns)}')


def check_pprof_profile(where, path, has):
    check_pprof.failures.clear()
    try:
        p = check_pprof.decode_profile(path)
    except (ValueError, OSError, EOFError) as e:
        expect(False, f'{where}: cannot decode: {e}')
        return
    failures.extend(f'{where}: {m}' for m in check_pprof.failures)
    locs = p['locations']
    for ids, values in p['samples']:
        expect(all(i in locs for i in ids), f'{where}: a sample names unknown locations')
    for _, (_, fids) in locs.items():
        expect(all(f in p['functions'] for f in fids),
               f'{where}: a location names unknown functions')
    sampled = {p['functions'].get(f) for ids, _ in p['samples'] for i in ids
               for f in locs.get(i, (0, []))[1]}
    expect((SPIN in sampled) == has['samples'], f'{where}: {SPIN} in {sorted(sampled)}')


def check_text(where, lines, has):
    text = '\n'.join(lines)
    expect(lines and lines[0].startswith('libprobe report'), f'{where}: no header line')
    for name in SCOPES:
        # A scope that never ran is not listed with calls.
        ran = any(re.match(rf'\s+\d+\s.*\s{name} \(', ln) for ln in lines)
        expect(ran == has['scopes'], f'{where}: {name} listed: {ran}\n{text}')
    row = [ln for ln in lines if ln.rstrip().endswith(' ' + COUNTER)]
    want = str(COUNTER_TOTAL) if has['counters'] else '-'
    expect(row and row[0].split()[0] == want, f'{where}: counter row {row}, want {want}')


def check_tree(where, lines, has):
    text = '\n'.join(lines)
    if has['samples']:
        expect(any(re.match(rf'\s*\d+\.\d%\s+\d+\.\d%\s+\d+\s.*\s{SPIN}$', ln)
                   for ln in lines), f'{where}: no {SPIN} line\n{text}')
    else:
        expect(SPIN not in text, f'{where}: {SPIN} without a sampler run\n{text}')


def check_html_page(where, raw, has):
    m = re.search(rb'<script id="probe-data" type="application/json">(.*?)</script>', raw,
                  re.S)
    if not expect(raw.startswith(b'<!DOCTYPE html>') and m, f'{where}: no page data'):
        return
    doc = load_json(where, m.group(1))
    if doc is None:
        return
    ran = {s[0] for s in doc['sites'] if s[1] == 0 and s[5] > 0}
    for name in SCOPES:
        expect((name in ran) == has['scopes'], f'{where}: {name} ran: {name in ran}')
    sampled = {doc['frames'][i] for st in doc['stacks'] for i in st[4] if i >= 0}
    expect((SPIN in sampled) == has['samples'], f'{where}: {SPIN} in {sorted(sampled)}')


def run(program, has, tmp):
    parts = ','.join(p for p in PARTS if has[p]) or 'none'
    out = os.path.join(tmp, parts)
    os.mkdir(out)
    proc = subprocess.run([program, parts, out], capture_output=True, text=True)
    if not expect(proc.returncode == 0,
                  f'[{parts}] {program} exited {proc.returncode}: {proc.stderr}'):
        return

    def read(fmt):
        with open(os.path.join(out, 'out.' + fmt), 'rb') as f:
            return f.read()

    where = f'[{parts}] %s'
    for fmt, check in [('json', check_json), ('chrome', check_chrome),
                       ('speedscope', check_speedscope)]:
        doc = load_json(where % fmt, read(fmt))
        if doc is not None:
            check(where % fmt, doc, has)
    check_collapsed(where % 'collapsed', text_lines(where % 'collapsed', read('collapsed')),
                    has)
    check_callgrind_profile(where % 'callgrind', read('callgrind'), has)
    check_pprof_profile(where % 'pprof', os.path.join(out, 'out.pprof'), has)
    check_text(where % 'text', text_lines(where % 'text', read('text')), has)
    check_tree(where % 'tree', text_lines(where % 'tree', read('tree')), has)
    check_html_page(where % 'html', read('html'), has)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        for bits in itertools.product([False, True], repeat=len(PARTS)):
            run(sys.argv[1], dict(zip(PARTS, bits)), tmp)
    for f in failures:
        print('FAIL:', f)
    if failures:
        return 1
    print('all 16 mixes: every format parsed and showed what was recorded')
    return 0


if __name__ == '__main__':
    sys.exit(main())
