#!/usr/bin/env python3
"""Run test-format-json and check its "json" report field by field.

usage: check_json.py PROGRAM

PROGRAM records known data (see test-format-json.c) and writes the report to the
path it is given. Exits 0 when every check passes, 1 with a message per failure.
"""

import json
import os
import subprocess
import sys
import tempfile

ODD_NAME = ('tj_odd "q" \\ \n \x01 \x1f \x7f \ufffd \u00e9 \U0001F600 \u2028 '
            '\ufffd\ufffd \ufffd\ufffd \ufffd\ufffd\ufffd end')
THREAD_NAME = 'tj "main"\ufffd'

SITE_FIELDS = {
    'id': int, 'name': (str, type(None)), 'kind': str, 'file': (str, type(None)),
    'line': int, 'function': (str, type(None)), 'calls': int, 'prim_calls': int,
    'total_ns': int, 'self_ns': int, 'min_ns': int, 'max_ns': int, 'p50_ns': int,
    'p90_ns': int, 'p99_ns': int, 'value': int, 'loaded': bool,
}
EDGE_FIELDS = {
    'caller': (str, type(None)), 'callee': (str, type(None)), 'caller_id': int,
    'callee_id': int, 'calls': int, 'total_ns': int,
}
THREAD_FIELDS = {'tid': int, 'name': (str, type(None)), 'live': bool, 'scopes': int,
                 'events_dropped': int}
RUSAGE_FIELDS = ['wall_ns', 'user_ns', 'system_ns', 'max_rss_bytes', 'minor_faults',
                 'major_faults', 'voluntary_switches', 'involuntary_switches',
                 'block_in', 'block_out']
LOSS_FIELDS = ['depth_overflow', 'unbalanced', 'edges_dropped', 'sites_dropped',
               'threads_unlisted', 'events_dropped', 'stats_dropped']

failures = []


def fail(msg):
    failures.append(msg)


def expect(cond, msg):
    if not cond:
        fail(msg)
    return cond


def is_type(value, types):
    """isinstance, but a bool is not an int and an int is not a float here."""
    if not isinstance(types, tuple):
        types = (types,)
    if isinstance(value, bool):
        return bool in types
    return any(type(value) is t for t in types)


def check_fields(obj, fields, where):
    if not expect(isinstance(obj, dict), f'{where}: not an object: {obj!r}'):
        return False
    ok = True
    for key, types in fields.items():
        if key not in obj:
            ok = expect(False, f'{where}: missing field "{key}"')
        elif not is_type(obj[key], types):
            ok = expect(False, f'{where}: "{key}" is {obj[key]!r}, want {types}')
    return ok


def check_uints(obj, keys, where):
    if not expect(isinstance(obj, dict), f'{where}: not an object: {obj!r}'):
        return
    for key in keys:
        v = obj.get(key)
        expect(is_type(v, int) and v >= 0, f'{where}.{key} is {v!r}, want an integer >= 0')


def load(path):
    raw = open(path, 'rb').read()
    try:
        text = raw.decode('utf-8', errors='strict')
    except UnicodeDecodeError as e:
        fail(f'the report is not valid UTF-8: {e}')
        text = raw.decode('utf-8', errors='replace')

    def no_constant(name):
        raise ValueError(f'non-JSON constant {name}')

    try:
        return json.loads(text, parse_constant=no_constant)
    except ValueError as e:
        fail(f'the report is not valid JSON: {e}\n{text[:2000]}')
        return None


