#!/usr/bin/env python3
"""Integration tests of `probe time`: run the real command on real processes.

usage: test_time.py PROBE TIME_CHILD VERSION CASE

PROBE is the probe executable, TIME_CHILD the helper built beside this script
(time-child.c), VERSION the project's version, CASE one of the functions below named
case_*. Exits 0 when every check passes, 1 with a message per failure.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile

PROBE, CHILD, VERSION, CASE = sys.argv[1:5]

MS = 1000 * 1000
MIB = 1024 * 1024
FIELDS = ['wall_ns', 'user_ns', 'system_ns', 'max_rss_bytes', 'minor_faults',
          'major_faults', 'voluntary_switches', 'involuntary_switches', 'block_in',
          'block_out']

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def run(args, **kwargs):
    """Run probe with @args; @return (exit status, stdout, stderr) as text."""
    kwargs.setdefault('timeout', 20)
    p = subprocess.run([PROBE] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       **kwargs)
    return (p.returncode, p.stdout.decode('utf-8', 'replace'),
            p.stderr.decode('utf-8', 'replace'))


def parse_json(text, what):
    """The one JSON object of a report, checked for its schema and field types."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        failures.append('%s: not JSON (%s): %r' % (what, e, text))
        return None
    check(doc.get('schema') == 'probe-time/1', '%s: schema is %r' % (what, doc.get('schema')))
    check(isinstance(doc.get('command'), list)
          and all(isinstance(a, str) for a in doc['command']),
          '%s: command is not a list of strings: %r' % (what, doc.get('command')))
    for name in ['exit_status'] + FIELDS:
        v = doc.get(name)
        check(type(v) is int and v >= 0, '%s: %s is %r, not an integer >= 0' % (what, name, v))
    check('signal' in doc and (doc['signal'] is None or type(doc['signal']) in (str, int)),
          '%s: signal is %r' % (what, doc.get('signal')))
    expected = set(['schema', 'command', 'exit_status', 'signal'] + FIELDS)
    check(set(doc) == expected, '%s: members %s' % (what, sorted(set(doc) ^ expected)))
    return doc


def case_exit_status():
    rc, out, err = run(['time', '--', 'sh', '-c', 'echo out; exit 3'])
    check(rc == 3, 'exit 3: probe time exited %d' % rc)
    check(out == 'out\n', "the command's stdout is its own: %r" % out)
    check("Command: sh -c 'echo out; exit 3'\n" in err, 'text report names the command:\n' + err)
    check('Exit status: 3\n' in err, 'text report gives the exit status:\n' + err)
    check('signal' not in err.lower(), 'text report names no signal:\n' + err)

    rc, out, err = run(['time', '-f', 'json', '--', 'sh', '-c', 'exit 3'])
    check(rc == 3, 'exit 3, json: probe time exited %d' % rc)
    doc = parse_json(err, 'exit 3')
    if doc:
        check(doc['exit_status'] == 3, 'exit_status is %r' % doc['exit_status'])
        check(doc['signal'] is None, 'signal is %r' % doc['signal'])
        check(doc['command'] == ['sh', '-c', 'exit 3'], 'command is %r' % doc['command'])

    # No '--': options end at the command, whose own options stay its own.
    rc, out, err = run(['time', 'sh', '-c', 'exit 4', '-f'])
    check(rc == 4, "without '--': probe time exited %d: %s" % (rc, err))


def case_signal():
    rc, out, err = run(['time', '--', 'sh', '-c', 'kill -KILL $$'])
    check(rc == 128 + 9, 'SIGKILL: probe time exited %d, not 137' % rc)
    check('Killed by signal: SIGKILL (9)\n' in err, 'text report names the signal:\n' + err)
    check('Exit status: 137\n' in err, 'text report gives 137:\n' + err)

    rc, out, err = run(['time', '-f', 'json', '--', 'sh', '-c', 'kill -KILL $$'])
    check(rc == 137, 'SIGKILL, json: probe time exited %d' % rc)
    doc = parse_json(err, 'SIGKILL')
    if doc:
        check(doc['signal'] == 'SIGKILL', 'signal is %r' % doc['signal'])
        check(doc['exit_status'] == 137, 'exit_status is %r' % doc['exit_status'])


