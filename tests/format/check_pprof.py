#!/usr/bin/env python3
"""Run test-format-pprof, decode its gzip'd profile.proto with a small decoder of our
own, check it against the JSON report of the same snapshot and against the program's
own file (mappings, build-id, addresses, lines), then, when `go` is installed, read it
with `go tool pprof -top` and `-raw`.

usage: check_pprof.py PROGRAM GO [libdw]

PROGRAM (see test-format-pprof.c) writes the profile, the JSON report, the profile of
a snapshot without samples and, where wall-clock sampling works, a wall-clock profile
to the paths it is given. GO is the go tool's path, or '' when it is not installed:
that part is then left out (the test still passes). 'libdw' says libprobe was built
with libdw: the test functions' locations must then have source lines.
Exits 0 when every check passes, 1 with a message per failure.
"""

import gzip
import json
import os
import subprocess
import sys
import tempfile

LOOP = 'pprof_test_loop'
# Every function of the test program that burns CPU under the sampler; the static one
# is named by the ELF .symtab only (the program exports no symbols).
TEST_FUNCTIONS = [LOOP, 'pprof_test_static']
SOURCE = 'test-format-pprof.c'

failures = []


def expect(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


# ---- protobuf ---------------------------------------------------------------------

def read_varint(buf, pos):
    shift = value = 0
    while True:
        if pos >= len(buf):
            raise ValueError('truncated varint')
        b = buf[pos]
        pos += 1
        value |= (b & 0x7f) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError('varint too long')


def fields(buf):
    """The (field, wire type, value) of a message: ints for varints, bytes for
    length-delimited fields."""
    pos = 0
    out = []
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 2:
            n, pos = read_varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError('truncated field %d' % field)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], 'little'), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], 'little'), pos + 4
        else:
            raise ValueError('wire type %d' % wire)
        out.append((field, wire, value))
    return out


def ints(msg, field, signed=False):
    """Repeated integer @field, packed or not."""
    vals = []
    for f, wire, v in msg:
        if f != field:
            continue
        if wire == 2:
            pos = 0
            while pos < len(v):
                x, pos = read_varint(v, pos)
                vals.append(x)
        else:
            vals.append(v)
    if signed:
        vals = [x - (1 << 64) if x >= 1 << 63 else x for x in vals]
    return vals


def one(msg, field, default=0):
    vals = ints(msg, field)
    return vals[-1] if vals else default


def subs(msg, field):
    return [fields(v) for f, wire, v in msg if f == field and wire == 2]


def decode_profile(path):
    with open(path, 'rb') as f:
        raw = f.read()
    expect(raw[:2] == b'\x1f\x8b', f'{path} is not gzip')
    prof = fields(gzip.decompress(raw))
    strings = [v.decode('utf-8') for f, wire, v in prof if f == 6]
    p = {'raw_size': len(raw), 'strings': strings}

    def s(i):
        return strings[i] if expect(0 <= i < len(strings), f'string {i} out of range') \
            else '?'

    p['sample_type'] = [(s(one(m, 1)), s(one(m, 2))) for m in subs(prof, 1)]
    pt = subs(prof, 11)
    p['period_type'] = (s(one(pt[0], 1)), s(one(pt[0], 2))) if pt else None
    p['period'] = one(prof, 12)
    p['samples'] = [(ints(m, 1), ints(m, 2, signed=True)) for m in subs(prof, 2)]
    # Labels per sample: {key: num or str}.
    p['labels'] = [{s(one(lb, 1)): (s(one(lb, 2)) if one(lb, 2) else one(lb, 3))
                    for lb in subs(m, 3)} for m in subs(prof, 2)]
    # The program's own mapping comes first (pprof names the profile after it).
    first = subs(prof, 3)
    p['first_mapping_file'] = s(one(first[0], 5)) if first else None
    p['mappings'] = {one(m, 1): (s(one(m, 5)), one(m, 7)) for m in subs(prof, 3)}
    p['build_ids'] = [s(one(m, 6)) for m in subs(prof, 3)]
    # Every field: id, start, limit, offset, file, build-id, has_functions,
    # has_filenames, has_line_numbers.
    p['mapping'] = {}
    for m in subs(prof, 3):
        mid = one(m, 1)
        expect(mid not in p['mapping'], f'mapping {mid} twice')
        p['mapping'][mid] = {'start': one(m, 2), 'limit': one(m, 3),
                             'offset': one(m, 4), 'file': s(one(m, 5)),
                             'build_id': s(one(m, 6)), 'has_functions': one(m, 7),
                             'has_filenames': one(m, 8),
                             'has_line_numbers': one(m, 9)}
    p['locations'] = {}
    p['address'] = {}
    p['line'] = {}
    for m in subs(prof, 4):
        lid = one(m, 1)
        expect(lid not in p['locations'], f'location {lid} twice')
        p['locations'][lid] = (one(m, 2), [one(ln, 1) for ln in subs(m, 4)])
        p['address'][lid] = one(m, 3)
        p['line'][lid] = [one(ln, 2) for ln in subs(m, 4)]
    p['functions'] = {}
    p['function_file'] = {}
    for m in subs(prof, 5):
        fid = one(m, 1)
        expect(fid not in p['functions'], f'function {fid} twice')
        p['functions'][fid] = s(one(m, 2))
        p['function_file'][fid] = s(one(m, 4))
    return p