def check_top(doc):
    expect(isinstance(doc, dict), 'top level is not an object')
    expect(doc.get('schema') == 'probe/1', f'schema is {doc.get("schema")!r}')
    for key, t in [('clock', dict), ('sites', list), ('edges', list), ('threads', list),
                   ('rusage', dict), ('losses', dict)]:
        expect(isinstance(doc.get(key), t), f'"{key}" is {type(doc.get(key))}, want {t}')
    clock = doc.get('clock') or {}
    expect(is_type(clock.get('name'), str) and clock['name'],
           f'clock.name is {clock.get("name")!r}')
    npt = clock.get('ns_per_tick')
    expect(is_type(npt, (int, float)) and npt > 0, f'clock.ns_per_tick is {npt!r}')
    check_uints(clock, ['elapsed_ns'], 'clock')
    check_uints(doc.get('rusage'), RUSAGE_FIELDS, 'rusage')
    check_uints(doc.get('losses'), LOSS_FIELDS, 'losses')
    # This program never starts the sampler: no stacks, so no frames or mappings.
    expect('samples' in doc and doc['samples'] is None,
           f'samples is {doc.get("samples")!r}, want null')
    for key in ('mappings', 'frames'):
        expect(doc.get(key) == [], f'"{key}" is {doc.get(key)!r}, want []')
    for key in doc.get('losses', {}):
        expect(key in LOSS_FIELDS, f'losses: unexpected field "{key}"')


def check_sites(sites):
    for i, s in enumerate(sites):
        where = f'sites[{i}] ({s.get("name")!r})' if isinstance(s, dict) else f'sites[{i}]'
        if not check_fields(s, SITE_FIELDS, where):
            continue
        expect(s['id'] == i, f'{where}: id {s["id"]}, want its index {i}')
        expect(s['kind'] in ('scope', 'line', 'counter'), f'{where}: kind {s["kind"]!r}')
        for k in ['calls', 'prim_calls', 'total_ns', 'self_ns', 'min_ns', 'max_ns',
                  'p50_ns', 'p90_ns', 'p99_ns', 'line']:
            expect(s[k] >= 0, f'{where}: {k} is negative')
        expect(s['self_ns'] <= s['total_ns'],
               f'{where}: self_ns {s["self_ns"]} > total_ns {s["total_ns"]}')
        expect(s['prim_calls'] <= s['calls'],
               f'{where}: prim_calls {s["prim_calls"]} > calls {s["calls"]}')
        if s['kind'] == 'scope' and s['calls'] > 0:
            expect(s['min_ns'] <= s['max_ns'], f'{where}: min_ns > max_ns')
            expect(s['p50_ns'] <= s['p90_ns'] <= s['p99_ns'] <= s['max_ns'],
                   f'{where}: percentiles out of order')
        if s['calls'] == 0:
            expect(s['total_ns'] == 0 and s['min_ns'] == 0,
                   f'{where}: never ran but has times')
        if s['kind'] == 'line':
            expect(s['name'] == f'{s["file"]}:{s["line"]}',
                   f'{where}: a line site is named "file:line"')


def check_edges(edges, sites):
    for i, e in enumerate(edges):
        where = f'edges[{i}]'
        if not check_fields(e, EDGE_FIELDS, where):
            continue
        for end in ('caller', 'callee'):
            idx = e[f'{end}_id']
            if expect(0 <= idx < len(sites), f'{where}: {end}_id {idx} out of range'):
                expect(e[end] == sites[idx]['name'],
                       f'{where}: {end} {e[end]!r} is not site {idx}\'s name')
                expect(sites[idx]['kind'] == 'scope', f'{where}: {end} is not a scope')
        expect(e['calls'] > 0, f'{where}: no calls')
        if 0 <= e['callee_id'] < len(sites):
            callee = sites[e['callee_id']]
            expect(e['calls'] <= callee['calls'], f'{where}: more calls than the callee')
            expect(e['total_ns'] <= callee['total_ns'],
                   f'{where}: more time than the callee\'s total')


def check_threads(threads):
    expect(len(threads) >= 1, 'no thread listed')
    for i, t in enumerate(threads):
        check_fields(t, THREAD_FIELDS, f'threads[{i}]')
    names = [t.get('name') for t in threads if isinstance(t, dict)]
    expect(THREAD_NAME in names, f'thread name {THREAD_NAME!r} not in {names!r}')


def by_name(sites, name):
    found = [s for s in sites if isinstance(s, dict) and s.get('name') == name]
    expect(len(found) == 1, f'want one site named {name!r}, found {len(found)}')
    return found[0] if found else None


