#!/usr/bin/env python3
"""Run stack-child in one mode and check the dump and how the process ended.

Usage: test_stack.py STACK_CHILD CASE [SLOW_CTOR_LIBRARY]

The dumper's native frames come from libprobe's own unwinder and symbol tables:
static functions of a program linked without -rdynamic are named, with file:line
when libprobe has libdw and the program has -g; blocked threads are read without a
signal; a fatal dump stops every thread so the process dies by its signal.
"""
import os
import re
import signal
import subprocess
import sys
import time

CHILD = None
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'stack-child.c')


class Failure(Exception):
    pass


def expect(cond, what, output=''):
    if not cond:
        raise Failure('%s\n--- output ---\n%s' % (what, output))


def run(*args, timeout=30):
    env = dict(os.environ)
    env.pop('PROBE_FAULT', None)
    t0 = time.monotonic()
    proc = subprocess.run([CHILD] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, timeout=timeout)
    return (proc.returncode, proc.stdout.decode('utf-8', 'replace'),
            proc.stderr.decode('utf-8', 'replace'), time.monotonic() - t0)


def blocks(text):
    out = []
    for line in text.splitlines():
        if re.match(r'^(Current thread|Thread) \d+ ', line):
            out.append([line])
        elif out and line.startswith('  '):
            out[-1].append(line)
    return out


def natives(block):
    return [l for l in block if re.match(r'  native: #\d+ ', l)]


def current(text):
    cur = [b for b in blocks(text) if b[0].startswith('Current thread')]
    expect(len(cur) == 1, 'expected one current thread', text)
    return cur[0]


def marked_line(mark):
    with open(SOURCE) as f:
        for i, line in enumerate(f, 1):
            if 'MARK: ' + mark in line:
                return i
    raise Failure('no mark %r in %s' % (mark, SOURCE))


def has_lines():
    return os.environ.get('PROBE_TEST_LIBDW') == '1'


def check_dead_by(rc, sig, out):
    expect(rc == -sig, 'expected death by %s, got %r' % (signal.Signals(sig).name, rc), out)


def case_static_crash():
    rc, out, err, _ = run('static-crash')
    check_dead_by(rc, signal.SIGSEGV, err)
    cur = current(err)
    expect('"crasher"' in cur[0], 'the crashing thread', err)
    nat = natives(cur)
    expect(len(nat) >= 3, 'too few native frames', err)
    expect('(crash_static+0x' in nat[0], 'frame 0 is not crash_static+offset', err)
    expect('(outer_static+0x' in nat[1], 'frame 1 is not outer_static+offset', err)
    expect(any('(static_worker+0x' in l for l in nat[2:4]), 'no static_worker frame', err)
    if has_lines():
        expect(nat[0].endswith('stack-child.c:%d' % marked_line('crash line')),
               'frame 0 has not the crash line', err)
        expect(nat[1].endswith('stack-child.c:%d' % marked_line('call line')),
               'frame 1 has not the call line', err)


def case_crash_while_sleeping():
    rc, out, err, _ = run('crash-while-sleeping')
    check_dead_by(rc, signal.SIGSEGV, out + err)
    expect('main returned' not in out, 'main returned during the dump', out + err)
    bl = blocks(err)
    # main, the crasher and three nappers: every one dumped, each with its frames.
    expect(len(bl) == 5, 'expected 5 threads in the dump, got %d' % len(bl), err)
    for b in bl:
        expect(natives(b), 'a thread without native frames: %s' % b[0], err)
    main = [b for b in bl if '"main"' in b[0]]
    expect(main and 'scope main_sleeps' in '\n'.join(main[0]), 'main and its scope', err)


def case_loader_crash():
    rc, out, err, took = run('loader-crash', SLOW_LIB)
    check_dead_by(rc, signal.SIGSEGV, err)
    expect(took < 15, 'the dump waited for the loader (%.1f s)' % took, err)
    cur = current(err)
    expect(any('(outer_static+0x' in l for l in natives(cur)), 'the crash frames', err)
    expect(len(blocks(err)) >= 2, 'the thread inside dlopen is not dumped', err)
    # The library is being loaded: not in the tables read at enable, named from the
    # maps as file(+offset).
    # (The library has no frame pointers and its unwind table was not read: its
    # frame is the last one found.)
    expect(any('libslow-ctor.so(+0x' in l for b in blocks(err) for l in natives(b)),
           'no frame of the library being loaded', err)


def case_malloc_crash():
    rc, out, err, took = run('malloc-crash')
    check_dead_by(rc, signal.SIGABRT, err)
    expect('Fatal error: Aborted (SIGABRT)\n' in err, 'header', err)
    cur = current(err)
    expect(any('(abort+0x' in l for l in natives(cur)), 'no abort frame', err)
    expect(len(blocks(err)) == 2, 'not every thread dumped', err)


def case_watchdog_sleep():
    rc, out, err, _ = run('watchdog-sleep')
    expect(rc == 0, 'exit %r' % rc, out + err)
    dumps = out.count('Timeout: no progress for 0.3 s\n')
    expect(dumps >= 3, 'expected at least 3 dumps, got %d' % dumps, out)
    m = re.search(r'usleep rc (-?\d+) errno (\d+) slept ([\d.]+)', out)
    expect(m and m.group(1) == '0', 'usleep was interrupted', out)
    expect(float(m.group(3)) >= 1.1, 'usleep was cut short: %s s' % m.group(3), out)
    main = [b for b in blocks(out) if '"main"' in b[0]]
    expect(len(main) == dumps and all('scope long_nap' in '\n'.join(b) for b in main),
           'main and its scope in every dump', out)
    expect(all('read without a signal' in '\n'.join(b) for b in main),
           'main was signalled', out)


def case_watchdog_exit_sleep():
    rc, out, err, took = run('watchdog-exit-sleep')
    expect(rc == 1, 'expected exit 1 after the dump, got %r' % rc, out + err)
    expect(out.startswith('Timeout: no progress for 0.2 s\n'), 'header', out)
    expect('scope asleep' in out, 'the scope', out)
    expect('main returned' not in out, 'main returned first', out)


def case_usr1_undisturbed():
    rc, out, err, _ = run('usr1-undisturbed')
    expect(rc == 0, 'exit %r' % rc, out + err)
    expect(out.count('Dump requested: SIGUSR1\n') == 3, 'three dumps', out)
    m = re.search(r'nanosleep rc (-?\d+) errno (\d+) slept ([\d.]+)', out)
    expect(m and m.group(1) == '0', 'nanosleep returned early (EINTR)', out)
    expect(float(m.group(3)) >= 1.0, 'nanosleep was cut short', out)
    expect('read got 1 errno 0' in out, 'read was interrupted', out)
    expect('cond wakeups 1\n' in out, 'pthread_cond_wait woke early', out)


def main(argv):
    global CHILD, SLOW_LIB
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    CHILD = argv[1]
    SLOW_LIB = argv[3] if len(argv) > 3 else None
    try:
        globals()['case_' + argv[2]]()
    except Failure as e:
        print('FAIL %s: %s' % (argv[2], e))
        return 1
    print('ok: %s' % argv[2])
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
