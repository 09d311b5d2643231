#!/usr/bin/env python3
"""Run the quickstart example and check its report.

Usage: check-quickstart.py QUICKSTART [FORMAT]

It must exit 0 within 10 s and its report must name its scopes and counter; a
JSON report must parse, carry the schema name and list the line site that never
ran with 0 calls.
"""
import json
import subprocess
import sys

NAMES = ['load_records', 'parse_record', 'checksum', 'worker_batch', 'bytes_parsed']


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1:]
    fmt = argv[2] if len(argv) == 3 else 'text'
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=10)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        print('quickstart exited %d' % proc.returncode)
        return 1
    out = proc.stdout
    missing = [n for n in NAMES if n not in out]
    if missing:
        print(out)
        print('the %s report does not mention: %s' % (fmt, ', '.join(missing)))
        return 1
    if fmt == 'json':
        doc = json.loads(out)
        if doc.get('schema') != 'probe/1':
            print('schema is %r' % doc.get('schema'))
            return 1
        sites = {s['name']: s for s in doc['sites']}
        for name in NAMES:
            if name not in sites:
                print('no site %s in the JSON report' % name)
                return 1
        if sites['parse_record']['calls'] != 2000:
            print('parse_record: %r calls, expected 2000' % sites['parse_record']['calls'])
            return 1
        lines = [s for s in doc['sites']
                 if s['kind'] == 'line' and s['file'].endswith('quickstart.c')]
        if sorted(s['calls'] for s in lines) != [0, 30]:
            print('line sites: %r' % lines)
            return 1
    print('ok: %d bytes of %s' % (len(out), fmt))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
