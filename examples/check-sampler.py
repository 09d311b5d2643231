#!/usr/bin/env python3
"""Run the sampler example in one mode and check what it reports.

Usage: check-sampler.py SAMPLER cpu|wall

Both modes: its "json" report's sampled stacks name the worker's loops (threads that
never call libprobe), hash_block has more weight than sort_block (about 3 to 1), and
the "tree" report prints a call tree with them. Wall mode: the workers' naps show up
as [blocked] time under wait_for_input, and the main thread's wait in its scope.
"""
import json
import subprocess
import sys


def run(exe, mode, fmt):
    r = subprocess.run([exe, mode, fmt], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"sampler {mode} {fmt} exited {r.returncode}: {r.stderr}")
    return r.stdout


def main(argv):
    exe, mode = argv[1], argv[2]
    problems = []
    doc = json.loads(run(exe, mode, "json"))
    stacks = doc["samples"]["stacks"]
    leaf = {}
    blocked_in_wait = 0
    for st in stacks:
        frames = st["frames"]
        if not frames:
            continue
        name = frames[-1].split(".")[0]  # hash_block.constprop.0: a GCC clone
        leaf[name] = leaf.get(name, 0) + st["cpu_ns"]
        if st.get("blocked") and "wait_for_input" in frames:
            blocked_in_wait += st["cpu_ns"]
    hash_ns, sort_ns = leaf.get("hash_block", 0), leaf.get("sort_block", 0)
    if not hash_ns or not sort_ns:
        problems.append(f"leaves: {sorted(leaf)[:20]}")
    # About 3 to 1; the rounds are regular, so a tick in step with them may bias the
    # split (the sampler's own tests vary their rounds to measure it): only the order.
    elif hash_ns <= sort_ns:
        problems.append(f"hash_block/sort_block = {hash_ns / sort_ns:.2f}, want about 3")
    if mode == "wall":
        # 2 workers x 150 naps of 2 ms: 600 ms blocked at least.
        if blocked_in_wait < 450e6:
            problems.append(f"{blocked_in_wait / 1e6:.0f} ms blocked in wait_for_input")
    elif any(st.get("blocked") for st in stacks):
        problems.append("blocked stacks in CPU mode")
    tree = run(exe, mode, "tree")
    for want in ("Sampled call tree", "worker", "hash_block"):
        if want not in tree:
            problems.append(f"the tree has no {want!r}")
    # The main thread only waits in its scope: sampled in wall mode alone.
    for want in ("[blocked]", "[scope run_workers]") if mode == "wall" else ():
        if want not in tree:
            problems.append(f"the wall tree has no {want!r}")
    for p in problems:
        print("FAIL:", p)
    if problems:
        print(tree)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
