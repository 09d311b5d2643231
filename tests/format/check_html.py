#!/usr/bin/env python3
"""Check the "html" formatter's page.

usage: check_html.py TEST-PROGRAM BUILD-DIR [CHROMIUM]

TEST-PROGRAM writes format-html.html in BUILD-DIR, and once more at its exit through
PROBE_OUTPUT and PROBE_FORMAT=html. The page must be one file that
fetches nothing, with its data as JSON the page can parse back. Then, in headless
Chromium (skipped with 77 when CHROMIUM is ''): the DOM holds the hot function in the
sampled icicle, the hot scope in the scope icicle and in the table, in the order of
the recorded totals; a click on the "name" header re-sorts the table; a click on
the hot function's box zooms to it; a search highlights its box; and a
screenshot is kept as BUILD-DIR/format-html.png for a person to look at.
"""
import html.parser
import json
import os
import re
import subprocess
import sys
import tempfile


def fail(msg):
    print('FAIL: ' + msg)
    sys.exit(1)


def page_data(page):
    m = re.search(r'<script id="probe-data" type="application/json">(.*?)</script>',
                  page, re.S)
    if not m:
        fail('no probe-data script element')
    return json.loads(m.group(1))


def check_file(page):
    # Self-contained: no element that loads anything, no URL at all.
    for bad in ('<script src', '<link', '@import', 'url(', 'http://', 'https://',
                '<iframe', '<img'):
        if bad in page:
            fail('the page has %r: it must fetch nothing' % bad)
    if page.count('</script>') != 2:
        fail('expected 2 </script> (data, code); a name was not escaped')
    return page_data(page)


class Dom(html.parser.HTMLParser):
    """Texts of the icicle boxes and the table's name cells, and attributes."""

    def __init__(self):
        super().__init__()
        self.stack = []          # (tag, id, class) of the open elements
        self.texts = {'flame-samples': [], 'flame-scopes': [], 'rows': [],
                      'samples-crumbs': []}
        self.boxes = []          # (text, class, style) of the sampled icicle's boxes
        self.attrs = {}          # id -> attributes
        self.cur = None
        self.body = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'body':
            self.body = a
        if a.get('id'):
            self.attrs[a['id']] = a
        self.stack.append((tag, a.get('id'), a.get('class') or ''))
        ids = [s[1] for s in self.stack]
        cls = (a.get('class') or '').split()
        if tag == 'div' and 'fr' in cls:
            for box in ('flame-samples', 'flame-scopes'):
                if box in ids:
                    self.cur = (box, [])
            self.box_attrs = (a.get('class'), a.get('style') or '')
        elif tag == 'a' and 'samples-crumbs' in ids:
            self.cur = ('samples-crumbs', [])
        elif tag == 'td' and 'name' in cls and 'scopes' in ids:
            self.cur = ('rows', [])

    def handle_endtag(self, tag):
        while self.stack:
            t = self.stack.pop()
            if t[0] == tag:
                break
        if self.cur and tag in ('div', 'td', 'a'):
            text = ''.join(self.cur[1])
            self.texts[self.cur[0]].append(text)
            if self.cur[0] == 'flame-samples':
                self.boxes.append((text,) + self.box_attrs)
            self.cur = None

    def handle_data(self, data):
        if self.cur:
            self.cur[1].append(data)


def chromium(browser, tmp, url, *args):
    cmd = [browser, '--headless', '--no-sandbox', '--disable-gpu',
           '--disable-dev-shm-usage', '--no-first-run', '--user-data-dir=' + tmp,
           '--window-size=1280,1100', *args, url]
    env = dict(os.environ, HOME=tmp)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=90)
    if r.returncode != 0:
        fail('%s exited %d: %s' % (' '.join(cmd), r.returncode, r.stderr.decode()[-2000:]))
    return r.stdout.decode('utf-8', 'replace')


def dom(browser, tmp, url):
    d = Dom()
    d.feed(chromium(browser, tmp, url, '--dump-dom'))
    if d.body.get('data-ready') != '1':
        fail('the page did not finish drawing (no data-ready on <body>)')
    return d


