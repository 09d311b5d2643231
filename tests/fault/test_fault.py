#!/usr/bin/env python3
"""Run fault-child in one mode and check its dump and how it ended.

Usage: test_fault.py FAULT_CHILD CASE

Each CASE is a function below; it exits 0 when the behaviour holds, 1 with an
explanation when not.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile

CHILD = None


def run(*args, env=None, timeout=10):
    full_env = dict(os.environ)
    full_env.pop('PROBE_FAULT', None)
    full_env.update(env or {})
    proc = subprocess.run([CHILD] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=full_env, timeout=timeout)
    return (proc.returncode, proc.stdout.decode('utf-8', 'replace'),
            proc.stderr.decode('utf-8', 'replace'))


class Failure(Exception):
    pass


def expect(cond, what, output=''):
    if not cond:
        raise Failure('%s\n--- output ---\n%s' % (what, output))


def expect_signal(rc, sig, output):
    expect(rc == -sig, 'expected death by %s, got return code %r'
           % (signal.Signals(sig).name, rc), output)


def thread_blocks(text):
    """Split a dump into {header line: [lines]} blocks, one per thread."""
    blocks = []
    for line in text.splitlines():
        if re.match(r'^(Current thread|Thread) \d+ ', line):
            blocks.append([line])
        elif blocks and line.startswith('  '):
            blocks[-1].append(line)
    return blocks


def current_block(text, output):
    blocks = [b for b in thread_blocks(text) if b[0].startswith('Current thread')]
    expect(len(blocks) == 1, 'expected exactly one current thread', output)
    return blocks[0]


def scopes(block):
    return [re.match(r'  scope (\S+)', l).group(1) for l in block
            if l.startswith('  scope ')]


def natives(block):
    return [l for l in block if l.startswith('  native: ')]


def check_worker_crash(text, output, all_threads=True):
    expect(text.startswith('Fatal error: Segmentation fault (SIGSEGV)\n'),
           'the dump does not start with the SIGSEGV header', output)
    expect('Fault address: 0x0\n' in text, 'no fault address 0x0', output)
    cur = current_block(text, output)
    expect(re.match(r'^Current thread \d+ "worker" \(most recent scope first\):$', cur[0]),
           'bad current thread line: %r' % cur[0], output)
    expect(scopes(cur) == ['inner_scope', 'outer_scope'],
           'scopes of the worker: %r' % scopes(cur), output)
    expect(re.search(r'  scope inner_scope at \S*fault-child\.c:\d+ in do_crash', text),
           'no file:line and function for inner_scope', output)
    nat = natives(cur)
    expect(nat and 'crash_here' in nat[0],
           'the first native frame is not crash_here', output)
    expect(any('worker' in l for l in nat), 'no worker() in the native frames', output)
    others = [b for b in thread_blocks(text) if b[0].startswith('Thread ')]
    if not all_threads:
        expect(not others, 'all_threads=0 printed other threads', output)
        return
    main = [b for b in others if '"main"' in b[0]]
    expect(len(main) == 1, 'the main thread is not listed', output)
    expect(scopes(main[0]) == ['main_wait'], 'main thread scopes: %r' % scopes(main[0]),
           output)
    expect(any('crash_in_worker' in l for l in natives(main[0])),
           'no crash_in_worker in the main thread\'s native frames', output)
    unknown = [b for b in others if 'not registered with libprobe' in b[0]]
    expect(len(unknown) == 1, 'the thread that never used libprobe is not listed', output)
    expect(any('bystander' in l for l in natives(unknown[0])),
           'no bystander() in the unregistered thread\'s frames', output)
    expect(text.index('Current thread') < text.index('\nThread '),
           'the current thread is not first', output)


# ---- cases -------------------------------------------------------------------------

def case_segv_thread():
    rc, out, err = run('segv-thread')
    check_worker_crash(err, err)
    expect_signal(rc, signal.SIGSEGV, err)


def case_traced():
    rc, out, err = run('traced')
    cur = current_block(err, err)
    expect(scopes(cur) == ['inner_scope', 'outer_scope'], 'scopes: %r' % scopes(cur), err)
    expect(any(l.startswith('  timeline, last 8 events, oldest first') for l in cur),
           'no timeline in the dump', err)
    lines = [l.strip() for l in cur if l.startswith('    -')]
    expect(all(l.split()[1] == 'us' for l in lines), 'times not in us: %r' % lines, err)
    kinds = [' '.join(l.split()[2:]) for l in lines]
    expect(kinds[-3:] == ['mark about_to_crash', 'enter outer_scope', 'enter inner_scope'],
           'last events: %r' % kinds, err)
    expect(kinds.count('leave traced_step') >= 2, 'events: %r' % kinds, err)
    expect_signal(rc, signal.SIGSEGV, err)


def case_recover():
    rc, out, err = run('recover')
    expect(rc == 0, 'exit status %r, want 0 (the app recovered both times)' % rc, err)
    expect(out == 'recovered 1\nrecovered 2\n', 'stdout: %r' % out, err)
    expect(err.startswith('Fatal error: Segmentation fault (SIGSEGV)\n'), 'no SIGSEGV dump', err)
    expect('Fatal error: Floating-point exception (SIGFPE)' in err, 'no SIGFPE dump', err)


def case_one_thread():
    rc, out, err = run('one-thread')
    check_worker_crash(err, err, all_threads=False)
    expect_signal(rc, signal.SIGSEGV, err)


def case_file():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'dump.txt')
        rc, out, err = run('file', path)
        with open(path) as f:
            text = f.read()
    check_worker_crash(text, text + err)
    expect('Fatal error' not in err, 'the dump also went to stderr', err)
    expect_signal(rc, signal.SIGSEGV, err)


def case_fpe():
    rc, out, err = run('fpe')
    expect(err.startswith('Fatal error: Floating-point exception (SIGFPE)\n'),
           'no SIGFPE header', err)
    cur = current_block(err, err)
    expect(scopes(cur) == ['dividing'], 'scopes: %r' % scopes(cur), err)
    expect('divide_here' in natives(cur)[0], 'the first frame is not divide_here', err)
    expect_signal(rc, signal.SIGFPE, err)


def case_abort():
    rc, out, err = run('abort')
    expect(err.startswith('Fatal error: Aborted (SIGABRT)\n'), 'no SIGABRT header', err)
    cur = current_block(err, err)
    expect(scopes(cur) == ['aborting'], 'scopes: %r' % scopes(cur), err)
    expect(any('(abort+' in l for l in natives(cur)), 'no abort() frame', err)
    expect(any('(main+' in l for l in natives(cur)), 'no main() frame', err)
    expect_signal(rc, signal.SIGABRT, err)


def check_overflow(rc, err, thread):
    expect(err.startswith('Fatal error: Segmentation fault (SIGSEGV)\n'),
           'no SIGSEGV header for the stack overflow', err)
    cur = current_block(err, err)
    expect('"%s"' % thread in cur[0], 'the current thread is not %s' % thread, err)
    expect(re.search(r'  \.\.\. \d+ more recent scopes beyond the depth limit', err),
           'the scopes beyond the depth limit are not mentioned', err)
    expect(scopes(cur)[:3] == ['recursion'] * 3, 'no recursion scopes', err)
    expect(sum('recurse_here' in l for l in natives(cur)) > 10,
           'recurse_here is not in the native frames', err)
    expect_signal(rc, signal.SIGSEGV, err)


def case_overflow():
    rc, out, err = run('overflow')
    check_overflow(rc, err, 'main')


def case_overflow_thread():
    rc, out, err = run('overflow-thread')
    check_overflow(rc, err, 'worker')


def case_overflow_late():
    # Its first use of libprobe (probe_thread_name) gave it an alternate stack.
    rc, out, err = run('overflow-late')
    check_overflow(rc, err, 'worker')


def case_overflow_main():
    rc, out, err = run('overflow-main')
    check_overflow(rc, err, 'main')


def case_disabled():
    rc, out, err = run('disabled')
    expect('Fatal error' not in err and 'scope' not in err, 'a dump after disable', err)
    expect_signal(rc, signal.SIGSEGV, err)


def case_closed_fd():
    rc, out, err = run('closed-fd')
    expect_signal(rc, signal.SIGSEGV, err)


def case_closed_pipe():
    rc, out, err = run('closed-pipe')
    expect_signal(rc, signal.SIGSEGV, err)


def case_double_fault():
    # The dumper faults on a corrupt site name: the process must die by SIGSEGV
    # (the second fault), not loop and not hang.
    rc, out, err = run('double-fault', timeout=5)
    expect(err.startswith('Fatal error: Segmentation fault (SIGSEGV)\n'), 'no header', err)
    expect_signal(rc, signal.SIGSEGV, err)


def case_env():
    rc, out, err = run('env', env={'PROBE_FAULT': '1'})
    expect(err.startswith('Fatal error: Segmentation fault (SIGSEGV)\n'), 'no dump', err)
    cur = current_block(err, err)
    expect(scopes(cur) == ['inner_scope', 'outer_scope'], 'scopes: %r' % scopes(cur), err)
    expect_signal(rc, signal.SIGSEGV, err)


def case_dump():
    rc, out, err = run('dump')
    expect(rc == 0, 'exit %r' % rc, out + err)
    expect(out.startswith('Dump requested\n'), 'no header', out)
    cur = current_block(out, out)
    expect(scopes(cur) == ['dumping'], 'current scopes %r' % scopes(cur), out)
    expect('main' in natives(cur)[0], 'the first frame is not main', out)
    blocks = thread_blocks(out)
    waiter = [b for b in blocks if '"waiter"' in b[0]]
    expect(len(waiter) == 1 and scopes(waiter[0]) == ['waiter_inner', 'waiter_outer'],
           'the waiter thread and its scopes', out)
    expect(any('waiter' in l for l in natives(waiter[0])), 'no waiter() frame', out)
    deaf = [b for b in blocks if '"deaf"' in b[0]]
    expect(len(deaf) == 1 and scopes(deaf[0]) == ['deaf_wait'], 'the deaf thread', out)
    expect(natives(deaf[0]) == ['  native: (the thread did not answer within 100 ms)'],
           'the deaf thread is not reported as silent', out)
    expect(any('bystander' in l for b in blocks if 'not registered' in b[0]
               for l in natives(b)), 'no unregistered bystander thread', out)
    expect(out.endswith('after dump\n'), 'the program did not go on', out)


def case_usr1():
    rc, out, err = run('usr1')
    expect(rc == 0, 'exit %r' % rc, out + err)
    expect(out.startswith('Dump requested: SIGUSR1\n'), 'no header', out)
    expect(any(scopes(b) == ['waiter_inner', 'waiter_outer'] for b in thread_blocks(out)),
           'the waiter thread is not in the dump', out)
    expect('still running; previous handler ran: no' in out,
           'without chain, the previous handler must not run', out)


def case_usr1_chain():
    rc, out, err = run('usr1-chain')
    expect(rc == 0, 'exit %r' % rc, out + err)
    expect(out.startswith('Dump requested: SIGUSR1\n'), 'no header', out)
    expect('still running; previous handler ran: yes' in out,
           'with chain, the previous handler must run', out)


def case_rt_chain():
    rc, out, err = run('rt-chain')
    expect(rc == 0, 'exit %r' % rc, out + err)
    expect(out.startswith('Dump requested\n'), 'no dump header', out)
    expect(re.search(r'^Thread \d+ "waiter":$', out, re.M),
           'the other thread is not in the dump', out)
    expect('previous handler ran before: no' in out,
           'a request of the dumper went to the previous handler', out)
    expect('previous handler ran after: yes' in out,
           'the reserved signal\'s previous handler did not run', out)


def case_usr1_chain_default():
    rc, out, err = run('usr1-chain-default')
    expect(out.startswith('Dump requested: SIGUSR1\n'), 'no header', out)
    expect('still running' not in out, 'the default action did not end it', out)
    expect_signal(rc, signal.SIGUSR1, out + err)


def case_watchdog():
    rc, out, err = run('watchdog')
    expect(rc == 0, 'exit %r' % rc, out + err)
    expect(out.count('Timeout: no progress for 0.2 s\n') == 1, 'one dump expected', out)
    expect(out.startswith('Timeout: no progress for 0.2 s\n'), 'header', out)
    expect('Current thread' not in out, 'the watchdog dumped itself', out)
    main = [b for b in thread_blocks(out) if '"main"' in b[0]]
    expect(len(main) == 1 and scopes(main[0]) == ['stuck_here'], 'main and its scope', out)
    expect(any('sleep_s' in l for l in natives(main[0])), 'main\'s native frames', out)
    expect(out.endswith('done\n'), 'the program did not go on', out)


def case_watchdog_repeat():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'dumps.txt')
        rc, out, err = run('watchdog-repeat', path, '3')
        with open(path) as f:
            text = f.read()
    expect(rc == 0, 'exit %r' % rc, out + err + text)
    expect(out == 'dumps: 3\n', 'expected 3 dumps before the cancel: %r' % out, text)
    expect(text.count('Timeout: no progress for 0.05 s\n') == 3, 'dumps in the file', text)
    expect(text.count('scope busy_loop') == 3, 'the scope in every dump', text)


def case_watchdog_exit():
    rc, out, err = run('watchdog-exit')
    expect(rc == 1, 'expected exit 1, got %r' % rc, out + err)
    expect(out.startswith('Timeout: no progress for 0.1 s\n'), 'header', out)
    expect('scope stuck_forever' in out, 'the scope', out)
    expect('not reached' not in out, 'it went on', out)


def case_watchdog_cancel():
    # The watchdog's deadlines are wall time: a child stalled past a timeout between
    # two armings (a loaded machine stops it for that long) is rightly dumped. The
    # child says when it was; such a run proves nothing and is run again, up to 5
    # times. A dump in a run with no stall is a failure.
    for attempt in range(5):
        rc, out, err = run('watchdog-cancel')
        expect(rc == 0, 'exit %r' % rc, out + err)
        expect(out.endswith('no dump\n'), 'did not finish', out + err)
        if 'Timeout:' not in out:
            return
        expect('stalled' in out, 'a dump after cancel or while re-arming', out)
        print('attempt %d: the child was stalled and dumped; again' % (attempt + 1))
    raise Failure('the child was stalled past the timeout in 5 attempts')


def case_errors():
    rc, out, err = run('errors')
    expect(rc == 0 and out == 'errors ok\n', 'exit %r' % rc, out + err)


def main(argv):
    global CHILD
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    CHILD = argv[1]
    try:
        globals()['case_' + argv[2]]()
    except Failure as e:
        print('FAIL %s: %s' % (argv[2], e))
        return 1
    print('ok: %s' % argv[2])
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
