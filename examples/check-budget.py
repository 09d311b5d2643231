#!/usr/bin/env python3
"""Run examples/check_budget (natively, or under callgrind) and check what its
budgets measured, through a baseline file: a first run records the figures, a run
against a baseline edited to a lower figure fails with a message that explains it.

Usage: check-budget.py EXAMPLE native
       check-budget.py EXAMPLE callgrind VALGRIND
"""
import os
import re
import subprocess
import sys
import tempfile


def run(cmd, env):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=600)
    return p.returncode, p.stdout


def main():
    exe, mode = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        baseline = os.path.join(tmp, 'budgets.txt')
        env['PROBE_BUDGET_BASELINE'] = baseline
        env.pop('PROBE_BUDGET_SOFT_LIMIT', None)
        cmd = [exe]
        if mode == 'callgrind':
            # The recipe of docs/budgets.md, with the dumps kept in a scratch directory.
            out = os.path.join(tmp, 'callgrind.out.%p')
            cmd = [sys.argv[3], '-q', '--tool=callgrind', '--callgrind-out-file=' + out, exe]
            env['PROBE_CALLGRIND_OUT_FILE'] = out
            measure = 'instructions/callgrind'
        else:
            measure = 'cpu_ns'

        rc, text = run(cmd, env)
        if rc != 0:
            sys.exit(f'first run failed ({rc}):\n{text}')
        lines = open(baseline).read()
        m = re.search(r'^parse_config\t' + re.escape(measure) + r'\t-\t(\d+)\t1$', lines, re.M)
        if not m:
            sys.exit(f'no {measure} figure recorded:\n{lines}')
        if not re.search(r'^parse_config\tself_ns[^\t]*\tparse_line\t\d+\t64$', lines, re.M):
            sys.exit(f'no parse_line scope recorded:\n{lines}')
        if mode == 'callgrind' and '\tcpu_ns\t' in lines:
            sys.exit(f'CPU time recorded under Valgrind:\n{lines}')
        value = int(m.group(1))

        # A lower baseline: the budget fails and says why. Instruction counts are
        # exact (20 % lower is enough); CPU time varies up to 2x on a loaded machine.
        low = value * 10 // 12 if mode == 'callgrind' else value // 4
        edited = lines.replace(m.group(0), m.group(0).replace(f'\t{value}\t', f'\t{low}\t'))
        open(baseline, 'w').write(edited)
        rc, text = run(cmd, env)
        if rc == 0:
            sys.exit(f'run against a lower baseline passed:\n{text}')
        unit = 'instructions' if mode == 'callgrind' else 'CPU'
        want = [f'parse_config: ', f' {unit} > baseline ', 'scopes by growth against the baseline',
                '    parse_line: ']
        if mode == 'callgrind':
            want.append(', callgrind, exact, 3 runs; baseline ')
        for w in want:
            if w not in text:
                sys.exit(f'"{w}" not in the failure:\n{text}')
        print(text)


if __name__ == '__main__':
    main()