def case_json_fields():
    rc, out, err = run(['time', '--format=json', '--', CHILD, 'spin', '0'])
    check(rc == 0, 'spin 0: probe time exited %d: %s' % (rc, err))
    doc = parse_json(err, 'spin 0')
    if doc:
        check(doc['max_rss_bytes'] > 0, 'max_rss_bytes is %d' % doc['max_rss_bytes'])
        check(doc['max_rss_bytes'] % 1024 == 0, 'max_rss_bytes %d is not whole KiB'
              % doc['max_rss_bytes'])
        check(doc['wall_ns'] > 0, 'wall_ns is %d' % doc['wall_ns'])
        check(doc['minor_faults'] > 0, 'minor_faults is %d' % doc['minor_faults'])
        check(doc['command'] == [CHILD, 'spin', '0'], 'command is %r' % doc['command'])
        check(err.endswith('}\n') and err.count('\n') == 1, 'one line: %r' % err)


def case_json_strings():
    # Any bytes in the command line: control characters escaped, invalid UTF-8 as
    # U+FFFD, valid UTF-8 kept.
    odd = b'q"\\ \n\t\x01\x1f \xff \xc3\xa9 \xed\xa0\x80 \xe2\x80\xa8 \xf0\x9f\x98\x80'
    args = [PROBE.encode(), b'time', b'-f', b'json', b'--', b'sh', b'-c', b'exit 0', odd]
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    check(p.returncode == 0, 'odd argv: probe time exited %d' % p.returncode)
    try:
        text = p.stderr.decode('utf-8')       # strict: the report is valid UTF-8
    except UnicodeDecodeError as e:
        failures.append('report is not UTF-8: %s: %r' % (e, p.stderr))
        return
    check('\n' not in text[:-1], 'a raw newline in the report: %r' % text)
    check('\u2028' not in text, 'a raw U+2028 in the report: %r' % text)
    doc = parse_json(text, 'odd argv')
    want = 'q"\\ \n\t\x01\x1f \ufffd \u00e9 \ufffd\ufffd\ufffd \u2028 \U0001F600'
    if doc:
        check(doc['command'][-1] == want, 'odd argument came back as %r' % doc['command'][-1])

    # The text report quotes it for a shell instead.
    rc, out, err = run(['time', '--', 'sh', '-c', 'exit 0', "it's", 'a\tb', ''])
    check("Command: sh -c 'exit 0' 'it'\\''s' $'a\\x09b' ''\n" in err,
          'text report quotes the command:\n' + err)


def case_cpu():
    rc, out, err = run(['time', '-f', 'json', '--', CHILD, 'spin', '200'])
    check(rc == 0, 'spin 200: probe time exited %d: %s' % (rc, err))
    doc = parse_json(err, 'spin 200')
    if not doc:
        return
    user, system, wall = doc['user_ns'], doc['system_ns'], doc['wall_ns']
    check(user >= 100 * MS, 'user_ns %d < 100 ms for 200 ms of spinning' % user)
    # The child burns 200 ms of CPU by its own clock, which rusage reads too.
    check(user + system >= 190 * MS, 'user_ns + system_ns = %d < 190 ms' % (user + system))
    # One thread cannot use more CPU than the time it ran (slack: tick accounting).
    check(user + system <= wall + 50 * MS,
          'user_ns + system_ns = %d > wall_ns %d' % (user + system, wall))
    check(wall >= 200 * MS, 'wall_ns %d < 200 ms' % wall)


def case_rss():
    rc, out, err = run(['time', '-f', 'json', '--', CHILD, 'touch', '64'])
    check(rc == 0, 'touch 64: probe time exited %d: %s' % (rc, err))
    doc = parse_json(err, 'touch 64')
    if doc:
        check(doc['max_rss_bytes'] >= 64 * MIB,
              'max_rss_bytes %d < 64 MiB after touching 64 MiB' % doc['max_rss_bytes'])
        check(doc['minor_faults'] >= 64 * MIB // os.sysconf('SC_PAGESIZE') // 2,
              'minor_faults %d for 64 MiB of fresh pages' % doc['minor_faults'])


