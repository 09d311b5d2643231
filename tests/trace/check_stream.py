#!/usr/bin/env python3
"""Run stream-child in several configurations and check the Chrome trace it streams.

usage: check_stream.py STREAM_CHILD STREAM_CHILD_STATIC
"""

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

child = sys.argv[1]
static_child = sys.argv[2]
failures = []


def expect(cond, msg):
    if not cond:
        failures.append(msg)


def run(path, threads, scopes, buffer_events, work=0, env=None):
    r = subprocess.run([child, path, str(threads), str(scopes), str(buffer_events),
                        str(work)], capture_output=True, text=True, timeout=120,
                       env=env)
    expect(r.returncode == 0, f"stream-child exited {r.returncode}: {r.stdout} {r.stderr}")
    out = dict(line.split() for line in r.stdout.splitlines() if line)
    return out


def check_file(path, threads, scopes, label):
    """Parse the trace, check nesting and names; return (B count, dropped)."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    events = doc["traceEvents"]
    other = doc["otherData"]
    expect(other.get("mode") == "stream", f"{label}: otherData.mode {other}")
    dropped = other.get("events_dropped")
    expect(isinstance(dropped, int) and dropped >= 0, f"{label}: events_dropped {dropped}")
    stacks = defaultdict(list)
    last = defaultdict(float)
    begins = 0
    names = {}
    counters = 0
    instants = 0
    for e in events:
        ph = e["ph"]
        if ph == "M":
            names[e["tid"]] = e["args"]["name"]
            continue
        tid = e["tid"]
        expect(e["ts"] >= last[tid], f"{label}: time goes back on thread {tid}: {e}")
        last[tid] = e["ts"]
        if ph == "B":
            begins += 1
            stacks[tid].append(e["name"])
        elif ph == "E":
            top = stacks[tid].pop() if stacks[tid] else None
            expect(top == e["name"], f"{label}: E {e['name']} closes {top} on {tid}")
        elif ph == "C":
            counters += 1
            expect(isinstance(e["args"]["value"], int), f"{label}: counter {e}")
        elif ph == "i":
            instants += 1
            expect(e["name"] == "sc_done", f"{label}: instant {e}")
    for tid, st in stacks.items():
        expect(not st, f"{label}: scopes left open on {tid}: {st[-3:]}")
    workers = sorted(n for n in names.values() if n.startswith("sw"))
    expect(workers == sorted(f"sw{i}" for i in range(threads)),
           f"{label}: thread names {sorted(names.values())}")
    expect(instants == 1, f"{label}: {instants} instants")
    # Every scope is a B in the file or a dropped event.
    expect(begins + dropped >= 2 * scopes * threads,
           f"{label}: {begins} begins + {dropped} dropped < {2 * scopes * threads}")
    expect(begins <= 2 * scopes * threads, f"{label}: {begins} begins, too many")
    return begins, dropped, counters


with tempfile.TemporaryDirectory() as tmp:
    # A workload the writer keeps up with: everything arrives, nothing dropped.
    path = os.path.join(tmp, "slow.json")
    run(path, 2, 2000, 65536, work=2000)
    begins, dropped, counters = check_file(path, 2, 2000, "slow")
    expect(dropped == 0 and begins == 2 * 2 * 2000 and counters == 2 * 2000,
           f"slow: {begins} begins, {counters} counters, {dropped} dropped")

    # A fork while streaming: the child must leave the parent's file alone.
    path = os.path.join(tmp, "fork.json")
    # The forked child inherits, unreachable, whatever the parent's stream writer
    # thread held in its locals at the fork (one drain's buffers): LeakSanitizer
    # counts that as the child's leak. It is not the parent's: leaks off there.
    asan = os.environ.get("ASAN_OPTIONS", "")
    run(path, 2, 1000, 65536, work=2000,
        env=dict(os.environ, SC_FORK="1",
                 ASAN_OPTIONS=(asan + ":" if asan else "") + "detect_leaks=0"))
    begins, dropped, _ = check_file(path, 2, 1000, "fork")
    expect(dropped == 0 and begins == 2 * 2 * 1000, f"fork: {begins} begins, {dropped} dropped")

    # probe_reset() forgets statistics, not the stream being written.
    path = os.path.join(tmp, "reset.json")
    run(path, 2, 1000, 65536, work=2000, env=dict(os.environ, SC_RESET="1"))
    begins, dropped, _ = check_file(path, 2, 1000, "reset")
    expect(dropped == 0 and begins == 2 * 2 * 1000, f"reset: {begins} begins, {dropped} dropped")

    # Threads that exit while the stream stops: every event once, none twice.
    for attempt in range(5):
        path = os.path.join(tmp, f"race{attempt}.json")
        run(path, 32, 5, 65536, env=dict(os.environ, SC_RACE="1"))
        begins, dropped, _ = check_file(path, 32, 5, "race")
        expect(begins == 32 * 5 * 2 and dropped == 0,
               f"race: {begins} begins, {dropped} dropped, want {32 * 5 * 2}")

    # Tiny buffers: drops, counted, and the file is still well formed.
    path = os.path.join(tmp, "tiny.json")
    run(path, 2, 20000, 16)
    begins, dropped, _ = check_file(path, 2, 20000, "tiny")
    expect(dropped > 0, "tiny: nothing dropped with 16-event buffers")

    # The raw file cannot grow (RLIMIT_FSIZE, like a full disk): the stop says
    # PROBE_EIO, and what could not be written is counted, in a file still whole.
    path = os.path.join(tmp, "full.json")
    out = run(path, 1, 20000, 65536, env=dict(os.environ, SC_FSIZE="65536"))
    expect(out.get("stop_rc") == "-5", f"full: stop returned {out.get('stop_rc')}")
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    dropped = doc["otherData"]["events_dropped"]
    kept = sum(1 for e in doc["traceEvents"] if e["ph"] in "BEC")
    expect(dropped > 0, "full: nothing counted as dropped")
    expect(kept + dropped >= 5 * 20000, f"full: {kept} kept + {dropped} dropped < {5 * 20000}")

    # Many scopes: memory stays bounded by the buffers, not by the run: ten times
    # the scopes of a short run, about the same peak (checked without sanitizers).
    path = os.path.join(tmp, "short.json")
    short = int(run(path, 4, 25000, 65536).get("max_rss", "0"))
    path = os.path.join(tmp, "long.json")
    out = run(path, 4, 250000, 65536)
    check_file(path, 4, 250000, "long")
    rss = int(out.get("max_rss", "0"))
    if os.environ.get("STREAM_CHECK_RSS", "1") == "1":
        expect(0 < rss < short * 3 // 2 + 32 * 1024 * 1024,
               f"long: peak RSS {rss} bytes against {short} for a tenth of the scopes")

    # PROBE_TRACE=stream:PATH starts a stream at load; exit completes the file.
    path = os.path.join(tmp, "env.json")
    env = dict(os.environ, PROBE_TRACE="stream:" + path)
    run("-", 2, 2000, 65536, work=2000, env=env)
    begins, dropped, _ = check_file(path, 2, 2000, "env")
    expect(dropped == 0 and begins == 2 * 2 * 2000, f"env: {begins} begins, {dropped} dropped")

    # The same program linked with libprobe.a: stream mode and PROBE_TRACE still work.
    path = os.path.join(tmp, "static.json")
    env = dict(os.environ, PROBE_TRACE="stream:" + path)
    r = subprocess.run([static_child, "-", "1", "500", "65536", "1000"], env=env,
                       capture_output=True, text=True, timeout=60)
    expect(r.returncode == 0, f"static: exited {r.returncode}: {r.stdout} {r.stderr}")
    begins, dropped, _ = check_file(path, 1, 500, "static")
    expect(begins == 2 * 500, f"static: {begins} begins")

    # PROBE_TRACE=flight with a chrome report at exit: the timeline is in it.
    path = os.path.join(tmp, "flight.json")
    env = dict(os.environ, PROBE_TRACE="flight", PROBE_OUTPUT=path, PROBE_FORMAT="chrome")
    run("-", 1, 100, 65536, env=env)
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    expect(any(e["ph"] == "B" and e["name"] == "sc_outer" for e in doc["traceEvents"]),
           "flight: no sc_outer slices in the report at exit")
    expect(doc["otherData"].get("source") == "timeline", f"flight: {doc['otherData']}")

    # The file is refused through a symlink, and a missing directory is an error.
    link = os.path.join(tmp, "link.json")
    os.symlink(os.path.join(tmp, "target.json"), link)
    r = subprocess.run([child, link, "1", "1", "16"], capture_output=True, text=True)
    expect(r.returncode == 3 and "-40" in r.stdout, f"symlink: {r.returncode} {r.stdout}")
    expect(not os.path.exists(os.path.join(tmp, "target.json")), "symlink was followed")
    r = subprocess.run([child, os.path.join(tmp, "no", "dir.json"), "1", "1", "16"],
                       capture_output=True, text=True)
    expect(r.returncode == 3 and "-2" in r.stdout, f"missing dir: {r.returncode} {r.stdout}")

for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
