#!/usr/bin/env python3
"""Run test-format-callgrind, check its callgrind profile against the JSON report of
the same snapshot, then read the profile with callgrind_annotate.

usage: check_callgrind.py PROGRAM CALLGRIND_ANNOTATE

PROGRAM (see test-format-callgrind.c) writes the profile and the JSON report to the
paths it is given. CALLGRIND_ANNOTATE is the tool's path, or '' when it is not
installed: the profile is then checked by this script alone, and the test skips (77).
Exits 0 when every check passes, 1 with a message per failure.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

FUNCTIONS = ['cg_main', 'cg_parse', 'cg_lex', 'cg_dup', ' cg odd\nname\x01']
ODD_SHOWN = '_cg odd_name_'

failures = []


def fail(msg):
    failures.append(msg)


def expect(cond, msg):
    if not cond:
        fail(msg)
    return cond


def run_program(program, tmp, fmt):
    cg = os.path.join(tmp, 'out.callgrind')
    js = os.path.join(tmp, 'out.json')
    args = [program, cg, js] + ([fmt] if fmt != 'callgrind' else [])
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f'{args[0]} exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}')
        sys.exit(1)
    with open(cg, 'rb') as f:
        raw = f.read()
    with open(js, 'rb') as f:
        doc = json.loads(f.read().decode('utf-8'))
    return cg, raw, doc


def parse_profile(raw):
    """Our own reader of the subset of the format we write: returns the header, the
    functions by "file:name" with their self costs and calls, and the totals."""
    text = raw.decode('utf-8')
    lines = text.split('\n')
    expect(lines[0] == '# callgrind format', f'first line is {lines[0]!r}')
    expect(text.endswith('\n'), 'the profile does not end with a newline')
    header = {}
    i = 1
    while i < len(lines) and lines[i] and ':' in lines[i] and '=' not in lines[i]:
        key, _, value = lines[i].partition(':')
        header[key] = value.strip()
        i += 1
    names = {'fl': {}, 'fn': {}}
    fns = {}
    cur = cfile = cfn = None
    calls = None
    fl = None

    def uncompress(kind, value, where):
        m = re.fullmatch(r'\((\d+)\)(?: (.*))?', value)
        if not expect(m, f'{where}: not compressed: {value!r}'):
            return value
        ident, name = m.group(1), m.group(2)
        if name is None:
            expect(ident in names[kind], f'{where}: ({ident}) used before it is defined')
            return names[kind].get(ident, '?')
        expect(ident not in names[kind], f'{where}: ({ident}) defined twice')
        expect(name == name.lstrip(), f'{where}: a name with leading blanks')
        names[kind][ident] = name
        return name

    for n, line in enumerate(lines[i:], start=i + 1):
        where = f'line {n}'
        if not line or line.startswith('#'):
            continue
        if any(ord(c) < 0x20 or ord(c) == 0x7f for c in line):
            fail(f'{where}: a control character')
        key, eq, value = line.partition('=')
        if line.startswith('totals:') or line.startswith('summary:'):
            header[line.split(':')[0]] = line.partition(':')[2].strip()
        elif eq and key == 'fl':
            fl = uncompress('fl', value, where)
        elif eq and key == 'fn':
            expect(fl is not None, f'{where}: fn= before fl=')
            cur = f'{fl}:{uncompress("fn", value, where)}'
            expect(cur not in fns, f'{where}: function {cur!r} twice')
            fns[cur] = {'self': None, 'calls': {}}
        elif eq and key == 'cfl':
            cfile = uncompress('fl', value, where)
        elif eq and key == 'cfn':
            cfn = f'{cfile}:{uncompress("fn", value, where)}'
        elif eq and key == 'calls':
            m = re.fullmatch(r'(\d+) (\d+)', value)
            expect(m and cfn, f'{where}: bad calls= line {line!r}')
            calls = int(m.group(1)) if m else 0
        elif re.fullmatch(r'\d+( \d+)+', line):
            nums = [int(x) for x in line.split()]
            expect(cur is not None, f'{where}: a cost line outside a function')
            if cur is None:
                continue
            if calls is not None:
                fns[cur]['calls'][cfn] = (calls, nums[1:])
                calls = None
            else:
                expect(fns[cur]['self'] is None, f'{where}: {cur!r} has two self costs')
                fns[cur]['self'] = nums[1:]
        else:
            fail(f'{where}: not understood: {line!r}')
    return header, fns


def check_profile(raw, doc, with_calls):
    header, fns = parse_profile(raw)
    events = 'ns calls' if with_calls else 'ns'
    expect(header.get('version') == '1', f'version is {header.get("version")!r}')
    expect(header.get('creator') == 'libprobe', f'creator is {header.get("creator")!r}')
    expect(header.get('events') == events, f'events is {header.get("events")!r}')

    sites = doc['sites']
    edges = doc['edges']
    scopes = [s for s in sites if s['kind'] == 'scope' and s['calls'] > 0]
    # The name each site has in the profile.
    shown = {}
    for s in scopes:
        name = s['name'].replace('\n', '_').replace('\x01', '_')
        if name.startswith(' '):
            name = '_' + name[1:]
        if sum(1 for t in scopes if t['name'] == s['name']) > 1:
            name += f' ({s["file"]}:{s["line"]})'
        shown[s['id']] = f'{s["file"]}:{name}'
    expect(len(set(shown.values())) == len(shown), f'names not unique: {shown}')
    expect(set(fns) == set(shown.values()),
           f'functions {sorted(fns)}, want {sorted(shown.values())}')
    for want in FUNCTIONS:
        expect(any(s['name'] == want for s in scopes), f'no site {want!r} in the JSON')
    expect(any(k.endswith(':' + ODD_SHOWN) for k in fns), f'{ODD_SHOWN!r} not in {fns}')
    expect(sum(1 for k in fns if ':cg_dup (' in k) == 2, 'cg_dup not shown twice')

    total = [0, 0]
    for s in scopes:
        fn = fns.get(shown[s['id']])
        if fn is None:
            continue
        want = [s['self_ns']] + ([s['calls']] if with_calls else [])
        expect(fn['self'] == want, f'{s["name"]!r}: self cost {fn["self"]}, want {want}')
        total[0] += s['self_ns']
        total[1] += s['calls']
        out = {e['callee_id']: e for e in edges if e['caller_id'] == s['id']}
        expect(len(fn['calls']) == len(out),
               f'{s["name"]!r}: {len(fn["calls"])} callees, want {len(out)}')
        for callee, e in out.items():
            got = fn['calls'].get(shown.get(callee))
            want = (e['calls'], [e['total_ns']] + ([e['calls']] if with_calls else []))
            expect(got == want, f'{s["name"]!r} -> {e["callee"]!r}: {got}, want {want}')
    want = ' '.join(str(t) for t in (total if with_calls else total[:1]))
    expect(header.get('summary') == want, f'summary: {header.get("summary")}, want {want}')
    expect(header.get('totals') == want, f'totals: {header.get("totals")}, want {want}')
    return shown


def expected_inclusive(doc, shown, field, self_field):
    """What callgrind_annotate --inclusive=yes shows for each function: a function
    that is called somewhere is the sum of the calls' costs; one never called is its
    self cost plus its calls' costs."""
    incoming, outgoing = {}, {}
    for e in doc['edges']:
        incoming[e['callee_id']] = incoming.get(e['callee_id'], 0) + e[field]
        outgoing[e['caller_id']] = outgoing.get(e['caller_id'], 0) + e[field]
    sites = {s['id']: s for s in doc['sites']}
    return {key: incoming[i] if i in incoming else sites[i][self_field] + outgoing.get(i, 0)
            for i, key in shown.items()}