def check_common(p, name, kind='cpu'):
    expect(p['strings'][:1] == [''], f'{name}: string_table[0] is not ""')
    expect(p['sample_type'] == [('samples', 'count'), (kind, 'nanoseconds')],
           f'{name}: sample types {p["sample_type"]}')
    expect(p['period_type'] == (kind, 'nanoseconds'),
           f'{name}: period type {p["period_type"]}')
    for locs, values in p['samples']:
        expect(len(values) == 2, f'{name}: sample with {len(values)} values')
        expect(locs, f'{name}: sample without locations')
        for lid in locs:
            expect(lid in p['locations'], f'{name}: sample location {lid} missing')
    used = set()
    for lid, (mid, funcs) in p['locations'].items():
        expect(lid != 0, f'{name}: location id 0')
        addr = p['address'][lid]
        # A synthetic frame (address 0) has no mapping; a sampled one the mapping of
        # the segment that holds it (when a loaded module does).
        if addr == 0:
            expect(mid == 0, f'{name}: location {lid} without address in mapping {mid}')
        if mid:
            used.add(mid)
            expect(mid in p['mappings'], f'{name}: location {lid} mapping {mid} missing')
            m = p['mapping'].get(mid)
            if m:
                expect(m['start'] <= addr <= m['limit'],
                       f'{name}: location {lid} at {addr:#x} outside mapping {mid} '
                       f'[{m["start"]:#x}, {m["limit"]:#x})')
        expect(funcs, f'{name}: location {lid} without a line')
        for fid in funcs:
            expect(fid in p['functions'], f'{name}: location {lid} function {fid} '
                   'missing')
    for mid, (filename, has_functions) in p['mappings'].items():
        expect(mid != 0, f'{name}: mapping id 0')
        expect(mid in used, f'{name}: mapping {mid} ({filename}) holds no location')
        expect(filename, f'{name}: mapping {mid} has no file name')
        expect(has_functions == 1, f'{name}: mapping {mid} lacks has_functions')
        m = p['mapping'][mid]
        expect(m['start'] < m['limit'], f'{name}: mapping {mid} is empty')
    ranges = sorted((m['start'], m['limit']) for m in p['mapping'].values())
    for a, b in zip(ranges, ranges[1:]):
        expect(a[1] <= b[0], f'{name}: mappings {a} and {b} overlap')
    for build_id in p['build_ids']:
        expect(all(c in '0123456789abcdef' for c in build_id) and len(build_id) % 2 == 0,
               f'{name}: build id {build_id!r} is not hex')


def gnu_build_id(path):
    """The NT_GNU_BUILD_ID of an ELF file, in hex, read from its section headers
    (64-bit little-endian files only; None otherwise or if it has none)."""
    with open(path, 'rb') as f:
        elf = f.read()
    if elf[:4] != b'\x7fELF' or elf[4] != 2 or elf[5] != 1:
        return None
    shoff = int.from_bytes(elf[0x28:0x30], 'little')
    shentsize = int.from_bytes(elf[0x3a:0x3c], 'little')
    shnum = int.from_bytes(elf[0x3c:0x3e], 'little')
    for i in range(shnum):
        sh = elf[shoff + i * shentsize:shoff + (i + 1) * shentsize]
        if int.from_bytes(sh[4:8], 'little') != 7:  # SHT_NOTE
            continue
        off = int.from_bytes(sh[0x18:0x20], 'little')
        end = off + int.from_bytes(sh[0x20:0x28], 'little')
        while off + 12 <= end:
            namesz, descsz, ntype = (int.from_bytes(elf[off + k:off + k + 4], 'little')
                                     for k in (0, 4, 8))
            name = elf[off + 12:off + 12 + namesz]
            desc_off = off + 12 + ((namesz + 3) & ~3)
            if ntype == 3 and name == b'GNU\0':  # NT_GNU_BUILD_ID
                return elf[desc_off:desc_off + descsz].hex()
            off = desc_off + ((descsz + 3) & ~3)
    return None


