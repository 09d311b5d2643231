#!/usr/bin/env python3
"""A program with samples only gets a callgrind profile of them, which
callgrind_annotate reads: the burning function holds most of the cost.

usage: check_samples_callgrind.py PROGRAM [CALLGRIND_ANNOTATE]
"""
import os
import re
import subprocess
import sys
import tempfile


def main():
    prog = sys.argv[1]
    annotate = sys.argv[2] if len(sys.argv) > 2 else ''
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'profile.callgrind')
        p = subprocess.run([prog, out], stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=120)
        if p.returncode == 77:
            return 77
        if p.returncode != 0:
            print('FAIL: %s exited %d: %s' % (prog, p.returncode, p.stderr))
            return 1
        text = open(out).read()
        m = re.search(r'^totals: (\d+)$', text, re.M)
        if not m or int(m.group(1)) == 0:
            print('FAIL: an empty profile:\n' + text[:2000])
            return 1
        total = int(m.group(1))
        if not annotate:
            print('callgrind_annotate not found: the file checks only')
            return 0 if 'fn=burn_samples_only' in text else 1
        p = subprocess.run([annotate, '--inclusive=yes', out], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True)
        if p.returncode != 0:
            print('FAIL: callgrind_annotate: %s' % p.stdout)
            return 1
        # "<cost> (<pct>%)  file:function" rows; the burner's inclusive share.
        for line in p.stdout.splitlines():
            m = re.match(r'^\s*([\d,]+)\s.*burn_samples_only', line)
            if m:
                cost = int(m.group(1).replace(',', ''))
                if cost * 2 < total:
                    print('FAIL: burn_samples_only %d of %d:\n%s' % (cost, total, p.stdout))
                    return 1
                return 0
        print('FAIL: callgrind_annotate shows no burn_samples_only:\n' + p.stdout)
        return 1


if __name__ == '__main__':
    sys.exit(main())
