#!/usr/bin/env python3
"""The fleet module from outside: fleet-child's endpoint read by real clients
(go tool pprof, urllib, raw sockets), and its pusher sending to a receiver that runs
here, on loopback, checking what Pyroscope's ingest handler checks.

Usage: test_fleet.py FLEET_CHILD CASE   (exit 0 pass, 1 fail, 77 skip)
"""
import gzip
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

CHILD = None


class Failure(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failure(what)


# ---- protobuf: just enough of profile.proto ------------------------------------------

def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def fields(buf):
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(buf, i)
        elif wire == 2:
            n, i = varint(buf, i)
            v = buf[i:i + n]
            i += n
        elif wire == 1:
            v = int.from_bytes(buf[i:i + 8], 'little')
            i += 8
        elif wire == 5:
            v = int.from_bytes(buf[i:i + 4], 'little')
            i += 4
        else:
            raise Failure('bad wire type %d' % wire)
        yield num, wire, v


def decode_profile(gz):
    """{'types': [...], 'values': [[...] per sample], 'strings', 'time', 'duration'}"""
    data = gzip.decompress(gz)
    prof = {'types': [], 'values': [], 'strings': [], 'time': 0, 'duration': 0}
    for num, wire, v in fields(data):
        if num == 1:
            prof['types'].append(dict((n, x) for n, _, x in fields(v)))
        elif num == 2:
            vals = []
            for n, w, x in fields(v):
                if n == 2 and w == 2:
                    j = 0
                    while j < len(x):
                        y, j = varint(x, j)
                        vals.append(y)
                elif n == 2:
                    vals.append(x)
            prof['values'].append(vals)
        elif num == 6:
            prof['strings'].append(v.decode())
        elif num == 9:
            prof['time'] = v
        elif num == 10:
            prof['duration'] = v
    return prof


def cpu_total(prof):
    idx = [prof['strings'][t[1]] for t in prof['types']].index('cpu')
    return sum(v[idx] for v in prof['values'])


# ---- running the child -----------------------------------------------------------------

def start(mode, env=None):
    full = dict(os.environ)
    for k in list(full):
        if k.startswith('PROBE_'):
            del full[k]
    full.update(env or {})
    return subprocess.Popen([CHILD, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=full, text=True)


def read_port(proc):
    line = proc.stdout.readline()
    if not line.startswith('port '):
        proc.kill()
        expect(False, 'no port line: %r %s' % (line, proc.communicate()))
    return int(line.split()[1])


def finish(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    expect(proc.returncode == 0, 'child exited %r: %s' % (proc.returncode, err))
    return out, err


def get(port, path, timeout=30):
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d%s' % (port, path),
                                    timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def work_calls(port):
    status, body = get(port, '/debug/probe/report?format=json')
    expect(status == 200, 'report: %d' % status)
    sites = [s for s in json.loads(body)['sites'] if s['name'] == 'fleet_work']
    expect(sites, 'no fleet_work site in the report')
    return sites[0]['calls']


def go_env(tmp):
    if not shutil.which('go'):
        return None
    env = dict(os.environ)
    env.update(HOME=tmp, GOPATH=os.path.join(tmp, 'gopath'),
               GOCACHE=os.path.join(tmp, 'gocache'), PPROF_TMPDIR=tmp,
               GOFLAGS='-mod=mod', GOTOOLCHAIN='local')
    return env


# ---- cases -------------------------------------------------------------------------------

def case_pprof_top():
    with tempfile.TemporaryDirectory() as tmp:
        env = go_env(tmp)
        if not env:
            print('go not installed')
            sys.exit(77)
        proc = start('http')
        try:
            port = read_port(proc)
            url = 'http://127.0.0.1:%d/debug/pprof/profile?seconds=2' % port
            r = subprocess.run(['go', 'tool', 'pprof', '-top', url], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=120)
            expect(r.returncode == 0, 'go tool pprof failed:\n' + r.stdout)
            top = [l for l in r.stdout.splitlines() if 'fleet_hot_loop' in l]
            expect(top, 'fleet_hot_loop not in pprof -top:\n' + r.stdout)
            # The burner is the only busy thread: the hot function's flat share.
            flat = float(top[0].split()[1].rstrip('%'))
            expect(flat > 50, 'fleet_hot_loop only %.1f%% flat:\n%s' % (flat, r.stdout))
        finally:
            finish(proc)


def case_heap():
    """With the heap profiler on, /debug/pprof/heap is Go's heap profile."""
    proc = start('http', {'PROBE_MEM': '1', 'PROBE_MEM_SAMPLE': '4096',
                          'FLEET_CHILD_HEAP': '1'})
    try:
        port = read_port(proc)
        status, body = get(port, '/debug/pprof/heap')
        expect(status == 200, 'heap: %d %r' % (status, body[:200]))
        prof = decode_profile(body)
        types = [prof['strings'][t[1]] for t in prof['types']]
        expect(types == ['alloc_objects', 'alloc_space', 'inuse_objects', 'inuse_space'],
               'heap sample types %r' % types)
        # The program's live 1 MiB block, sampled (mean 4 KiB) and still in use.
        expect(sum(v[3] for v in prof['values']) >= 1 << 20,
               'in use %r' % [v[3] for v in prof['values']])
    finally:
        finish(proc)


def case_report():
    proc = start('http')
    try:
        port = read_port(proc)
        # The busy thread starts after the port is printed: wait for its first call.
        deadline = time.monotonic() + 20
        while work_calls(port) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        expect(work_calls(port) > 0, 'fleet_work has no calls')
        for fmt, needle in (('text', b'fleet_work'), ('tree', b''),
                            ('html', b'fleet_work')):
            status, body = get(port, '/debug/probe/report?format=' + fmt)
            expect(status == 200 and needle in body, '%s: %d %r' % (fmt, status, body[:200]))
        status, _ = get(port, '/debug/probe/report?format=bogus')
        expect(status == 400, 'unknown format: %d' % status)
        status, body = get(port, '/debug/probe/trace?seconds=1')
        expect(status == 200, 'trace: %d' % status)
        events = json.loads(body)
        events = events['traceEvents'] if isinstance(events, dict) else events
        expect(any(e.get('name') == 'fleet_work' for e in events),
               'no fleet_work event in the trace window')
        # curl, a real client, gets the JSON report too.
        if shutil.which('curl'):
            r = subprocess.run(['curl', '-sf', 'http://127.0.0.1:%d/debug/probe/report' % port],
                               stdout=subprocess.PIPE, timeout=30)
            expect(r.returncode == 0, 'curl failed')
            expect(json.loads(r.stdout)['schema'] == 'probe/1', 'curl: not our JSON')
    finally:
        finish(proc)


def raw(port, data, timeout=15, wait_close=True):
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b''
        while wait_close:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def status_of(reply):
    return int(reply.split(b' ', 2)[1]) if reply.startswith(b'HTTP/1.1 ') else None


def case_bad_requests():
    proc = start('http')
    try:
        port = read_port(proc)
        before = work_calls(port)
        status, body = get(port, '/nope')
        expect(status == 404, 'unknown path: %d' % status)
        status, body = get(port, '/debug/pprof/heap')
        expect(status == 404 and b'heap profiling is not on' in body,
               'heap: %d %r' % (status, body))
        reply = raw(port, b'POST /debug/probe/report HTTP/1.1\r\nHost: x\r\n\r\n')
        expect(status_of(reply) == 405 and b'Allow: GET, HEAD' in reply,
               'POST: %r' % reply[:100])
        reply = raw(port, b'GET /debug/probe/report HTTP/1.1\r\nX-Big: ' +
                    b'a' * (1 << 20) + b'\r\n\r\n')
        expect(status_of(reply) in (431, 400) or reply == b'',
               '1 MB header: %r' % reply[:100])
        reply = raw(port, b'garbage\r\n\r\n')
        expect(status_of(reply) == 400, 'garbage: %r' % reply[:100])
        status, _ = get(port, '/debug/pprof/profile?seconds=abc')
        expect(status == 400, 'bad seconds: %d' % status)
        # A slow client: half a request line, then nothing. The listener gives up
        # on it (408) instead of waiting for ever, and serves the next client.
        t0 = time.monotonic()
        reply = raw(port, b'GET /debug/pro', timeout=30)
        waited = time.monotonic() - t0
        expect(status_of(reply) == 408, 'slow client: %r' % reply[:100])
        expect(waited < 25, 'slow client held for %.1f s' % waited)
        status, _ = get(port, '/debug/probe/report')
        expect(status == 200, 'after the slow client: %d' % status)
        expect(proc.poll() is None, 'the program died')
        after = work_calls(port)
        expect(after > before, 'recording stopped: %d -> %d calls' % (before, after))
    finally:
        finish(proc)


def case_fork():
    proc = start('fork')
    try:
        port = read_port(proc)
        line = proc.stdout.readline().split()
        expect(line[:2] == ['child', 'port'], 'child line: %r' % line)
        expect(line[2] == '0', 'the forked child has a listener on %s' % line[2])
        expect(line[4] == '0', 'the child could not start its own: %s' % line[4])
        status, _ = get(port, '/debug/probe/report')
        expect(status == 200, "the parent's listener after fork: %d" % status)
    finally:
        finish(proc)


class Receiver:
    """A Pyroscope stand-in: records every request; answers 200."""

    def __init__(self, port=0):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get('Content-Length', 0))
                body = self.rfile.read(n)
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header('Content-Length', '0')
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(('127.0.0.1', port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def stats_line(line):
    return dict(kv.split('=') for kv in line.split()[1:])


def check_requests(reqs):
    windows = []
    for method, path, headers, body in reqs:
        url = urllib.parse.urlsplit(path)
        q = urllib.parse.parse_qs(url.query)
        expect(method == 'POST' and url.path == '/pyro/ingest', '%s %s' % (method, path))
        expect(q['format'] == ['pprof'] and q['spyName'] == ['libprobe'], 'query: %r' % q)
        name = q['name'][0]
        expect(name.startswith('fleettest.cpu{') and name.endswith('}'), 'name: %s' % name)
        labels = dict(kv.split('=') for kv in name[len('fleettest.cpu{'):-1].split(','))
        expect(labels.get('env') == 'test' and labels.get('region') == 'eu-1' and
               labels.get('hostname'), 'labels: %r' % labels)
        expect(headers.get('X-Scope-OrgID') == 'team-a', 'tenant: %r' % headers)
        frm, until = int(q['from'][0]), int(q['until'][0])
        expect(frm <= until, 'from %d after until %d' % (frm, until))
        windows.append((frm, until, decode_profile(body), body))
    for a, b in zip(windows, windows[1:]):
        expect(b[0] == a[1], 'windows not contiguous: until %d, next from %d' % (a[1], b[0]))
        end_a = a[2]['time'] + a[2]['duration']
        expect(abs(b[2]['time'] - end_a) < 20_000_000,
               'profiles overlap or leave a gap: %d ns' % (b[2]['time'] - end_a))
    return windows


PUSH_ENV = {'PROBE_PUSH_INTERVAL': '0.5', 'PROBE_APP': 'fleettest',
            'PROBE_LABELS': 'env=test,region=eu-1', 'PROBE_PUSH_TENANT': 'team-a'}


def case_push():
    rx = Receiver()
    env = dict(PUSH_ENV, PROBE_PUSH='http://127.0.0.1:%d/pyro/' % rx.port)
    proc = start('push', env)
    time.sleep(2.6)
    out, _ = finish(proc)
    rx.stop()
    cpu = int([l for l in out.splitlines() if l.startswith('cpu_ns ')][0].split()[1])
    final = stats_line([l for l in out.splitlines() if l.startswith('final ')][0])
    windows = check_requests(rx.requests)
    expect(len(windows) >= 4, 'only %d windows in 2.6 s at 0.5 s' % len(windows))
    expect(int(final['sent']) == len(windows) and final['dropped'] == '0',
           'stats %r, %d received' % (final, len(windows)))
    total = sum(cpu_total(w[2]) for w in windows)
    expect(abs(total - cpu) <= 0.10 * cpu,
           'windows add up to %.3f s of CPU, the process used %.3f s' % (total / 1e9, cpu / 1e9))
    expect('fleet_hot_loop' in windows[1][2]['strings'], 'no fleet_hot_loop in a window')
    with tempfile.TemporaryDirectory() as tmp:
        env = go_env(tmp)
        if env:
            path = os.path.join(tmp, 'w.pb.gz')
            with open(path, 'wb') as f:
                f.write(windows[1][3])
            r = subprocess.run(['go', 'tool', 'pprof', '-raw', path], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            expect(r.returncode == 0 and 'fleet_hot_loop' in r.stdout,
                   'go tool pprof -raw:\n' + r.stdout[-2000:])
    print('%d windows, %.3f s CPU sampled of %.3f s' % (len(windows), total / 1e9, cpu / 1e9))


def case_push_outage():
    rx = Receiver()
    port = rx.port
    env = dict(PUSH_ENV, PROBE_PUSH='http://127.0.0.1:%d/pyro' % port,
               PROBE_PUSH_INTERVAL='0.2')
    proc = start('push', env)

    def stats_now():
        line = ''
        while not line.startswith('stats '):
            line = proc.stdout.readline()
            expect(line, 'the program ended')
        return dict((k, int(v)) for k, v in stats_line(line).items())

    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not rx.requests:
            stats_now()
        rx.stop()
        expect(rx.requests, 'nothing pushed before the outage')
        worst = 0
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            s = stats_now()
            worst = max(worst, s['queued'])
        s = stats_now()
        expect(proc.poll() is None, 'the program died with the receiver down')
        expect(worst <= 4, 'queue grew to %d (bound 4)' % worst)
        expect(s['dropped'] > 0 and s['failed'] > 0, 'no drops counted: %r' % s)
        rx = Receiver(port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not rx.requests:
            stats_now()
        expect(rx.requests, 'pushing did not resume within 10 s')
        resumed = stats_now()
        expect(resumed['sent'] > s['sent'], 'sent did not go up: %r' % resumed)
    finally:
        finish(proc)
        rx.stop()
    check_requests(rx.requests)


def case_push_file():
    with tempfile.TemporaryDirectory() as tmp:
        proc = start('push', {'PROBE_PUSH': 'file://' + tmp, 'PROBE_PUSH_INTERVAL': '0.2',
                              'PROBE_APP': 'filetest'})
        # Windows of 0.2 s: wait for three files, however slowly a loaded machine
        # runs the program (1 s of wall time gave only two beside two busy loops).
        deadline = time.monotonic() + 30
        while len(os.listdir(tmp)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        finish(proc)
        names = sorted(os.listdir(tmp))
        expect(len(names) >= 3, 'files: %r' % names)
        for n in names:
            expect(n.startswith('filetest.cpu-') and n.endswith('.pb.gz'), n)
            with open(os.path.join(tmp, n), 'rb') as f:
                decode_profile(f.read())


def case_push_errors():
    for env, needle in (({'PROBE_PUSH': 'ftp://x'}, 'not supported'),
                        ({'PROBE_PUSH': 'http://127.0.0.1:1', 'PROBE_LABELS': 'bad'},
                         'invalid'),
                        ({'PROBE_PUSH': 'http://127.0.0.1:1',
                          'PROBE_PUSH_INTERVAL': '0.01'}, 'PROBE_PUSH_INTERVAL')):
        proc = start('http', env)
        read_port(proc)
        out, err = finish(proc)
        expect(needle in err.lower() or needle in err, '%r: stderr %r' % (env, err))
    # https:// goes through libcurl: refused, and said so, in a build without it.
    proc = start('http', {'PROBE_PUSH': 'https://127.0.0.1:1', 'PROBE_PUSH_INTERVAL': '5'})
    read_port(proc)
    _, err = finish(proc)
    if os.environ.get('PROBE_TEST_CURL') == '1':
        expect('PROBE_PUSH' not in err, 'https refused with libcurl: %r' % err)
    else:
        expect('libcurl' in err, 'https without libcurl: %r' % err)


def case_run_push():
    """probe run --push URL: the program, which knows nothing of it, pushes."""
    probe = sys.argv[3]
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PROBE_PUSH_INTERVAL='0.2', PROBE_APP='runtest')
        proc = subprocess.Popen([probe, 'run', '--push', 'file://' + tmp, '-o',
                                 os.path.join(tmp, 'report.json'), '--', CHILD, 'loop'],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        # Three windows of 0.2 s, however long a loaded machine makes them take.
        deadline = time.monotonic() + 20
        while (time.monotonic() < deadline and
               sum(n.startswith('runtest.cpu-') for n in os.listdir(tmp)) < 3):
            time.sleep(0.1)
        out, err = proc.communicate(timeout=30)  # closes stdin: the program ends
        expect(proc.returncode == 0, 'probe run: %r %s' % (proc.returncode, err))
        names = [n for n in os.listdir(tmp) if n.startswith('runtest.cpu-')]
        expect(len(names) >= 3, 'pushed files: %r' % os.listdir(tmp))


CASES = {k[5:]: v for k, v in globals().items() if k.startswith('case_')}

if __name__ == '__main__':
    CHILD = sys.argv[1]
    try:
        CASES[sys.argv[2]]()
    except Failure as e:
        print('FAIL:', e)
        sys.exit(1)
    print('ok')