def main():
    prog, builddir = sys.argv[1], sys.argv[2]
    browser = sys.argv[3] if len(sys.argv) > 3 else ''
    out = os.path.join(builddir, 'format-html.html')
    r = subprocess.run([prog, out])
    if r.returncode != 0:
        fail('%s exited %d' % (prog, r.returncode))
    with open(out, encoding='utf-8') as f:
        data = check_file(f.read())

    env_out = os.path.join(builddir, 'format-html-env.html')
    r = subprocess.run([prog, '--env'],
                       env=dict(os.environ, PROBE_OUTPUT=env_out, PROBE_FORMAT='html'))
    with open(env_out, encoding='utf-8') as f:
        env_page = f.read()
    if r.returncode != 0 or not env_page.startswith('<!DOCTYPE html>'):
        fail('PROBE_FORMAT=html: exit %d, page starts %r' % (r.returncode, env_page[:40]))
    if 'html_hot' not in [s[0] for s in check_file(env_page)['sites']]:
        fail('PROBE_FORMAT=html: html_hot missing')

    scopes = {s[0]: s for s in data['sites'] if s[1] == 0}
    for name in ('html_hot', 'html_cold', 'html_main', '</script><b>x</b>'):
        if name not in scopes:
            fail('scope %r missing from the data' % name)
    if 'html_test_hot' not in data['frames']:
        fail('frame html_test_hot missing from the data: %s' % data['frames'][:40])
    hot_total, cold_total = scopes['html_hot'][6], scopes['html_cold'][6]
    print('data: %d sites, %d stacks, html_hot total %d ns, html_cold %d ns'
          % (len(data['sites']), len(data['stacks']), hot_total, cold_total))
    if hot_total <= cold_total:
        fail('html_hot (%d ns) is not above html_cold (%d ns)' % (hot_total, cold_total))

    if not browser:
        print('SKIP: no chromium; the file checks passed')
        sys.exit(77)

    url = 'file://' + os.path.abspath(out)
    with tempfile.TemporaryDirectory() as tmp:
        before = dom(browser, tmp, url)
        if 'html_test_hot' not in before.texts['flame-samples']:
            fail('html_test_hot not in the sampled icicle: %s'
                 % before.texts['flame-samples'][:30])
        if 'html_hot' not in before.texts['flame-scopes']:
            fail('html_hot not in the scope icicle: %s' % before.texts['flame-scopes'])
        rows = before.texts['rows']
        if before.attrs['scopes'].get('data-sort') != 'total:desc':
            fail('default sort: %s' % before.attrs['scopes'].get('data-sort'))
        if set(rows) != set(scopes):
            fail('table rows %s, scopes %s' % (rows, sorted(scopes)))
        if rows.index('html_hot') > rows.index('html_cold'):
            fail('by total, html_hot comes after html_cold: %s' % rows)

        # The header click, a click on the hot function's box (zoom), and a search.
        after = dom(browser, tmp, url + '#click=name&zoom=html_test_hot&search=html_test_h')
        clicked = after.texts['rows']
        print('rows by total: %s; after a click on "name": %s' % (rows, clicked))
        if after.attrs['scopes'].get('data-sort') != 'name:asc':
            fail('after the click: %s' % after.attrs['scopes'].get('data-sort'))
        if clicked == rows or set(clicked) != set(rows):
            fail('the click did not re-sort the table')
        if clicked.index('html_cold') > clicked.index('html_hot'):
            fail('by name, html_cold comes after html_hot: %s' % clicked)

        crumbs = after.texts['samples-crumbs']
        if not crumbs or crumbs[-1] != 'html_test_hot' or crumbs[0] != 'all samples':
            fail('zoom: the trail is %s' % crumbs)
        boxes = {b[0]: b for b in after.boxes}
        if 'html_test_cold' in boxes:
            fail('zoomed into html_test_hot, html_test_cold is still drawn')
        hot = boxes.get('html_test_hot')
        if not hot or 'width: 100%' not in hot[2] or 'hit' not in hot[1].split():
            fail('zoom/search: html_test_hot is %s' % (hot,))
        if any('hit' in b[1].split() for b in after.boxes if 'html_test_h' not in b[0]):
            fail('search: a box highlighted that does not match')

        shot = os.path.join(builddir, 'format-html.png')
        if os.path.exists(shot):
            os.unlink(shot)
        chromium(browser, tmp, url + '#search=html_test_hot', '--screenshot=' + shot,
                 '--hide-scrollbars')
        if not os.path.exists(shot) or os.path.getsize(shot) < 1000:
            fail('no screenshot at ' + shot)
        print('screenshot: ' + shot)


if __name__ == '__main__':
    main()
