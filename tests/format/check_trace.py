#!/usr/bin/env python3
"""Run test-format-chrome in each mode and check its "chrome" and "speedscope" files.

usage: check_trace.py PROGRAM

PROGRAM (test-format-chrome.c) records a known workload in the mode given and writes
DIR/trace.json and DIR/trace.speedscope.json. The names and values checked here are
those of that program. Exits 0 when every check passes, 1 with a message per failure.
"""

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

ODD_NAME = 'tt_odd "q" \\ \n \x01 \ufffd \u00e9 end'
MAIN_NAME = 'tt "main"\ufffd'
AGGREGATE_TRACK = 'aggregate (not a timeline)'

failures = []


def fail(msg):
    failures.append(msg)


def expect(cond, msg):
    if not cond:
        fail(msg)
    return cond


def load(path):
    raw = open(path, 'rb').read()
    try:
        text = raw.decode('utf-8', errors='strict')
    except UnicodeDecodeError as e:
        fail(f'{path}: not valid UTF-8: {e}')
        text = raw.decode('utf-8', errors='replace')

    def no_constant(name):
        raise ValueError(f'non-JSON constant {name}')

    try:
        return json.loads(text, parse_constant=no_constant)
    except ValueError as e:
        fail(f'{os.path.basename(path)}: not valid JSON: {e}\n{text[:2000]}')
        return None


def ts_ns(ev, key='ts'):
    """ts/dur in µs with exactly 3 decimals, read back as integer nanoseconds."""
    v = ev.get(key)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
        fail(f'event {ev!r}: {key} is not a non-negative number')
        return 0
    return round(v * 1000)


# ---- chrome --------------------------------------------------------------------

def check_chrome_top(doc, mode):
    if not expect(isinstance(doc, dict), 'chrome: top level is not an object'):
        return None
    events = doc.get('traceEvents')
    expect(isinstance(events, list), 'chrome: traceEvents is not an array')
    expect(doc.get('displayTimeUnit') == 'ns',
           f'chrome: displayTimeUnit {doc.get("displayTimeUnit")!r}')
    other = doc.get('otherData')
    if expect(isinstance(other, dict), 'chrome: no otherData object'):
        expect(other.get('schema') == 'probe/1', f'chrome: schema {other.get("schema")!r}')
        expect(isinstance(other.get('clock'), str), 'chrome: otherData.clock')
        dropped = other.get('events_dropped')
        expect(isinstance(dropped, int) and dropped >= 0,
               f'chrome: events_dropped {dropped!r}')
        want = 'aggregate' if mode == 'aggregate' else 'timeline'
        expect(other.get('source') == want, f'chrome: source {other.get("source")!r}')
    pids = {e.get('pid') for e in events or []}
    expect(len(pids) == 1 and isinstance(next(iter(pids), None), int),
           f'chrome: want one integer pid, got {pids}')
    for e in events or []:
        expect(isinstance(e.get('ph'), str) and isinstance(e.get('name'), str)
               and isinstance(e.get('tid'), int), f'chrome: malformed event {e!r}')
    return events


def thread_names(events):
    return {e['tid']: e['args']['name'] for e in events
            if e.get('ph') == 'M' and e.get('name') == 'thread_name'}


