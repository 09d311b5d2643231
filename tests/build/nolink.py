#!/usr/bin/env python3
"""Compiled out, a program needs no libprobe at all: with -DPROBE_DISABLE, the
README's usage program, every example and a program that takes the address of every
public function in include/probe/*.h build and link without -lprobe, warning-free.

Usage: nolink.py SOURCE_ROOT -- COMPILER [ARGS...]
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

FLAGS = ['-DPROBE_DISABLE', '-Wall', '-Wextra', '-Werror', '-pthread']


def readme_program(root):
    """The first C block of the README: its usage program."""
    with open(os.path.join(root, 'README.md')) as f:
        m = re.search(r'```c\n(.*?)```', f.read(), re.S)
    return m.group(1)


def public_functions(root):
    """Every probe_* (not probe__*) function a public header declares."""
    names = []
    for h in sorted(glob.glob(os.path.join(root, 'include', 'probe', '*.h'))):
        with open(h) as f:
            text = f.read()
        for m in re.finditer(r'PROBE_EXPORT\s+[^;(]*?\b(probe_[a-z0-9]\w*)\s*\(', text):
            names.append((os.path.basename(h), m.group(1)))
    return names


def every_function(root):
    names = public_functions(root)
    headers = sorted({h for h, _ in names})
    src = ''.join('#include <probe/%s>\n' % h for h in headers if h != 'check.h')
    src += '#include <stdio.h>\n\nint\nmain(void)\n{\n'
    src += ''.join('    printf("%%p\\n", (void *)(size_t)&%s);\n' % n for _, n in names)
    src += ('    return probe_start() != PROBE_EDISABLED || probe_is_recording() != 0 ||\n'
            '           probe_report_fd(1, "text") != PROBE_EDISABLED;\n}\n')
    return src, len(names)


def build(cmd, source, exe, extra, failures, run=False):
    full = cmd + FLAGS + [source, '-o', exe] + extra
    p = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    if p.returncode != 0:
        failures.append('%s does not build without -lprobe:\n%s\n%s' %
                        (os.path.basename(source), ' '.join(full), p.stdout))
        return
    nm = shutil.which('nm')
    if nm:
        und = subprocess.run([nm, '-u', exe], stdout=subprocess.PIPE,
                             universal_newlines=True).stdout
        probe = [l.split()[-1] for l in und.splitlines() if 'probe' in l]
        if probe:
            failures.append('%s refers to %s' % (os.path.basename(source), probe))
    if run:
        r = subprocess.run([exe], stdout=subprocess.DEVNULL, timeout=60)
        if r.returncode != 0:
            failures.append('%s exits with %d' % (os.path.basename(source), r.returncode))


def main(argv):
    if len(argv) < 4 or argv[2] != '--':
        print(__doc__, file=sys.stderr)
        return 2
    root = argv[1]
    cmd = argv[3:] + ['-I' + os.path.join(root, 'include')]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        readme = os.path.join(tmp, 'readme.c')
        with open(readme, 'w') as f:
            f.write(readme_program(root))
        build(cmd, readme, os.path.join(tmp, 'readme'), [], failures)

        src, n = every_function(root)
        every = os.path.join(tmp, 'every.c')
        with open(every, 'w') as f:
            f.write(src)
        print('%d public functions' % n)
        build(cmd, every, os.path.join(tmp, 'every'), [], failures, run=True)

        check = []
        pc = shutil.which('pkg-config')
        if pc:
            p = subprocess.run([pc, '--cflags', '--libs', 'check'], stdout=subprocess.PIPE,
                               universal_newlines=True)
            check = p.stdout.split() if p.returncode == 0 else []
        for ex in sorted(glob.glob(os.path.join(root, 'examples', '*.c'))):
            with open(ex) as f:
                uses_check = '<check.h>' in f.read()
            if uses_check and not check:
                print('SKIP %s: no pkg-config check' % os.path.basename(ex))
                continue
            build(cmd, ex, os.path.join(tmp, 'ex'), check if uses_check else [], failures)
    for f in failures:
        print('FAIL:', f)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