def case_output_file():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'report.json')
        with open(path, 'w') as f:
            f.write('x' * 100000)             # truncated, not overwritten in place
        rc, out, err = run(['time', '-f', 'json', '-o', path, '--', 'sh', '-c', 'exit 7'])
        check(rc == 7, '-o: probe time exited %d: %s' % (rc, err))
        check(err == '', '-o: nothing on stderr: %r' % err)
        with open(path) as f:
            doc = parse_json(f.read(), '-o file')
        if doc:
            check(doc['exit_status'] == 7, '-o: exit_status is %r' % doc['exit_status'])

        # Created with mode 0644 (umask 0 so it is not masked), in text by default.
        path = os.path.join(d, 'report.txt')
        old = os.umask(0)
        try:
            rc, out, err = run(['time', '--output', path, 'true'])
        finally:
            os.umask(old)
        check(rc == 0 and err == '', '-o text: exited %d: %r' % (rc, err))
        mode = stat.S_IMODE(os.stat(path).st_mode)
        check(mode == 0o644, '-o: mode %o, not 644' % mode)
        with open(path) as f:
            text = f.read()
        check('Command: true\nExit status: 0\n' in text, '-o text report:\n' + text)

        # The report's descriptor is not inherited by the command.
        rc, out, err = run(['time', '-o', path, '--', 'sh', '-c',
                            'ls -l /proc/self/fd/ >&2'])
        check('report.txt' not in err, '-o: the command inherited the report file:\n'
              + err)


def case_output_symlink():
    with tempfile.TemporaryDirectory() as d:
        target = os.path.join(d, 'target')
        link = os.path.join(d, 'link')
        marker = os.path.join(d, 'ran')
        with open(target, 'w') as f:
            f.write('keep\n')
        os.symlink(target, link)
        rc, out, err = run(['time', '-o', link, '--', 'sh', '-c', 'touch "$1"', 'sh',
                            marker])
        check(rc == 125, '-o symlink: probe time exited %d, not 125' % rc)
        check('symbolic link' in err, '-o symlink: message %r' % err)
        with open(target) as f:
            check(f.read() == 'keep\n', '-o symlink: the target was written')
        check(not os.path.exists(marker), '-o symlink: the command ran anyway')

        # A dangling link is refused too: nothing is created through it.
        os.unlink(target)
        rc, out, err = run(['time', '-o', link, 'true'])
        check(rc == 125 and not os.path.exists(target),
              '-o dangling symlink: exited %d, target exists: %s'
              % (rc, os.path.exists(target)))


def case_not_found():
    rc, out, err = run(['time', '--', 'probe-no-such-command', 'arg'])
    check(rc == 127, 'not found: probe time exited %d, not 127' % rc)
    check(err == "probe time: cannot run 'probe-no-such-command': "
          'No such file or directory\n', 'not found: message %r' % err)

    with tempfile.TemporaryDirectory() as d:
        rc, out, err = run(['time', '-f', 'json', '--', os.path.join(d, 'missing')])
        check(rc == 127, 'missing path: probe time exited %d' % rc)

        path = os.path.join(d, 'not-executable')
        with open(path, 'w') as f:
            f.write('#!/bin/sh\nexit 0\n')
        os.chmod(path, 0o644)
        rc, out, err = run(['time', '--', path])
        check(rc == 126, 'not executable: probe time exited %d, not 126' % rc)
        check(err == "probe time: cannot run '%s': Permission denied\n" % path,
              'not executable: message %r' % err)


def case_usage():
    with tempfile.TemporaryDirectory() as d:
        marker = os.path.join(d, 'ran')
        cmd = ['sh', '-c', 'touch "$1"', 'sh', marker]
        for args, words in [
                (['time'], 'no command'),
                (['time', '--'], 'no command'),
                (['time', '-x', '--'] + cmd, "unknown option '-x'"),
                (['time', '--bogus', '--'] + cmd, "invalid option '--bogus'"),
                (['time', '--help=x', '--'] + cmd, "invalid option '--help=x'"),
                (['time', '-f', 'xml', '--'] + cmd, "unknown format 'xml'"),
                (['time', '-f'], "option '-f' needs an argument"),
                (['time', '-o'], "option '-o' needs an argument"),
                ([], 'no command'),
                (['frobnicate'], "unknown command 'frobnicate'"),
                (['--frobnicate'], "unknown option '--frobnicate'")]:
            rc, out, err = run(args)
            what = 'probe ' + ' '.join(args)
            check(rc == 2, '%s: exited %d, not 2' % (what, rc))
            check(words in err, '%s: %r not in %r' % (what, words, err))
            check('usage' in err.lower(), '%s: no usage in %r' % (what, err))
            check(out == '', '%s: stdout %r' % (what, out))
        check(not os.path.exists(marker), 'a command ran despite a usage error')