def check_chrome_timeline(events, mode):
    """Per thread: B/E nest, every E names its B, ts non-decreasing."""
    per_tid = defaultdict(list)
    for e in events:
        if e['ph'] in 'BEiCX':
            per_tid[e['tid']].append(e)
    expect(not [e for e in events if e['ph'] == 'X'], 'chrome: X events in a timeline')
    names = thread_names(events)
    for tid, evs in per_tid.items():
        expect(tid in names, f'chrome: tid {tid} has events but no thread_name')
        stack, last, depth_max = [], -1, 0
        for e in evs:
            t = ts_ns(e)
            expect(t >= last, f'chrome: tid {tid}: ts goes back at {e!r}')
            last = t
            if e['ph'] == 'B':
                expect(e.get('cat') == 'scope', f'chrome: B without cat scope: {e!r}')
                stack.append(e)
                depth_max = max(depth_max, len(stack))
            elif e['ph'] == 'E':
                if expect(stack, f'chrome: tid {tid}: E with no open B: {e!r}'):
                    b = stack.pop()
                    expect(b['name'] == e['name'],
                           f'chrome: tid {tid}: E {e["name"]!r} closes B {b["name"]!r}')
            elif e['ph'] == 'C':
                expect(e.get('cat') == 'counter' and isinstance(
                    e.get('args', {}).get('value'), int), f'chrome: bad counter {e!r}')
            elif e['ph'] == 'i':
                expect(e.get('s') == 't' and e.get('cat') == 'instant',
                       f'chrome: bad instant {e!r}')
        expect(not stack, f'chrome: tid {tid}: {len(stack)} B left open')
    return per_tid, names


def check_chrome_known(per_tid, names):
    by_name = {v: k for k, v in names.items()}
    for want in ('tt-worker-1', 'tt-worker-2', MAIN_NAME):
        expect(want in by_name, f'chrome: no thread named {want!r} in {names!r}')
    for label, step, count in (('tt-worker-1', 5, 3), ('tt-worker-2', 7, 2)):
        tid = by_name.get(label)
        if tid is None:
            continue
        evs = per_tid.get(tid, [])
        values = [e['args']['value'] for e in evs
                  if e['ph'] == 'C' and e['name'] == 'tt_counter']
        expect(values == [step * (i + 1) for i in range(count)],
               f'chrome: {label} counter values {values}')
        mark = 'tt_mark_' + label[-1]
        expect([e for e in evs if e['ph'] == 'i' and e['name'] == mark],
               f'chrome: {label}: instant {mark} missing')
        begins = defaultdict(int)
        for e in evs:
            if e['ph'] == 'B':
                begins[e['name']] += 1
        expect(begins['tt_work'] == 1 and begins['tt_mid'] == 3 and
               begins['tt_leaf'] == 6 and begins['tt_rec'] == 4 and begins[ODD_NAME] == 1,
               f'chrome: {label}: scope counts {dict(begins)}')
        # Nesting: tt_leaf always inside tt_mid inside tt_work.
        stack = []
        for e in evs:
            if e['ph'] == 'B':
                if e['name'] == 'tt_leaf':
                    expect(stack[-2:] == ['tt_work', 'tt_mid'],
                           f'chrome: {label}: tt_leaf under {stack}')
                stack.append(e['name'])
            elif e['ph'] == 'E':
                stack.pop()
    main = per_tid.get(by_name.get(MAIN_NAME), [])
    # tt_main is open while the reports are written: closed by the writer at the end.
    expect(main and main[0]['ph'] == 'B' and main[0]['name'] == 'tt_main' and
           main[-1]['ph'] == 'E' and main[-1]['name'] == 'tt_main',
           f'chrome: main thread starts/ends {main[:1]} ... {main[-1:]}')


def check_chrome_aggregate(events):
    """X events on one synthetic track, each child inside its parent."""
    names = thread_names(events)
    expect(names.get(0) == AGGREGATE_TRACK, f'chrome: aggregate track named {names!r}')
    xs = [e for e in events if e['ph'] != 'M']
    expect(xs and all(e['ph'] == 'X' and e['tid'] == 0 for e in xs),
           'chrome: aggregate events are not all X on tid 0')
    # Perfetto's rule: on a track, events that overlap must nest.
    spans = sorted(((ts_ns(e), -ts_ns(e, 'dur'), e) for e in xs), key=lambda s: s[:2])
    stack = []
    for start, negdur, e in spans:
        end = start - negdur
        while stack and stack[-1][1] <= start:
            stack.pop()
        if stack:
            expect(end <= stack[-1][1],
                   f'chrome: {e["name"]} [{start},{end}) overlaps {stack[-1][2]["name"]}')
        stack.append((start, end, e))
    by_name = defaultdict(list)
    for e in xs:
        by_name[e['name']].append(e)
    for key in ('tt_main', 'tt_work', 'tt_mid', 'tt_leaf', 'tt_rec', ODD_NAME):
        expect(key in by_name, f'chrome: no X event for {key!r}')
    for e in xs:
        args = e.get('args', {})
        expect(ts_ns(e, 'dur') == args.get('total_ns'),
               f'chrome: {e["name"]}: dur {e.get("dur")} is not total_ns {args}')
    # tt_leaf under tt_main;tt_work;tt_mid lies inside a tt_work which lies in tt_main.
    main = by_name.get('tt_main', [None])[0]
    if main:
        m0, m1 = ts_ns(main), ts_ns(main) + ts_ns(main, 'dur')
        inside = [e for e in by_name.get('tt_work', []) if m0 <= ts_ns(e) < m1]
        expect(inside, 'chrome: tt_work not laid out inside tt_main')