def check_annotate(annotate, path, doc, shown, with_calls):
    proc = subprocess.run([annotate, '--inclusive=yes', '--threshold=100', '--auto=no',
                           path], capture_output=True, text=True,
                          cwd=os.path.dirname(path))
    out = proc.stdout
    if not expect(proc.returncode == 0,
                  f'callgrind_annotate exited with {proc.returncode}:\n{out}{proc.stderr}'):
        return
    expect('WARNING' not in proc.stderr, f'callgrind_annotate warned:\n{proc.stderr}')
    got, got_calls = {}, {}
    program_total = None
    cell = r'([\d,]+) \(\s*[\d.]+%\)'
    for line in out.split('\n'):
        m = re.fullmatch(r'\s*' + cell + r'(?:\s+' + cell + r')?  (.*)', line)
        if not m:
            continue
        value = int(m.group(1).replace(',', ''))
        if m.group(3) == 'PROGRAM TOTALS':
            program_total = value
        else:
            got[m.group(3)] = value
            if m.group(2):
                got_calls[m.group(3)] = int(m.group(2).replace(',', ''))
    want = expected_inclusive(doc, shown, 'total_ns', 'self_ns')
    expect(got == want, f'callgrind_annotate shows {got}, want {want}\n{out}')
    if with_calls:
        want = expected_inclusive(doc, shown, 'calls', 'calls')
        expect(got_calls == want, f'callgrind_annotate shows calls {got_calls}, '
               f'want {want}\n{out}')

    self_sum = sum(s['self_ns'] for s in doc['sites'] if s['kind'] == 'scope')
    expect(program_total == self_sum, f'PROGRAM TOTALS {program_total}, want {self_sum}')

    # Sites never called at top level and never recursive: what we wrote adds up
    # to the site's inclusive time (each figure rounded to whole ns on its own).
    sites = {s['id']: s for s in doc['sites']}
    for name in ['cg_main', 'cg_parse', 'cg_dup', ODD_SHOWN]:
        for i, key in shown.items():
            if key.split(':', 1)[1].split(' (')[0] != name:
                continue
            total = sites[i]['total_ns']
            expect(abs(got.get(key, -1) - total) <= 16,
                   f'{key}: callgrind_annotate {got.get(key)}, total_ns {total}')
            expect(got.get(key, 0) > 0, f'{key}: no time')


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    program, annotate = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, with_calls in [('callgrind', False), ('callgrind:events=ns+calls', True)]:
            path, raw, doc = run_program(program, tmp, fmt)
            shown = check_profile(raw, doc, with_calls)
            if annotate and not failures:
                check_annotate(annotate, path, doc, shown, with_calls)
            if failures:
                print(f'--- {fmt}:\n{raw.decode("utf-8", "replace")}')
                break
    for f in failures:
        print('FAIL:', f)
    if failures:
        return 1
    if not annotate:
        print('callgrind_annotate not found: the profile was checked, the tool not run')
        return 77
    return 0


if __name__ == '__main__':
    sys.exit(main())