def case_help_version():
    rc, out, err = run(['--help'])
    check(rc == 0 and 'usage: probe COMMAND' in out and 'time' in out and err == '',
          'probe --help: %d %r %r' % (rc, out, err))
    rc, out, err = run(['time', '--help'])
    check(rc == 0 and out.startswith('usage: probe time') and '--format' in out
          and err == '', 'probe time --help: %d %r %r' % (rc, out, err))
    rc, out, err = run(['time', '-h', 'false'])
    check(rc == 0 and out.startswith('usage: probe time'), 'probe time -h: %d' % rc)
    rc, out, err = run(['--version'])
    check(rc == 0 and out == 'probe (libprobe) %s\n' % VERSION and err == '',
          'probe --version: %d %r %r (project version %s)' % (rc, out, err, VERSION))


def ignore(*signums):
    def preexec():
        for s in signums:
            signal.signal(s, signal.SIG_IGN)
    return preexec


def case_interrupt():
    # SIGINT and SIGQUIT to probe while the command runs: ignored, report written.
    rc, out, err = run(['time', '--', 'sh', '-c',
                        'kill -INT $PPID; kill -QUIT $PPID; sleep 0.1; exit 5'])
    check(rc == 5, 'SIGINT to probe: exited %d, not 5' % rc)
    check('Exit status: 5\n' in err, 'SIGINT to probe: report:\n' + err)

    # Ctrl-C at a terminal: SIGINT to the whole process group. The command dies of
    # it, probe does not, and reports.
    p = subprocess.Popen([PROBE, 'time', '-f', 'json', '--', 'sh', '-c',
                          'echo ready; exec sleep 10'], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        check(p.stdout.readline() == b'ready\n', 'Ctrl-C: the command did not start')
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    check(p.returncode == 130, 'Ctrl-C: probe time exited %d, not 130' % p.returncode)
    doc = parse_json(err.decode('utf-8', 'replace'), 'Ctrl-C')
    if doc:
        check(doc['signal'] == 'SIGINT', 'Ctrl-C: signal is %r' % doc['signal'])

    # ... but the command gets them with probe's own dispositions (default here).
    rc, out, err = run(['time', '-f', 'json', '--', CHILD, 'raise', str(signal.SIGINT)])
    check(rc == 130, 'SIGINT in the command: exited %d, not 130' % rc)
    doc = parse_json(err, 'SIGINT in the command')
    if doc:
        check(doc['signal'] == 'SIGINT', 'signal is %r' % doc['signal'])

    # Ignored when probe started: still ignored in the command (as nohup(1) wants).
    rc, out, err = run(['time', '--', CHILD, 'raise', str(signal.SIGINT)],
                       preexec_fn=ignore(signal.SIGINT))
    check(rc == 0, 'SIGINT ignored by the caller: exited %d, not 0' % rc)

    # SIGCHLD ignored when probe started would let the kernel reap the command.
    rc, out, err = run(['time', '-f', 'json', '--', 'sh', '-c', 'exit 3'],
                       preexec_fn=ignore(signal.SIGCHLD))
    check(rc == 3, 'SIGCHLD ignored: exited %d, not 3: %s' % (rc, err))
    parse_json(err, 'SIGCHLD ignored')


def case_probe_output():
    # PROBE_OUTPUT asks programs linked with libprobe for a report at exit; it is
    # meant for the command: probe must neither overwrite the command's report with
    # its own nor complain that it has recorded nothing.
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'profile.txt')
        env = dict(os.environ, PROBE_OUTPUT=path)
        rc, out, err = run(['time', '-o', os.path.join(d, 'time.txt'), '--', 'sh', '-c',
                            'echo from-the-command > "$PROBE_OUTPUT"'], env=env)
        check(rc == 0, 'PROBE_OUTPUT: exited %d: %s' % (rc, err))
        check(err == '', 'PROBE_OUTPUT: probe said something of its own: %r' % err)
        with open(path) as f:
            text = f.read()
        check(text == 'from-the-command\n', 'PROBE_OUTPUT was overwritten: %r' % text)


def main():
    fn = globals().get('case_' + CASE)
    if not fn:
        print('no such case: %s' % CASE)
        return 2
    fn()
    for f in failures:
        print('FAIL: ' + f)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
