#!/usr/bin/env python3
"""One thread doing nothing but scopes streams for STREAM_LONG_SECONDS (2 by default:
10 s makes a file of tens of gigabytes and minutes of conversion, too slow for CI;
run it by hand with STREAM_LONG_SECONDS=10). The trace goes through a FIFO to
stream-verify, which parses it as JSON and checks nesting and order, so nothing of
that size touches the disk.

Expected: no event dropped, and every scope's begin and end in the file. Beside
other CPU-bound work the writer thread may wait for a CPU longer than a ring lasts
(a ring holds 2 x 262,144 events: about 13 ms of this thread). Drops are then
allowed only when the writer's measured run-queue wait over the run (schedstat's
run_delay) was at least that long, and no more of them than the thread emitted
while the writer waited. They must still be counted.

usage: check_stream_long.py STREAM_LONG STREAM_VERIFY
"""

import os
import subprocess
import sys
import tempfile

child, verify = sys.argv[1], sys.argv[2]
seconds = float(os.environ.get("STREAM_LONG_SECONDS", "2"))
RING_EVENTS = 2 * 262144
failures = []


def expect(cond, msg):
    if not cond:
        failures.append(msg)


with tempfile.TemporaryDirectory() as tmp:
    fifo = os.path.join(tmp, "long.json")
    os.mkfifo(fifo)
    # The reader is there before the child opens the FIFO (a stream to a FIFO
    # without one is refused); a write end held here until the child is done keeps
    # it from an early end of file, and lets it see the end even if the child fails.
    rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    wr = os.open(fifo, os.O_WRONLY)
    os.set_blocking(rd, True)
    checker = subprocess.Popen([verify, "-"], stdin=rd, stdout=subprocess.PIPE, text=True)
    os.close(rd)
    try:
        r = subprocess.run([child, fifo, str(seconds)], capture_output=True, text=True,
                           timeout=600 + 60 * seconds)
    finally:
        os.close(wr)
    out, _ = checker.communicate(timeout=600)
    expect(r.returncode == 0, f"stream-long exited {r.returncode}: {r.stdout} {r.stderr}")
    expect(checker.returncode == 0, f"stream-verify exited {checker.returncode}: {out}")
    if r.returncode == 0:
        got = dict(line.split() for line in out.splitlines() if line)
        run = dict(line.split() for line in r.stdout.splitlines() if line)
        scopes, run_ns = int(run["scopes"]), int(run["run_ns"])
        wait = int(run["writer_wait_ns"])
        begins, ends, dropped = int(got["begins"]), int(got["ends"]), int(got["events_dropped"])
        ring_ns = RING_EVENTS * run_ns / (2 * scopes)
        print(f"{scopes} scopes in {run_ns / 1e9:.2f} s ({run_ns / scopes:.1f} ns each), "
              f"{begins} B, {ends} E, {dropped} dropped; the writer waited "
              f"{wait / 1e6:.1f} ms for a CPU, a ring lasts {ring_ns / 1e6:.1f} ms")
        expect(begins == ends, f"{begins} begins but {ends} ends")
        starved = wait >= 0 and wait >= ring_ns
        emitted_waiting = 2 * scopes * wait / run_ns
        expect(dropped == 0 or (starved and dropped <= emitted_waiting),
               f"{dropped} events dropped; the writer waited {wait / 1e6:.1f} ms for a "
               f"CPU (a ring lasts {ring_ns / 1e6:.1f} ms), when the thread emitted "
               f"{emitted_waiting:.0f} events")
        # Every scope is in the file or accounted for as dropped.
        expect(begins <= scopes and 2 * begins + dropped >= 2 * scopes,
               f"{begins} begins + {dropped} dropped for {scopes} scopes")
        if dropped == 0:
            expect(begins == scopes, f"{begins} begins for {scopes} scopes, none dropped")

for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
