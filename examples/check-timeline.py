#!/usr/bin/env python3
"""Run the timeline example in one mode and check the Chrome trace it writes.

Usage: check-timeline.py TIMELINE flight|stream
"""
import json
import os
import subprocess
import sys
import tempfile


def main(argv):
    exe, mode = argv[1], argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        args = [exe, path] + (["stream"] if mode == "stream" else [])
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            print(f"timeline exited {r.returncode}: {r.stderr}")
            return 1
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    events = doc["traceEvents"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    begins = [e for e in events if e["ph"] == "B" and e["name"] == "handle_request"]
    problems = []
    if not {"worker-a", "worker-b"} <= names:
        problems.append(f"thread names: {sorted(names)}")
    if len(begins) + doc["otherData"]["events_dropped"] < 400:
        problems.append(f"{len(begins)} handle_request slices")
    if not any(e["ph"] == "C" and e["name"] == "bytes_in" for e in events):
        problems.append("no bytes_in counter events")
    if not any(e["ph"] == "i" and e["name"] == "workers started" for e in events):
        problems.append("no instant")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
