#!/usr/bin/env python3
"""Run test-format-pprof, decode its gzip'd profile.proto with a small decoder of our
own, check it against the JSON report of the same snapshot, then, when `go` is
installed, read it with `go tool pprof -top`.

usage: check_pprof.py PROGRAM GO

PROGRAM (see test-format-pprof.c) writes the profile, the JSON report and the profile
of a snapshot without samples to the paths it is given. GO is the go tool's path, or
'' when it is not installed: that part is then left out (the test still passes).
Exits 0 when every check passes, 1 with a message per failure.
"""

import gzip
import json
import os
import subprocess
import sys
import tempfile

LOOP = 'pprof_test_loop'

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
    p['mappings'] = {one(m, 1): (s(one(m, 5)), one(m, 7)) for m in subs(prof, 3)}
    p['build_ids'] = [s(one(m, 6)) for m in subs(prof, 3)]
    p['locations'] = {}
    for m in subs(prof, 4):
        lid = one(m, 1)
        expect(lid not in p['locations'], f'location {lid} twice')
        p['locations'][lid] = (one(m, 2), [one(ln, 1) for ln in subs(m, 4)])
    p['functions'] = {}
    for m in subs(prof, 5):
        fid = one(m, 1)
        expect(fid not in p['functions'], f'function {fid} twice')
        p['functions'][fid] = s(one(m, 2))
    return p


def check_common(p, name):
    expect(p['strings'][:1] == [''], f'{name}: string_table[0] is not ""')
    expect(p['sample_type'] == [('samples', 'count'), ('cpu', 'nanoseconds')],
           f'{name}: sample types {p["sample_type"]}')
    expect(p['period_type'] == ('cpu', 'nanoseconds'),
           f'{name}: period type {p["period_type"]}')
    for locs, values in p['samples']:
        expect(len(values) == 2, f'{name}: sample with {len(values)} values')
        expect(locs, f'{name}: sample without locations')
        for lid in locs:
            expect(lid in p['locations'], f'{name}: sample location {lid} missing')
    for lid, (mid, funcs) in p['locations'].items():
        expect(lid != 0, f'{name}: location id 0')
        expect(mid in p['mappings'], f'{name}: location {lid} mapping {mid} missing')
        expect(funcs, f'{name}: location {lid} without a line')
        for fid in funcs:
            expect(fid in p['functions'], f'{name}: location {lid} function {fid} '
                   'missing')
    for mid, (filename, has_functions) in p['mappings'].items():
        expect(filename, f'{name}: mapping {mid} has no file name')
        expect(has_functions == 1, f'{name}: mapping {mid} lacks has_functions')
    for build_id in p['build_ids']:
        expect(all(c in '0123456789abcdef' for c in build_id) and len(build_id) % 2 == 0,
               f'{name}: build id {build_id!r} is not hex')


def main():
    program, go = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        prof_path = os.path.join(tmp, 'out.pb.gz')
        json_path = os.path.join(tmp, 'out.json')
        empty_path = os.path.join(tmp, 'empty.pb.gz')
        proc = subprocess.run([program, prof_path, json_path, empty_path],
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
        expect(LOOP in names, f'{LOOP} not among the functions: {sorted(names)}')
        # Leaf first: the loop is the leaf of most of the CPU time.
        leaf_cpu = sum(v[1] for locs, v in p['samples'] if locs and
                       p['functions'][p['locations'][locs[0]][1][0]] == LOOP)
        expect(leaf_cpu * 2 > cpu, f'{LOOP} is the leaf of {leaf_cpu} of {cpu} ns')
        print(f'profile: {p["raw_size"]} bytes gzip\'d, {len(p["samples"])} samples, '
              f'{len(p["locations"])} locations, {cpu} ns of CPU')

        if go:
            top = subprocess.run([go, 'tool', 'pprof', '-top', prof_path],
                                 capture_output=True, text=True)
            print(top.stdout + top.stderr)
            expect(top.returncode == 0, f'go tool pprof exited with {top.returncode}')
            expect(LOOP in top.stdout, f'{LOOP} not in go tool pprof -top')
        else:
            print('go not found: go tool pprof not run')

    for msg in failures:
        print('FAIL:', msg)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