def check_chrome(path, mode):
    doc = load(path)
    if doc is None:
        return None
    events = check_chrome_top(doc, mode)
    if failures or events is None:
        return doc
    if mode == 'aggregate':
        check_chrome_aggregate(events)
        return doc
    per_tid, names = check_chrome_timeline(events, mode)
    if mode == 'timeline':
        check_chrome_known(per_tid, names)
        expect(doc['otherData']['events_dropped'] == 0,
               f'chrome: events dropped {doc["otherData"]["events_dropped"]}')
    else:
        expect(doc['otherData']['events_dropped'] > 0, 'chrome: tiny ring dropped nothing')
        # 16 events kept, plus the writer's closing Es for the open scopes.
        scope = [e for evs in per_tid.values() for e in evs if e['ph'] in 'BE']
        expect(0 < len(scope) <= 2 * 16, f'chrome: tiny ring gave {len(scope)} B/E')
    return doc


# ---- speedscope ----------------------------------------------------------------

def check_speedscope_top(doc):
    if not expect(isinstance(doc, dict), 'speedscope: top level is not an object'):
        return False
    expect(doc.get('$schema') == 'https://www.speedscope.app/file-format-schema.json',
           f'speedscope: $schema {doc.get("$schema")!r}')
    frames = doc.get('shared', {}).get('frames')
    if not expect(isinstance(frames, list), 'speedscope: no shared.frames'):
        return False
    for i, f in enumerate(frames):
        expect(isinstance(f, dict) and isinstance(f.get('name'), str),
               f'speedscope: frame {i} {f!r}')
        if 'line' in f:
            expect(isinstance(f['line'], int), f'speedscope: frame {i} line')
    profiles = doc.get('profiles')
    expect(isinstance(profiles, list) and profiles, 'speedscope: no profiles')
    expect(doc.get('activeProfileIndex') == 0, 'speedscope: activeProfileIndex')
    expect(isinstance(doc.get('exporter'), str) and doc.get('name') == 'libprobe',
           'speedscope: exporter/name')
    return not failures


def check_evented(doc, mode):
    frames = doc['shared']['frames']
    names = [p.get('name') for p in doc['profiles']]
    for p in doc['profiles']:
        where = f'speedscope profile {p.get("name")!r}'
        expect(p.get('type') == 'evented' and p.get('unit') == 'nanoseconds',
               f'{where}: type/unit {p.get("type")}/{p.get("unit")}')
        start, end = p.get('startValue'), p.get('endValue')
        expect(isinstance(start, int) and isinstance(end, int) and start <= end,
               f'{where}: startValue {start} endValue {end}')
        stack, last = [], start
        opened = defaultdict(int)
        for ev in p.get('events', []):
            fr, at = ev.get('frame'), ev.get('at')
            if not expect(isinstance(fr, int) and 0 <= fr < len(frames),
                          f'{where}: frame index {fr!r} out of range'):
                continue
            expect(isinstance(at, int) and at >= last and at <= end,
                   f'{where}: at {at} out of order (last {last}, end {end})')
            last = at
            if ev.get('type') == 'O':
                stack.append((fr, at))
                opened[frames[fr]['name']] += 1
            elif expect(ev.get('type') == 'C', f'{where}: event type {ev.get("type")!r}'):
                if expect(stack, f'{where}: C with no open O'):
                    o_fr, o_at = stack.pop()
                    expect(o_fr == fr, f'{where}: C of frame {fr} closes O of frame {o_fr}')
                    expect(at >= o_at, f'{where}: C before its O')
        expect(not stack, f'{where}: {len(stack)} frames left open')
        if mode == 'timeline' and p.get('name', '').startswith('tt-worker'):
            expect(opened['tt_leaf'] == 6 and opened['tt_mid'] == 3 and opened[ODD_NAME] == 1,
                   f'{where}: opened {dict(opened)}')
    if mode == 'timeline':
        for want in ('tt-worker-1', 'tt-worker-2', MAIN_NAME):
            expect(names.count(want) == 1, f'speedscope: want one profile {want!r}: {names}')


