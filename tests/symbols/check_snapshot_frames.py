#!/usr/bin/env python3
"""Run test-snapshot-frames and check that its snapshots carry what formatters need:

(a) a pprof profile written after the sampled module was dlclose()d, from a snapshot
    taken before or after the dlclose, still maps the module's locations, with its
    file and GNU build-id;
(b) a function whose two hot loops are on different lines has locations on two lines
    (libdw builds), which `go tool pprof -lines -top` shows (when go is installed);
(c) the JSON report's "mappings", "frames" and stacks' "frame_ids" are the snapshot's
    tables as its accessors give them.

usage: check_snapshot_frames.py PROGRAM MODULE CHECK_PPROF_DIR GO [libdw]

GO is the go tool's path or ''. Exits 0 when every check passes, 1 with a message per
failure.
"""

import json
import os
import subprocess
import sys
import tempfile

failures = []
FUNCTION = 'frames_two_loops'
MODULE_FUNCTION = 'symmod_static_burn'


def expect(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def check_module_mapping(cp, p, name, module):
    """The module's locations are in a mapping of the module, with its build-id."""
    want_id = cp.gnu_build_id(module)
    mods = {mid: m for mid, m in p['mapping'].items()
            if os.path.realpath(m['file']) == os.path.realpath(module)}
    if not expect(mods, f'{name}: no mapping of {module}: '
                  f'{[m["file"] for m in p["mapping"].values()]}'):
        return
    for mid, m in mods.items():
        expect(m['build_id'] and m['build_id'] == want_id,
               f'{name}: mapping {mid} of the module has build-id {m["build_id"]!r}, '
               f'the file {want_id!r}')
    n = 0
    for lid, (mid, funcs) in p['locations'].items():
        if MODULE_FUNCTION not in [p['functions'].get(f) for f in funcs]:
            continue
        n += 1
        expect(mid in mods, f'{name}: {MODULE_FUNCTION}\'s location {lid} is in '
               f'mapping {mid}, not the module\'s {sorted(mods)}')
    expect(n > 0, f'{name}: no location of {MODULE_FUNCTION}')
    print(f'{name}: {len(mods)} mapping(s) of the module, {n} location(s) of '
          f'{MODULE_FUNCTION}, build-id {want_id}')


def function_lines(p):
    """The lines of FUNCTION's locations, weighted by the samples whose leaf they are."""
    weight = {}
    for locs, values in p['samples']:
        if not locs:
            continue
        lid = locs[0]
        _, funcs = p['locations'][lid]
        if FUNCTION in [p['functions'].get(f) for f in funcs]:
            for line in p['line'][lid]:
                weight[line] = weight.get(line, 0) + values[0]
    return weight


def loop_lines(program_source):
    with open(program_source) as f:
        lines = f.read().split('\n')
    return [i + 1 for i, text in enumerate(lines) if 'FIRST LOOP' in text] + \
        [i + 1 for i, text in enumerate(lines) if 'SECOND LOOP' in text]


def read_tables(path):
    mappings, frames, samples = [], [], []
    with open(path) as f:
        for row in f.read().split('\n'):
            if not row:
                continue
            c = row.split('\t')
            if c[0] == 'M':
                mappings.append({'start': int(c[1]), 'limit': int(c[2]),
                                 'offset': int(c[3]), 'build_id': c[4],
                                 'main_program': c[5] == '1', 'path': c[6]})
            elif c[0] == 'F':
                frames.append({'address': int(c[1]), 'is_return': c[2] == '1',
                               'line': int(c[3]),
                               'mapping': None if c[4] == '-1' else int(c[4]),
                               'function': c[5], 'file': c[7] if c[6] == '1' else None})
            elif c[0] == 'S':
                samples.append((int(c[1]), int(c[2]),
                                [int(x) for x in c[3].split()] if c[3] else []))
    return mappings, frames, samples


def check_round_trip(doc, tables, module):
    mappings, frames, samples = tables
    expect(doc.get('mappings') == mappings,
           f'JSON mappings differ from the accessors\':\n{doc.get("mappings")}\n{mappings}')
    expect(doc.get('frames') == frames,
           f'JSON frames differ from the accessors\' ({len(doc.get("frames") or [])} vs '
           f'{len(frames)})')
    stacks = (doc.get('samples') or {}).get('stacks', [])
    got = [(s['tid'], s['weight'], s.get('frame_ids')) for s in stacks]
    expect(got == samples, 'JSON stacks\' frame_ids differ from the accessors\'')
    # The tables are consistent: names agree with frames[], addresses lie in mappings.
    for i, s in enumerate(stacks):
        ids = s.get('frame_ids') or []
        expect(len(ids) == len(s['frames']), f'stack {i}: {len(ids)} frame_ids, '
               f'{len(s["frames"])} frames')
        for k, fid in enumerate(ids):
            if expect(0 <= fid < len(frames), f'stack {i}: frame id {fid} out of range'):
                expect(frames[fid]['function'] == s['frames'][k],
                       f'stack {i}: frame {k} is {s["frames"][k]!r}, '
                       f'frames[{fid}] {frames[fid]["function"]!r}')
                expect(frames[fid]['is_return'] == (k < len(ids) - 1),
                       f'stack {i}: frame {k} is_return {frames[fid]["is_return"]}')
    for i, fr in enumerate(frames):
        if fr['mapping'] is None:
            continue
        m = mappings[fr['mapping']]
        at = fr['address'] - 1 if fr['is_return'] else fr['address']
        expect(m['start'] <= at < m['limit'],
               f'frame {i} at {fr["address"]:#x} outside its mapping')
    mains = [i for i, m in enumerate(mappings) if m['main_program']]
    expect(mains and mains == list(range(len(mains))),
           f'the program\'s mappings are not first: {mains}')
    names = {fr['function'] for fr in frames}
    for fn in (FUNCTION, 'symmod_run'):
        expect(fn in names or any(n.startswith(os.path.basename(module)) for n in names),
               f'{fn} not among the frames')
    print(f'round trip: {len(mappings)} mappings, {len(frames)} frames, '
          f'{len(stacks)} stacks')


def main():
    program, module, cp_dir, go = sys.argv[1:5]
    libdw = len(sys.argv) > 5 and sys.argv[5] == 'libdw'
    sys.path.insert(0, cp_dir)
    import check_pprof as cp
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'test-snapshot-frames.c')
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, n) for n in
                 ('before.pb.gz', 'after.pb.gz', 'after.json', 'tables.txt')]
        proc = subprocess.run([program, module] + paths, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f'{program} exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}')
            return 1
        profiles = {}
        for name, path in (('before', paths[0]), ('after', paths[1])):
            p = profiles[name] = cp.decode_profile(path)
            cp.check_common(p, name)
            check_module_mapping(cp, p, name, module)
        with open(paths[2], 'rb') as f:
            doc = json.loads(f.read().decode('utf-8'))
        check_round_trip(doc, read_tables(paths[3]), module)

        p = profiles['before']
        weight = function_lines(p)
        want = loop_lines(source)
        print(f'{FUNCTION}: leaf samples by line {weight}; the loops are on {want}')
        if libdw:
            # A loop's instructions belong to its body's line or to its for line,
            # just above: each loop must show on one of its two.
            windows = [(line - 1, line) for line in want]
            hot = [line for line, w in weight.items() if line and w > 0]
            expect(len(hot) >= 2, f'{FUNCTION}\'s samples are on lines {hot}, want two')
            for win in windows:
                expect(any(weight.get(line, 0) > 0 for line in win),
                       f'no sample of {FUNCTION} on lines {win}')
            if go:
                env = dict(os.environ, PPROF_TMPDIR=tmp)
                top = subprocess.run([go, 'tool', 'pprof', '-lines', '-top', paths[0]],
                                     capture_output=True, text=True, env=env)
                print(top.stdout + top.stderr)
                expect(top.returncode == 0, f'go tool pprof exited with {top.returncode}')
                shown = {int(row.rsplit(':', 1)[1].split()[0])
                         for row in top.stdout.split('\n')
                         if FUNCTION in row and 'test-snapshot-frames.c:' in row}
                for win in windows:
                    expect(shown & set(win), f'go tool pprof -lines -top shows '
                           f'{FUNCTION} on lines {sorted(shown)}, not on {win}')
            else:
                print('go not found: go tool pprof not run')
        else:
            print('libprobe has no libdw: no source lines to check')

    failures.extend(cp.failures)
    for msg in failures:
        print('FAIL:', msg)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
