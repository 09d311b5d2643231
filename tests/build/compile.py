#!/usr/bin/env python3
"""Compile one source file to a throwaway object and report the compiler's verdict.

Usage: compile.py SOURCE -- COMPILER [ARGS...]

A test rather than a build target, so that a header regression it catches fails
one test instead of breaking the whole build.
"""
import os
import subprocess
import sys
import tempfile


def main(argv):
    if len(argv) < 4 or argv[2] != '--':
        print(__doc__, file=sys.stderr)
        return 2
    source, cmd = argv[1], argv[3:]
    with tempfile.TemporaryDirectory() as tmp:
        obj = os.path.join(tmp, 'out.o')
        full = cmd + ['-c', source, '-o', obj]
        print(' '.join(full))
        proc = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            print('FAIL: %s does not compile' % os.path.basename(source))
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