def check_program(p, program, libdw):
    """The main program's mapping, its test functions' locations and lines."""
    exe = os.path.realpath(program)
    mains = [mid for mid, m in p['mapping'].items() if m['file'] == exe]
    if not expect(len(mains) == 1,
                  f'{len(mains)} mappings of {exe}: '
                  f'{[m["file"] for m in p["mapping"].values()]}'):
        return
    m = p['mapping'][mains[0]]
    expect(m['build_id'], 'the main program\'s mapping has no build-id')
    want = gnu_build_id(exe)
    if want is not None:
        expect(m['build_id'] == want,
               f'main program build-id {m["build_id"]!r}, the file has {want!r}')
    if libdw:
        expect(m['has_filenames'] == 1 and m['has_line_numbers'] == 1,
               'the main program\'s mapping lacks has_filenames/has_line_numbers')
    seen = set()
    for lid, (mid, funcs) in p['locations'].items():
        names = [p['functions'].get(fid) for fid in funcs]
        fn = next((n for n in names if n in TEST_FUNCTIONS), None)
        if not fn:
            continue
        seen.add(fn)
        addr = p['address'][lid]
        expect(mid == mains[0], f'{fn}\'s location {lid} is in mapping {mid}, '
               f'not the program\'s {mains[0]}')
        expect(addr and m['start'] <= addr < m['limit'],
               f'{fn}\'s location {lid} at {addr:#x} is outside the program\'s '
               f'mapping [{m["start"]:#x}, {m["limit"]:#x})')
        if libdw:
            fid = funcs[names.index(fn)]
            expect(p['function_file'][fid].endswith(SOURCE),
                   f'{fn}\'s file is {p["function_file"][fid]!r}')
            expect(all(n > 0 for n in p['line'][lid]),
                   f'{fn}\'s location {lid} has lines {p["line"][lid]}')
    for fn in TEST_FUNCTIONS:
        expect(fn in seen, f'no location of {fn}')


def check_speedscope(path, stacks):
    """The sampler's stacks as speedscope "sampled" profiles, one per thread: the same
    stacks (frame names, root first) and weights (cpu_ns) as the JSON report's."""
    with open(path, 'rb') as f:
        doc = json.loads(f.read().decode('utf-8'))
    frames = [fr.get('name') for fr in doc.get('shared', {}).get('frames', [])]
    want = {}
    for st in stacks:
        want.setdefault(st['tid'], []).append((tuple(st['frames']), st['cpu_ns']))
    got = {}
    for prof in doc.get('profiles', []):
        name = prof.get('name', '')
        if prof.get('type') != 'sampled' or '(tid ' not in name:
            continue
        tid = int(name.split('(tid ')[1].split(')')[0])
        samples, weights = prof.get('samples', []), prof.get('weights', [])
        if not expect(len(samples) == len(weights),
                      f'speedscope: {len(samples)} samples, {len(weights)} weights'):
            continue
        ok = all(0 <= i < len(frames) for s in samples for i in s)
        if not expect(ok, f'speedscope: a frame index out of range in {name}'):
            continue
        got[tid] = [(tuple(frames[i] for i in s), w) for s, w in zip(samples, weights)]
        expect(prof.get('endValue') == sum(weights),
               f'speedscope: endValue {prof.get("endValue")} != {sum(weights)}')
    expect(sorted(got) == sorted(want),
           f'speedscope: profiles for threads {sorted(got)}, JSON {sorted(want)}')
    for tid in want:
        expect(sorted(got.get(tid, [])) == sorted(want[tid]),
               f'speedscope: thread {tid}\'s stacks differ from the JSON report\'s')
    print(f'speedscope: {len(got)} sampled profile(s), {len(frames)} frames')


