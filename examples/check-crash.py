#!/usr/bin/env python3
"""Run the crash example: it must die by SIGSEGV after a dump naming its scopes.

Usage: check-crash.py CRASH
"""
import signal
import subprocess
import sys


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    proc = subprocess.run([argv[1]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=10)
    err = proc.stderr
    print(err)
    if proc.returncode != -signal.SIGSEGV:
        print('crash exited %r, expected death by SIGSEGV' % proc.returncode)
        return 1
    expected = ['Fatal error: Segmentation fault (SIGSEGV)',
                'Current thread ', '"loader" (most recent scope first):',
                '  scope parse_value at ', '  scope load_records at ',
                '(worker+', '"main":', '  scope main_loop at ']
    missing = [e for e in expected if e not in err]
    if missing:
        print('the dump lacks: %r' % missing)
        return 1
    if err.index('scope parse_value') > err.index('scope load_records'):
        print('scopes are not innermost first')
        return 1
    print('ok: died by SIGSEGV with a dump')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