def check_known(doc):
    sites, edges = doc['sites'], doc['edges']
    outer, inner = by_name(sites, 'tj_outer'), by_name(sites, 'tj_inner')
    if outer and inner:
        expect(outer['kind'] == 'scope', 'tj_outer is not a scope')
        expect(outer['calls'] == 3, f'tj_outer calls {outer["calls"]}, want 3')
        expect(outer['prim_calls'] == 3, f'tj_outer prim_calls {outer["prim_calls"]}')
        expect(inner['calls'] == 15, f'tj_inner calls {inner["calls"]}, want 15')
        expect(inner['total_ns'] <= outer['total_ns'], 'inner total > outer total')
        expect(outer['function'] == 'tj_outer', f'function {outer["function"]!r}')
        expect(outer['file'].endswith('test-format-json.c'), f'file {outer["file"]!r}')
        expect(outer['loaded'] is True, 'tj_outer not loaded')
        pair = [e for e in edges if e['caller'] == 'tj_outer' and e['callee'] == 'tj_inner']
        if expect(len(pair) == 1, f'want one edge tj_outer -> tj_inner, got {pair}'):
            expect(pair[0]['calls'] == 15, f'edge calls {pair[0]["calls"]}, want 15')
            expect(pair[0]['caller_id'] == outer['id'] and pair[0]['callee_id'] == inner['id'],
                   'edge ids do not match the sites')
        expect(not [e for e in edges if e['callee'] == 'tj_outer'],
               'tj_outer has a caller but is called from main only')

    rec = by_name(sites, 'tj_rec')
    if rec:
        expect(rec['calls'] == 9 and rec['prim_calls'] == 3,
               f'tj_rec calls/prim {rec["calls"]}/{rec["prim_calls"]}, want 9/3')
        self_edge = [e for e in edges if e['caller'] == e['callee'] == 'tj_rec']
        if expect(len(self_edge) == 1, 'want one edge tj_rec -> tj_rec'):
            expect(self_edge[0]['calls'] == 6, f'tj_rec self edge {self_edge[0]["calls"]}')

    lines = [s for s in sites if s['kind'] == 'line' and s['function'] == 'tj_lines']
    expect(sorted(s['calls'] for s in lines) == [0, 4],
           f'tj_lines line hits {[s["calls"] for s in lines]}, want [0, 4]')
    never = [s for s in lines if s['calls'] == 0]
    ran = [s for s in lines if s['calls'] == 4]
    if never and ran:
        expect(never[0]['line'] > ran[0]['line'], 'the never-run line comes after')

    counter = by_name(sites, 'tj_counter')
    if counter:
        expect(counter['kind'] == 'counter', f'tj_counter kind {counter["kind"]!r}')
        expect(counter['value'] == -1234567890123,
               f'tj_counter value {counter["value"]}, want -1234567890123')
        expect(counter['calls'] == 3, f'tj_counter updates {counter["calls"]}, want 3')
    big = by_name(sites, 'tj_big')
    if big:
        expect(big['value'] == 9007199254740993,
               f'tj_big value {big["value"]}, want 9007199254740993 (2^53 + 1)')

    odd = by_name(sites, ODD_NAME)
    if odd:
        expect(odd['calls'] == 1, f'the odd name has {odd["calls"]} calls')


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'report.json')
        run = subprocess.run([sys.argv[1], out], capture_output=True, text=True)
        if run.returncode != 0:
            print(f'FAIL: {sys.argv[1]} exited {run.returncode}\n{run.stderr}',
                  file=sys.stderr)
            return 1
        doc = load(out)
    if doc is not None:
        check_top(doc)
        if not failures:
            check_sites(doc['sites'])
            check_edges(doc['edges'], doc['sites'])
            check_threads(doc['threads'])
        if not failures:
            check_known(doc)
    for f in failures:
        print(f'FAIL: {f}', file=sys.stderr)
    if failures:
        return 1
    print(f'ok: {len(doc["sites"])} sites, {len(doc["edges"])} edges checked')
    return 0


if __name__ == '__main__':
    sys.exit(main())