def main():
    program, go = sys.argv[1], sys.argv[2]
    libdw = len(sys.argv) > 3 and sys.argv[3] == 'libdw'
    with tempfile.TemporaryDirectory() as tmp:
        prof_path = os.path.join(tmp, 'out.pb.gz')
        json_path = os.path.join(tmp, 'out.json')
        empty_path = os.path.join(tmp, 'empty.pb.gz')
        wall_path = os.path.join(tmp, 'wall.pb.gz')
        speedscope_path = os.path.join(tmp, 'out.speedscope.json')
        proc = subprocess.run([program, prof_path, json_path, empty_path, wall_path,
                               speedscope_path],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f'{program} exited with {proc.returncode}:\n'
                  f'{proc.stdout}{proc.stderr}')
            return 1

        empty = decode_profile(empty_path)
        check_common(empty, 'empty')
        expect(not empty['samples'], 'the empty profile has samples')

        p = decode_profile(prof_path)
        check_common(p, 'profile')
        with open(json_path, 'rb') as f:
            doc = json.loads(f.read().decode('utf-8'))
        sampled = doc.get('samples') or {}
        stacks = sampled.get('stacks', [])
        expect(p['period'] == sampled.get('interval_ns'),
               f'period {p["period"]} != interval_ns {sampled.get("interval_ns")}')
        expect(len(p['samples']) == len(stacks),
               f'{len(p["samples"])} samples, {len(stacks)} stacks in the JSON')
        cpu = sum(v[1] for _, v in p['samples'] if len(v) == 2)
        weight = sum(v[0] for _, v in p['samples'] if len(v) == 2)
        expect(cpu > 0, 'no CPU time in the profile')
        expect(cpu == sum(st['cpu_ns'] for st in stacks),
               f'CPU {cpu} != the JSON\'s {sum(st["cpu_ns"] for st in stacks)}')
        expect(weight == sum(st['weight'] for st in stacks),
               f'count {weight} != the JSON\'s {sum(st["weight"] for st in stacks)}')
        names = set(p['functions'].values())
        for fn in TEST_FUNCTIONS:
            expect(fn in names, f'{fn} not among the functions: {sorted(names)}')
        # Leaf first: the loops are the leaves of most of the CPU time.
        leaf_cpu = sum(v[1] for locs, v in p['samples'] if locs and
                       p['functions'][p['locations'][locs[0]][1][0]] in TEST_FUNCTIONS)
        expect(leaf_cpu * 2 > cpu, f'{TEST_FUNCTIONS} are the leaves of {leaf_cpu} of '
               f'{cpu} ns')
        check_program(p, program, libdw)
        expect(p['first_mapping_file'] and
               os.path.realpath(p['first_mapping_file']) == os.path.realpath(program),
               f'the first mapping is {p["first_mapping_file"]}, not the program')
        check_speedscope(speedscope_path, stacks)
        print(f'profile: {p["raw_size"]} bytes gzip\'d, {len(p["samples"])} samples, '
              f'{len(p["locations"])} locations, {len(p["mapping"])} mappings, '
              f'{cpu} ns of CPU')

        if os.path.exists(wall_path):
            wall = decode_profile(wall_path)
            check_common(wall, 'wall', kind='wall')
            expect(wall['samples'], 'the wall-clock profile has no samples')
            names = set(wall['functions'].values())
            expect(LOOP in names, f'{LOOP} not in the wall-clock profile: {sorted(names)}')
            expect(all('tid' in lb for lb in wall['labels']), 'a sample without its tid label')
            states = [lb.get('state') for lb in wall['labels']]
            expect(set(states) <= {None, 'blocked'}, f'state labels: {states}')
            expect('blocked' in states, 'no sample labelled state=blocked (the nap)')
            print(f'wall-clock profile: {len(wall["samples"])} samples')
        else:
            print('no wall-clock profile: wall-clock sampling is not supported')

        if go:
            # Mappings have has_functions: pprof keeps the profile's own names.
            env = dict(os.environ, PPROF_TMPDIR=tmp)
            top = subprocess.run([go, 'tool', 'pprof', '-top', prof_path],
                                 capture_output=True, text=True, env=env)
            print(top.stdout + top.stderr)
            expect(top.returncode == 0, f'go tool pprof -top exited with '
                   f'{top.returncode}')
            for fn in TEST_FUNCTIONS:
                expect(fn in top.stdout, f'{fn} not in go tool pprof -top')
            raw = subprocess.run([go, 'tool', 'pprof', '-raw', prof_path],
                                 capture_output=True, text=True, env=env)
            expect(raw.returncode == 0, f'go tool pprof -raw exited with '
                   f'{raw.returncode}: {raw.stderr}')
            build_id = gnu_build_id(os.path.realpath(program))
            if build_id:
                expect(build_id in raw.stdout, f'build-id {build_id} not in -raw')
            for fn in TEST_FUNCTIONS:
                expect(fn in raw.stdout, f'{fn} not in go tool pprof -raw')
        else:
            print('go not found: go tool pprof not run')

    for msg in failures:
        print('FAIL:', msg)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
