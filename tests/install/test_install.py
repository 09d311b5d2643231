#!/usr/bin/env python3
"""Install into a temporary directory (meson install --destdir) and use it from
there, with no LD_LIBRARY_PATH: the probe command finds its libprobe.so.0, the docs
are in share/doc/probe and `man probe` finds its page.

usage: test_install.py MESON BUILD_DIR PREFIX BINDIR DATADIR MANDIR
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

MESON, BUILD, PREFIX, BINDIR, DATADIR, MANDIR = sys.argv[1:7]

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def under(root, *parts):
    """@parts joined under @root; absolute parts rooted there too."""
    path = PREFIX
    for p in parts:
        path = os.path.join(path, p)
    return os.path.join(root, path.lstrip('/'))


def main():
    env = {k: v for k, v in os.environ.items()
           if k not in ('LD_LIBRARY_PATH', 'LD_PRELOAD') and not k.startswith('PROBE_')}
    with tempfile.TemporaryDirectory() as root:
        p = subprocess.run([MESON, 'install', '-C', BUILD, '--no-rebuild', '--quiet',
                            '--destdir', root], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True)
        if not check(p.returncode == 0, 'meson install: %s' % p.stdout):
            return
        probe = under(root, BINDIR, 'probe')
        p = subprocess.run([probe, '--version'], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True)
        check(p.returncode == 0 and 'probe (libprobe)' in p.stdout,
              'installed probe --version: %d %r' % (p.returncode, p.stdout))
        out = os.path.join(root, 'time.json')
        p = subprocess.run([probe, 'time', '-f', 'json', '-o', out, '--', 'true'],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
        check(p.returncode == 0 and os.path.exists(out),
              'installed probe time: %d %r' % (p.returncode, p.stdout))
        # probe run preloads the libprobe.so the command itself loaded: the installed one.
        out = os.path.join(root, 'run.json')
        p = subprocess.run([probe, 'run', '-f', 'json', '-o', out, '--', 'true'],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
        check(p.returncode == 0 and os.path.exists(out),
              'installed probe run: %d %r' % (p.returncode, p.stdout))

        docs = under(root, DATADIR, 'doc', 'probe')
        for name in ('README.md', 'probe-command.md', 'environment.md', 'formats.md',
                     'json-schema.md'):
            check(os.path.isfile(os.path.join(docs, name)), 'no %s in %s' % (name, docs))
        man1 = under(root, MANDIR, 'man1')
        for page in ('probe', 'probe-run', 'probe-time'):
            found = glob.glob(os.path.join(man1, page + '.1*'))
            if not check(found, 'no man page %s in %s' % (page, man1)):
                continue
            man = shutil.which('man')
            if man:
                p = subprocess.run([man, '-P', 'cat', page],
                                   env=dict(env, MANPATH=under(root, MANDIR),
                                            MANWIDTH='80'),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   universal_newlines=True)
                check(p.returncode == 0 and 'NAME' in p.stdout and page in p.stdout,
                      'man %s: %d %r' % (page, p.returncode, p.stdout[:300]))


if __name__ == '__main__':
    main()
    for f in failures:
        print('FAIL:', f)
    sys.exit(1 if failures else 0)
