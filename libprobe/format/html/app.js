/* The html formatter's page: reads the report from #probe-data and draws it.
 * Written for this page, no library. Test hooks in the URL's hash, applied once the
 * page is drawn, in order: #click=KEY[,KEY...] clicks those table headers,
 * #zoom=NAME clicks the first sampled box of that name, #search=TEXT searches
 * (join them with '&'). When done, <body data-ready="1" data-render-ms="..." data-marks="...">
 * (milliseconds from the script's start to the end of each step) and
 * data-since-navigation-ms (from the navigation's start, the HTML's parse included). */
'use strict';
(function () {
    var t0 = performance.now();
    var D = JSON.parse(document.getElementById('probe-data').textContent);
    var marks = ['parse ' + Math.round(performance.now() - t0)];
    function mark(what) { marks.push(what + ' ' + Math.round(performance.now() - t0)); }
    var ROW = 18, MAX_BOXES = 20000, MAX_ROWS = 1000;
    var $ = function (id) { return document.getElementById(id); };

    function fmtNs(ns) {
        if (ns >= 1e9) return (ns / 1e9).toFixed(ns >= 1e10 ? 1 : 2) + ' s';
        if (ns >= 1e6) return (ns / 1e6).toFixed(ns >= 1e7 ? 1 : 2) + ' ms';
        if (ns >= 1e3) return (ns / 1e3).toFixed(ns >= 1e4 ? 1 : 2) + ' \u00b5s';
        return ns + ' ns';
    }
    function fmtInt(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
    function count(n, what) { return fmtInt(n) + ' ' + what + (n === 1 ? '' : 's'); }
    function el(tag, cls, text) {
        var e = document.createElement(tag);
        if (cls) e.className = cls;
        if (text !== undefined) e.textContent = text;
        return e;
    }
    /* A regex from what was typed, or a plain substring match if it is not one. */
    function matcher(text) {
        if (!text) return null;
        try { var re = new RegExp(text, 'i'); return function (s) { return re.test(s); }; }
        catch (e) { var t = text.toLowerCase();
                    return function (s) { return s.toLowerCase().indexOf(t) >= 0; }; }
    }
    /* A warm colour from the name, so one function keeps its colour everywhere. */
    function colour(name) {
        var h = 0;
        for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) | 0;
        h = Math.abs(h);
        return 'hsl(' + (10 + h % 45) + ',' + (70 + (h >> 6) % 20) + '%,' +
               (60 + (h >> 11) % 12) + '%)';
    }

    /* ---- facts ---- */
    function facts() {
        var f = D.facts, dl = $('facts');
        function add(k, v, warn) {
            dl.appendChild(el('dt', null, k));
            dl.appendChild(el('dd', warn ? 'warn' : null, v));
        }
        add('written by', (f.written_by || '?') + '  (pid ' + (f.pid || '?') + ')');
        if (f.clock)
            add('clock', f.clock + ', ' + (f.ps_per_tick / 1000) + ' ns/tick, ' +
                fmtNs(f.elapsed_ns) + ' recorded');
        if (f.sampler) {
            var s = f.sampler;
            add('sampler', s.mode + ' time every ' + fmtNs(s.interval_ns) + ' (' +
                fmtInt(Math.round(1e9 / s.interval_ns)) + ' Hz), ' + fmtInt(s.signals) +
                ' signals, ' + fmtInt(s.expirations) + ' expirations');
            add('samples lost', fmtInt(s.dropped) + ' signals (' +
                fmtInt(s.dropped_expirations) + ' expirations)', s.dropped > 0);
        } else {
            add('sampler', 'did not run');
        }
        if (f.losses) {
            var lost = [];
            for (var k in f.losses) if (f.losses[k]) lost.push(k.replace(/_/g, ' ') + ' ' +
                                                                fmtInt(f.losses[k]));
            add('losses', lost.length ? lost.join(', ') : 'none', lost.length > 0);
        }
        if (f.rusage)
            add('resources', 'user ' +
                fmtNs(f.rusage.user_ns) + ', system ' + fmtNs(f.rusage.system_ns) +
                ', max RSS ' + fmtInt(Math.round(f.rusage.max_rss_bytes / 1024)) + ' KiB');
        add('contents', count(D.sites.length, 'site') + ', ' + count(D.nodes.length, 'call path') +
            ', ' + count(D.stacks.length, 'sampled stack') + ', ' +
            count(D.threads.length, 'listed thread'));
    }

    /* ---- trees for the icicles: {name, v, self, kids, parent, depth} ---- */
    function node(name, parent) {
        return { name: name, v: 0, self: 0, kids: [], parent: parent,
                 depth: parent ? parent.depth + 1 : 0 };
    }
    /* The sampled stacks' tree is built lazily: a node holds the indexes of its
     * stacks, and its children are made when it is drawn wide enough to show them.
     * Building the whole tree of 65,536 deep stacks up front takes seconds. */
    var BLOCKED = -2;
    function frameAt(s, d) {   /* s: [thread, tid, ns, blocked, frames] */
        var f = s[4];
        if (d < f.length) return f[d] >= 0 ? f[d] : -1;
        return d === f.length && s[3] ? BLOCKED : undefined;
    }
    function lazy(name, parent, idx, v) {
        var n = node(name, parent);
        n.kids = null; n.idx = idx; n.v = v;
        return n;
    }
    function kidsOf(n) {
        if (n.kids) return n.kids;
        var groups = new Map(), self = 0, d = n.depth;
        for (var i = 0; i < n.idx.length; i++) {
            var s = D.stacks[n.idx[i]], id = frameAt(s, d);
            if (id === undefined) { self += s[2]; continue; }
            var g = groups.get(id);
            if (!g) groups.set(id, g = { idx: [], v: 0 });
            g.idx.push(n.idx[i]);
            g.v += s[2];
        }
        n.kids = [];
        n.self = self;
        groups.forEach(function (g, id) {
            n.kids.push(lazy(id >= 0 ? D.frames[id] : id === BLOCKED ? '[blocked]' : '?',
                             n, g.idx, g.v));
        });
        return n.kids;
    }
    function sampleTree(thread) {
        var idx = [], v = 0;
        for (var i = 0; i < D.stacks.length; i++) {
            if (thread !== 'all' && String(D.stacks[i][1]) !== thread) continue;
            idx.push(i);
            v += D.stacks[i][2];
        }
        return lazy('all samples', null, idx, v);
    }
    function scopeTree() {
        var root = node('all scopes', null), made = new Array(D.nodes.length);
        for (var i = 0; i < D.nodes.length; i++) {
            var x = D.nodes[i];   /* [parent, site, calls, total, self] */
            var site = D.sites[x[1]], p = x[0] >= 0 && made[x[0]] ? made[x[0]] : root;
            var n = node(site && site[0] !== null ? site[0] : '?', p);
            n.v = x[3]; n.self = x[4]; n.calls = x[2];
            p.kids.push(n);
            made[i] = n;
            if (p === root) root.v += x[3];
        }
        return root;
    }

    /* ---- icicle: root on top, children below, widths by time ---- */
    var searchFn = null;
    function Flame(box, crumbs, empty) {
        this.box = box; this.crumbs = crumbs; this.empty = empty;
        this.root = null; this.zoom = null;
    }
    Flame.prototype.set = function (root) {
        this.root = root; this.zoom = root;
        this.draw();
    };
    Flame.prototype.draw = function () {
        var box = this.box, root = this.root, zoom = this.zoom, self = this;
        box.textContent = '';
        this.crumbs.textContent = '';
        if (!root || !root.v) { box.appendChild(el('div', 'empty', this.empty)); box.style.height = '';
                                return; }
        var W = box.clientWidth || 1000, boxes = 0, deepest = 0;
        var frag = document.createDocumentFragment();
        function put(n, x, w, anc) {
            var d = el('div', 'fr' + (anc ? ' anc' : ''), n.name);
            d.style.left = (x * 100) + '%';
            d.style.width = (w * 100) + '%';
            d.style.top = (n.depth * ROW) + 'px';
            d.style.background = colour(n.name);
            if (searchFn && searchFn(n.name)) d.classList.add('hit');
            d._n = n;
            frag.appendChild(d);
            boxes++;
            if (n.depth > deepest) deepest = n.depth;
        }
        /* The zoomed node's ancestors, full width and faded. */
        for (var a = zoom.parent; a; a = a.parent) put(a, 0, 1, true);
        var todo = [[zoom, 0, 1]];
        while (todo.length && boxes < MAX_BOXES) {
            var t = todo.pop(), n = t[0], x = t[1], w = t[2];
            put(n, x, w, false);
            var kids = kidsOf(n).slice().sort(function (p, q) { return q.v - p.v; });
            for (var i = 0; i < kids.length; i++) {
                var kw = w * kids[i].v / n.v;
                if (kw * W < 1) break;   /* sorted: the rest are narrower still */
                todo.push([kids[i], x, kw]);
                x += kw;
            }
        }
        box.appendChild(frag);
        box.style.height = ((deepest + 1) * ROW) + 'px';
        var path = [];
        for (var z = zoom; z; z = z.parent) path.unshift(z);
        path.forEach(function (z, i) {
            if (i) self.crumbs.appendChild(document.createTextNode(' \u203a '));
            var a = el('a', null, z.name);
            a.onclick = function () { self.zoom = z; self.draw(); };
            self.crumbs.appendChild(a);
        });
    };
    Flame.prototype.listen = function () {
        var self = this, tip = $('tip');
        this.box.addEventListener('click', function (e) {
            var n = e.target._n;
            if (n) { self.zoom = kidsOf(n).length || n === self.root ? n : n.parent || n; self.draw(); }
        });
        this.box.addEventListener('mousemove', function (e) {
            var n = e.target._n;
            if (!n) { tip.style.display = 'none'; return; }
            kidsOf(n);   /* its self time */
            tip.textContent = n.name + '\n' + fmtNs(n.v) + ' (' +
                (100 * n.v / self.root.v).toFixed(1) + '%), self ' + fmtNs(n.self) +
                (n.calls !== undefined ? ', ' + fmtInt(n.calls) + ' calls' : '');
            tip.style.display = 'block';
            tip.style.left = Math.min(e.clientX + 12, innerWidth - 540) + 'px';
            tip.style.top = (e.clientY + 14) + 'px';
        });
        this.box.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
    };
    /* The share of the sampled time (of the picked thread) in stacks with a frame that
     * matches: each name tested once, each stack scanned once. */
    function matchedShare(root) {
        var hit = D.frames.map(function (f) { return searchFn(f); }), sum = 0;
        var blocked = searchFn('[blocked]');
        for (var i = 0; i < root.idx.length; i++) {
            var s = D.stacks[root.idx[i]], f = s[4], m = blocked && s[3];
            for (var d = 0; !m && d < f.length; d++) m = f[d] >= 0 && hit[f[d]];
            if (m) sum += s[2];
        }
        return root.v ? 100 * sum / root.v : 0;
    }

    /* ---- the scopes table ---- */
    var KEYS = { name: 0, calls: 5, self: 7, total: 6, p50: 8, p99: 9, where: 2 };
    var sortKey = 'total', sortDesc = true;
    var scopes = D.sites.filter(function (s) { return s[1] === 0 && s[0] !== null; });
    function where(s) { return (s[2] || '?') + ':' + s[3]; }
    function drawTable() {
        var f = matcher($('filter').value), col = KEYS[sortKey];
        var rows = scopes.filter(function (s) { return !f || f(s[0]) || f(s[4] || ''); });
        rows.sort(function (p, q) {
            var a = sortKey === 'where' ? where(p) : p[col], b = sortKey === 'where' ? where(q) : q[col];
            var c = typeof a === 'string' ? a.localeCompare(b) : a - b;
            if (!c) c = p[0].localeCompare(q[0]);
            return sortDesc ? -c : c;
        });
        var body = $('scopes').tBodies[0], frag = document.createDocumentFragment();
        body.textContent = '';
        rows.slice(0, MAX_ROWS).forEach(function (s) {
            var tr = el('tr', searchFn && searchFn(s[0]) ? 'hit' : null);
            var name = el('td', 'name', s[0]);
            name.title = s[4] || '';
            tr.appendChild(name);
            tr.appendChild(el('td', 'num', fmtInt(s[5])));
            [7, 6, 8, 9].forEach(function (k) { tr.appendChild(el('td', 'num', fmtNs(s[k]))); });
            tr.appendChild(el('td', null, where(s)));
            frag.appendChild(tr);
        });
        if (!rows.length) {   /* say so, rather than a bare header */
            var td = el('td', 'empty', scopes.length ? 'no scope matches the filter'
                                                     : 'no PROBE_SCOPE in this report');
            td.colSpan = 7;
            frag.appendChild(el('tr')).appendChild(td);
        }
        body.appendChild(frag);
        $('table-note').textContent = rows.length > MAX_ROWS
            ? '(first ' + fmtInt(MAX_ROWS) + ' of ' + fmtInt(rows.length) + ')'
            : '(' + fmtInt(rows.length) + ' of ' + fmtInt(scopes.length) + ')';
        var ths = $('scopes').tHead.rows[0].cells;
        for (var i = 0; i < ths.length; i++) {
            var on = ths[i].dataset.key === sortKey;
            ths[i].className = (ths[i].className.replace(/ ?(sorted|asc|desc)/g, '') +
                                (on ? ' sorted ' + (sortDesc ? 'desc' : 'asc') : '')).trim();
        }
        $('scopes').dataset.sort = sortKey + (sortDesc ? ':desc' : ':asc');
    }
    $('scopes').tHead.addEventListener('click', function (e) {
        var key = e.target.dataset && e.target.dataset.key;
        if (!key) return;
        if (key === sortKey) sortDesc = !sortDesc;
        else { sortKey = key; sortDesc = key !== 'name' && key !== 'where'; }
        drawTable();
    });
    $('filter').addEventListener('input', drawTable);

    /* ---- threads, search, wiring ---- */
    var samples = new Flame($('flame-samples'), $('samples-crumbs'), 'no sampled stacks (the sampler did not run)');
    var scopeFlame = new Flame($('flame-scopes'), $('scopes-crumbs'), 'no scope calls');
    samples.listen(); scopeFlame.listen();
    var picker = $('thread'), seen = new Map();
    D.stacks.forEach(function (s) { seen.set(s[1], (seen.get(s[1]) || 0) + s[2]); });
    D.threads.forEach(function (t) { if (!seen.has(t[0])) seen.set(t[0], 0); });
    var names = new Map(D.threads.map(function (t) { return [t[0], t[1]]; }));
    Array.from(seen.keys()).sort(function (a, b) { return seen.get(b) - seen.get(a); })
        .forEach(function (tid) {
            var o = el('option', null, (names.get(tid) ? names.get(tid) + ' ' : '') + 'tid ' + tid +
                       (seen.get(tid) ? ' (' + fmtNs(seen.get(tid)) + ' sampled)' : ''));
            o.value = String(tid);
            picker.appendChild(o);
        });
    picker.addEventListener('change', function () { samples.set(sampleTree(picker.value)); });
    function search() {
        searchFn = matcher($('search').value);
        document.body.classList.toggle('searching', !!searchFn);
        samples.draw(); scopeFlame.draw(); drawTable();
        $('match').textContent = searchFn && samples.root.v
            ? matchedShare(samples.root).toFixed(1) + '% of sampled time matches' : '';
    }
    $('search').addEventListener('input', search);
    addEventListener('resize', function () { samples.draw(); scopeFlame.draw(); });

    facts();
    var tree = sampleTree('all'); mark('stacks');
    samples.set(tree); mark('draw-stacks');
    tree = scopeTree(); mark('scopes');
    scopeFlame.set(tree); mark('draw-scopes');
    drawTable(); mark('table');

    /* Test hooks (see the top). */
    var hash = decodeURIComponent(location.hash.slice(1));
    hash.split('&').forEach(function (kv) {
        var i = kv.indexOf('='), k = kv.slice(0, i), v = kv.slice(i + 1);
        if (k === 'click')
            v.split(',').forEach(function (key) {
                var th = document.querySelector('#scopes th[data-key="' + key + '"]');
                if (th) th.dispatchEvent(new MouseEvent('click', { bubbles: true }));
            });
        if (k === 'search') { $('search').value = v; search(); }
        if (k === 'zoom')   /* a click on the first sampled box of that name */
            Array.prototype.some.call($('flame-samples').children, function (b) {
                if (b.textContent !== v) return false;
                b.dispatchEvent(new MouseEvent('click', { bubbles: true }));
                return true;
            });
    });
    document.body.dataset.renderMs = String(Math.round(performance.now() - t0));
    document.body.dataset.marks = marks.join(', ');
    document.body.dataset.sinceNavigationMs = String(Math.round(performance.now()));
    document.body.dataset.ready = '1';
})();
