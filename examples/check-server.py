#!/usr/bin/env python3
"""Run examples/server with the endpoint on a free port and pushing to file://DIR;
read its report over HTTP, stop it, and check that the windows were written."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

server = sys.argv[1]
with tempfile.TemporaryDirectory() as tmp:
    proc = subprocess.Popen([server, '127.0.0.1:0', 'file://' + tmp, '0.3'],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().split()[3].rstrip(':'))
        time.sleep(1.0)
        with urllib.request.urlopen('http://127.0.0.1:%d/debug/probe/report' % port,
                                    timeout=30) as r:
            names = {s['name'] for s in json.load(r)['sites']}
        if not {'request', 'parse_request', 'render_response'} <= names:
            sys.exit('report sites: %r' % names)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    if proc.returncode != 0:
        sys.exit('server exited %d' % proc.returncode)
    files = [n for n in os.listdir(tmp) if n.startswith('example-server.cpu-')]
    if len(files) < 2:
        sys.exit('pushed windows: %r' % os.listdir(tmp))
print('ok')