def check_sampled(doc, chrome):
    frames = doc['shared']['frames']
    expect(len(doc['profiles']) == 1, 'speedscope: want one sampled profile')
    p = doc['profiles'][0]
    expect(p.get('type') == 'sampled' and p.get('unit') == 'nanoseconds',
           f'speedscope: type/unit {p.get("type")}/{p.get("unit")}')
    samples, weights = p.get('samples', []), p.get('weights', [])
    expect(len(samples) == len(weights) and samples, 'speedscope: samples vs weights')
    for s in samples:
        expect(isinstance(s, list) and s and all(isinstance(i, int) and 0 <= i < len(frames)
                                                 for i in s), f'speedscope: bad sample {s}')
    expect(all(isinstance(w, int) and w > 0 for w in weights), 'speedscope: bad weights')
    expect(p.get('endValue') - p.get('startValue') == sum(weights),
           'speedscope: endValue - startValue is not the sum of the weights')
    # The weights add up to the top-level scopes' total time, as chrome's top-level
    # X events have it (each node's time is rounded on its own: allow 1 ns a node).
    if chrome:
        xs = [e for e in chrome['traceEvents'] if e['ph'] == 'X']
        tops = [e for e in xs if not any(
            o is not e and ts_ns(o) <= ts_ns(e) and
            ts_ns(e) + ts_ns(e, 'dur') <= ts_ns(o) + ts_ns(o, 'dur') and
            ts_ns(o, 'dur') > ts_ns(e, 'dur') for o in xs)]
        total = sum(e['args']['total_ns'] for e in tops)
        expect(abs(total - sum(weights)) <= len(xs),
               f'speedscope: weights sum {sum(weights)}, top-level totals {total}')
    path_names = {';'.join(frames[i]['name'] for i in s) for s in samples}
    expect('tt_main;tt_work;tt_mid;tt_leaf' in path_names,
           f'speedscope: no sample main;work;mid;leaf in {sorted(path_names)}')


def check_speedscope(path, mode, chrome):
    doc = load(path)
    if doc is None or not check_speedscope_top(doc):
        return
    if mode == 'aggregate':
        check_sampled(doc, chrome)
    else:
        check_evented(doc, mode)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    for mode in ('timeline', 'aggregate', 'tiny'):
        before = len(failures)
        with tempfile.TemporaryDirectory() as tmp:
            run = subprocess.run([sys.argv[1], mode, tmp], capture_output=True, text=True)
            if run.returncode != 0:
                fail(f'{mode}: {sys.argv[1]} exited {run.returncode}\n{run.stderr}')
                continue
            chrome = check_chrome(os.path.join(tmp, 'trace.json'), mode)
            check_speedscope(os.path.join(tmp, 'trace.speedscope.json'), mode, chrome)
        for i in range(before, len(failures)):
            failures[i] = f'[{mode}] {failures[i]}'
        if len(failures) == before:
            print(f'ok: {mode}')
    for f in failures:
        print(f'FAIL: {f}', file=sys.stderr)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
