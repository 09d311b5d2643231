#!/usr/bin/env python3
"""Time the "html" page at its bound in headless Chromium.

usage: html_paint.py TEST-FORMAT-HTML-BOUND [CHROMIUM] [RUNS]

Runs the bound test (tests/format/test-format-html-bound: 10,000 sites, 65,536
sampled stacks) to write its page into a temporary directory, then opens it RUNS
times (default 5) with `chromium --headless --dump-dom` and prints, per run, the
page's size, the time from navigation to the page drawn (HTML parse, JSON parse,
both icicles and the table: what the page records in data-since-navigation-ms),
the script's own steps, and Chromium's whole wall time (its start-up included).
Timing only: nothing is asserted (docs/formats.md gives the figures).
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    test = sys.argv[1]
    browser = sys.argv[2] if len(sys.argv) > 2 else 'chromium'
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([test], check=True, env=dict(os.environ, PROBE_TEST_OUTDIR=tmp),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        page = os.path.join(tmp, 'format-html-bound.html')
        print('page: %.1f MB' % (os.path.getsize(page) / 1048576))
        drawn, walls = [], []
        for i in range(runs):
            t = time.monotonic()
            out = subprocess.run(
                [browser, '--headless', '--no-sandbox', '--disable-gpu',
                 '--disable-dev-shm-usage', '--user-data-dir=' + os.path.join(tmp, 'prof'),
                 '--window-size=1280,1100', '--dump-dom', 'file://' + page],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env=dict(os.environ, HOME=tmp), check=True).stdout.decode()
            wall = time.monotonic() - t
            nav = re.search(r'data-since-navigation-ms="(\d+)"', out)
            marks = re.search(r'data-marks="([^"]*)"', out)
            if not nav:
                sys.exit('run %d: the page did not finish drawing' % i)
            drawn.append(int(nav.group(1)))
            walls.append(wall)
            print('run %d: drawn %s ms after navigation (script: %s); chromium %.2f s'
                  % (i, nav.group(1), marks.group(1), wall))
        print('median: drawn %d ms after navigation, chromium %.2f s'
              % (statistics.median(drawn), statistics.median(walls)))


if __name__ == '__main__':
    main()
