#!/usr/bin/env python3
"""libprobe as a Meson subproject, both ways a parent project can use it: with the
wrap of docs/libprobe.wrap ([provide] dependency_names = probe), the README's plain
dependency('probe'); without a wrap, dependency('probe', fallback: [...]). Either
way the parent configures, registers only its own tests (none of libprobe's tests,
examples or benchmarks) and, the first way, builds and runs a program that uses it.

usage: test_subproject.py MESON SOURCE_ROOT WAY      (WAY: wrap or fallback)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

MESON, SRC, WAY = sys.argv[1:4]

PARENT = """project('parent', 'c', default_options: ['buildtype=plain'])
probe = dependency('probe'%s)
app = executable('app', 'app.c', dependencies: probe)
test('parent-app', app)
"""

APP = r"""#include <probe/probe.h>
#include <unistd.h>

int main(void)
{
    PROBE_SCOPE("parent_scope");
    return probe_report_fd(STDOUT_FILENO, "text") < 0;
}
"""

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def run(args, **kw):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=600, **kw)
    return p.returncode, p.stdout


def copy_source(dst):
    """The source tree, without build directories or git metadata."""
    def ignore(d, names):
        if os.path.abspath(d) == os.path.abspath(SRC):
            return [n for n in names if n.startswith('build') or n.startswith('.')]
        return []
    shutil.copytree(SRC, dst, ignore=ignore, symlinks=True)


def main():
    env = {k: v for k, v in os.environ.items() if not k.startswith('PROBE_')}
    # pkg-config must not find an installed libprobe: the subproject is what we test.
    env['PKG_CONFIG_LIBDIR'] = '/nonexistent'
    with tempfile.TemporaryDirectory() as tmp:
        parent = os.path.join(tmp, 'parent')
        os.makedirs(os.path.join(parent, 'subprojects'))
        copy_source(os.path.join(parent, 'subprojects', 'libprobe'))
        if WAY == 'wrap':
            shutil.copy(os.path.join(SRC, 'docs', 'libprobe.wrap'),
                        os.path.join(parent, 'subprojects', 'libprobe.wrap'))
            extra = ''
        else:
            extra = ", fallback: ['libprobe', 'probe_dep']"
        with open(os.path.join(parent, 'meson.build'), 'w') as f:
            f.write(PARENT % extra)
        with open(os.path.join(parent, 'app.c'), 'w') as f:
            f.write(APP)
        build = os.path.join(tmp, 'build')
        rc, out = run([MESON, 'setup', build, parent,
                       '-Dlibprobe:default_library=shared', '-Dlibprobe:libdw=disabled'],
                      env=env)
        if not check(rc == 0, 'meson setup (%s): %s' % (WAY, out[-3000:])):
            return
        rc, out = run([MESON, 'introspect', '--tests', build], env=env)
        names = [t['name'] for t in json.loads(out)] if rc == 0 else out
        check(names == ['parent-app'], 'the parent registers tests %r' % (names,))
        if WAY != 'wrap':
            return
        rc, out = run([MESON, 'compile', '-C', build, 'app'], env=env)
        if not check(rc == 0, 'meson compile app: %s' % out[-3000:]):
            return
        rc, out = run([os.path.join(build, 'app')], env=env)
        check(rc == 0 and 'parent_scope' in out, 'app: %d %r' % (rc, out[-2000:]))


if __name__ == '__main__':
    main()
    for f in failures:
        print('FAIL:', f)
    sys.exit(1 if failures else 0)
