/*
 * The "tree" formatter: the sampled stacks as a call tree, after pyinstrument. One
 * tree per thread, root first; each line is a frame with its share of the thread's
 * CPU time (total and self), its samples and its CPU time; children sorted by time,
 * small ones collapsed into one line. PROBE_SCOPEs open at a sample appear as
 * "[scope name]" pseudo-frames inside the native frame that ran them. With the heap
 * profiler on, the top allocation sites follow the trees. Documented in
 * docs/formats.md.
 */
#include "tree.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <probe/sampler.h>

#include "cells.h"
#include "core/heapsum.h"
#include "core/snapshot.h"
#include "options.h"
#include "writer.h"

/* The tree stops descending here, and stops printing after so many lines. */
#define TREE_DEPTH 64
#define TREE_LINES 2000
/* Room for a time cell ("123.456 ms"). */
#define TREE_CELL 32
/* Longest option value ("threshold=12.5"). */
#define TREE_VALUE_MAX 31

struct tree_options {
    double threshold; /* percent of the thread's time; nodes at or below it collapse */
    int hide_libs;    /* frames without a symbol fold into their caller */
};

/* A node of one thread's tree: a frame (or scope) reached by one path. */
struct tree_node {
    const char *name; /* owned by the snapshot */
    int scope;        /* 1 for a PROBE_SCOPE pseudo-frame */
    size_t parent;    /* TREE_NONE for a root */
    size_t child;     /* first child, or TREE_NONE */
    size_t next;      /* next sibling, or TREE_NONE */
    uint64_t total_ns, self_ns;
    uint64_t total_weight, self_weight;
    uint64_t signals;
};

#define TREE_NONE ((size_t)-1)

/* One path element while a sample is added. */
struct tree_step {
    const char *name;
    int scope;
};

struct tree {
    probe_writer *w;
    const probe_snapshot *snap;
    struct tree_options o;
    struct tree_node *nodes;
    size_t nnodes, cap;
    size_t roots;           /* first root, or TREE_NONE */
    struct tree_step *path; /* room for the longest sample */
    size_t path_cap;
    uint64_t thread_ns, thread_weight;
    int by_weight; /* shares from expirations: no CPU time was recorded */
    size_t lines;
    int cut;
};

/* ---- options ----------------------------------------------------------------- */

static int
tree_parse_threshold(const char *v, size_t len, double *out)
{
    char buf[TREE_VALUE_MAX + 1];
    char *end;

    if (len == 0 || len > TREE_VALUE_MAX)
        return PROBE_EINVAL;
    memcpy(buf, v, len);
    buf[len] = '\0';

    double d = strtod(buf, &end);

    if (*end != '\0' || !isfinite(d) || d < 0 || d > 100)
        return PROBE_EINVAL;
    *out = d;
    return 0;
}

/* "key=value[,key=value...]"; keys "threshold" (0..100) and "hide_libs" (0|1). */
static int
tree_parse_options(const char *options, struct tree_options *out, struct options_error *err)
{
    const char *all = options;
    struct tree_options o = {.threshold = 1.0, .hide_libs = 0};
    struct option_kv kv;
    int more;

    while ((more = options_next(&options, &kv)) > 0) {
        if (options_key(&kv, "threshold")) {
            if (tree_parse_threshold(kv.value, kv.vlen, &o.threshold) < 0)
                return options_fail(err, "tree", &kv,
                                    "threshold is a percentage from 0 to 100");
        } else if (options_key(&kv, "hide_libs") && options_value(&kv, "0")) {
            o.hide_libs = 0;
        } else if (options_key(&kv, "hide_libs") && options_value(&kv, "1")) {
            o.hide_libs = 1;
        } else if (options_key(&kv, "hide_libs")) {
            return options_fail(err, "tree", &kv, "hide_libs is 0 or 1");
        } else {
            return options_fail_key(err, "tree", &kv, "threshold=PCT, hide_libs=0|1");
        }
    }
    if (more < 0)
        return options_fail_empty(err, "tree", all);
    *out = o;
    return 0;
}

int
tree_check_options(const char *options, struct options_error *err)
{
    struct tree_options o;

    return tree_parse_options(options, &o, err);
}

/* ---- cells ------------------------------------------------------------------- */

/* An empty name is shown as "?" here: a frame always has something to show. */
static int
tree_put_name(probe_writer *w, const char *s)
{
    return cells_put_name(w, s && *s ? s : NULL);
}

/* A frame without a symbol: "module+0xoffset" (sampler.h never prints bare
 * addresses). */
static int
tree_unsymbolized(const char *name)
{
    const char *plus = name ? strstr(name, "+0x") : NULL;

    if (!plus || plus == name)
        return 0;
    /* The last "+0x" starts the offset, which runs to the end in hex. */
    for (const char *q; (q = strstr(plus + 1, "+0x"));)
        plus = q;

    const char *hex = plus + 3;

    return *hex && strspn(hex, "0123456789abcdefABCDEF") == strlen(hex);
}

/* ---- building ---------------------------------------------------------------- */

/* The child of @parent (TREE_NONE: a root) for @step, created if missing.
 * @return its index, or TREE_NONE when out of memory. */
static size_t
tree_child(struct tree *t, size_t parent, const struct tree_step *step)
{
    size_t *link = parent == TREE_NONE ? &t->roots : &t->nodes[parent].child;

    for (size_t i = *link; i != TREE_NONE; i = t->nodes[i].next) {
        if (t->nodes[i].scope == step->scope && strcmp(t->nodes[i].name, step->name) == 0)
            return i;
    }
    if (t->nnodes == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        struct tree_node *n = realloc(t->nodes, cap * sizeof(*n));

        if (!n)
            return TREE_NONE;
        t->nodes = n;
        t->cap = cap;
        /* @link may point into the old array. */
        link = parent == TREE_NONE ? &t->roots : &t->nodes[parent].child;
    }

    size_t i = t->nnodes++;

    t->nodes[i] = (struct tree_node){.name = step->name,
                                     .scope = step->scope,
                                     .parent = parent,
                                     .child = TREE_NONE,
                                     .next = *link};
    *link = i;
    return i;
}

/* The function a scope was declared in, from its site; NULL if unknown. */
static const char *
tree_scope_function(const probe_snapshot *snap, const char *scope)
{
    const probe_site_info *s = probe_snapshot_find(snap, scope);

    return s && s->function && *s->function ? s->function : NULL;
}

/*
 * The path of sample @s, root first, into t->path: its frames (without the
 * unsymbolized ones under hide_libs, keeping at least one), each scope placed after
 * the frame of the function that declared it (searching down from where the
 * enclosing scope went), or after the deepest frame when no frame has that name;
 * then, for a blocked sample (wall mode), a "[blocked]" pseudo-frame.
 * @return the path's length, or a negative error.
 */
static long
tree_path(struct tree *t, const probe_sample_info *s)
{
    size_t need = (size_t)s->depth + s->nscopes + 1;

    if (need > t->path_cap) {
        struct tree_step *p = realloc(t->path, need * sizeof(*p));

        if (!p)
            return PROBE_ENOMEM;
        t->path = p;
        t->path_cap = need;
    }

    unsigned kept = 0;
    size_t n = 0;
    unsigned sc = 0;

    for (unsigned k = 0; k < s->depth; k++) {
        if (!t->o.hide_libs || !tree_unsymbolized(s->frames[k]))
            kept++;
    }
    for (unsigned k = 0; k < s->depth; k++) {
        int last = k + 1 == s->depth;

        if (t->o.hide_libs && (kept > 0 ? tree_unsymbolized(s->frames[k]) : !last))
            continue;
        t->path[n++] = (struct tree_step){s->frames[k], 0};
        /* The scopes declared in this frame's function (nested ones of one function
         * stay under one frame), and at the deepest frame all that are left. */
        while (sc < s->nscopes) {
            const char *fn = tree_scope_function(t->snap, s->scopes[sc]);

            if (!last && !(fn && strcmp(fn, s->frames[k]) == 0))
                break;
            t->path[n++] = (struct tree_step){s->scopes[sc++], 1};
        }
    }
    /* A sample without frames: its scopes alone. */
    while (sc < s->nscopes)
        t->path[n++] = (struct tree_step){s->scopes[sc++], 1};
    /* Wall mode: time off the CPU shows under where the thread blocked. */
    if (s->blocked && n > 0)
        t->path[n++] = (struct tree_step){PROBE_SAMPLE_BLOCKED_FRAME, 0};
    return (long)n;
}

/* Add sample @s to the tree. */
static int
tree_add(struct tree *t, const probe_sample_info *s)
{
    long n = tree_path(t, s);

    if (n < 0)
        return (int)n;
    if (n == 0)
        return 0;

    size_t cur = TREE_NONE;

    for (long k = 0; k < n; k++) {
        cur = tree_child(t, cur, &t->path[k]);
        if (cur == TREE_NONE)
            return PROBE_ENOMEM;
        t->nodes[cur].total_ns += s->cpu_ns;
        t->nodes[cur].total_weight += s->weight;
        t->nodes[cur].signals += s->signals;
    }
    t->nodes[cur].self_ns += s->cpu_ns;
    t->nodes[cur].self_weight += s->weight;
    return 0;
}

/* ---- printing ---------------------------------------------------------------- */

/* Decimals that show @threshold as given: 1 (1.0, 2.5) unless it has more (0.25). */
static int
tree_precision(double threshold)
{
    double tenths = threshold * 10;

    return fabs(tenths - round(tenths)) < 1e-9 ? 1 : 3;
}

static double
tree_share(const struct tree *t, uint64_t ns, uint64_t weight)
{
    if (t->by_weight)
        return t->thread_weight ? 100.0 * (double)weight / (double)t->thread_weight : 0;
    return t->thread_ns ? 100.0 * (double)ns / (double)t->thread_ns : 0;
}

static double
tree_total(const struct tree *t, size_t i)
{
    return tree_share(t, t->nodes[i].total_ns, t->nodes[i].total_weight);
}

/* Count one more line; 0 once the budget is spent, and the tree says it was cut. */
static int
tree_budget(struct tree *t)
{
    if (t->lines < TREE_LINES) {
        t->lines++;
        return 1;
    }
    t->cut = 1;
    return 0;
}

/* The numeric columns and the indentation of a line at @depth. */
static int
tree_columns(struct tree *t, double total, double self, uint64_t signals, uint64_t ns,
             unsigned depth)
{
    char cell[TREE_CELL];
    const char *time = cells_time_trim(cell, sizeof(cell), ns);
    int cols = 0;

    /* Right-aligned in 9 columns: UTF-8 continuation bytes take none. */
    for (const char *p = time; *p; p++)
        cols += ((unsigned char)*p & 0xc0) != 0x80;
    TRY(probe_writer_printf(t->w, "%6.1f%% %6.1f%% %8" PRIu64 "  %*s%s  ", total, self,
                            signals, cols < 9 ? 9 - cols : 0, "", time));
    for (unsigned d = 0; d < depth; d++)
        TRY(probe_writer_puts(t->w, "  "));
    return 0;
}

static size_t
tree_count(const struct tree *t, size_t i)
{
    size_t n = 1;

    for (size_t c = t->nodes[i].child; c != TREE_NONE; c = t->nodes[c].next)
        n += tree_count(t, c);
    return n;
}

/* A sibling, with what it sorts by. */
struct tree_key {
    uint64_t value;
    int scope;
    const char *name;
    size_t node;
};

/* Most time first; ties by name, frames before scopes. */
static int
tree_by_total(const void *a, const void *b)
{
    const struct tree_key *x = a, *y = b;

    if (x->value != y->value)
        return x->value > y->value ? -1 : 1;
    if (x->scope != y->scope)
        return x->scope - y->scope;
    return strcmp(x->name, y->name);
}

/* One line for the siblings @kids[0..n) left out: "… N frames at or below X%", or
 * "… N frames @why". */
static int
tree_collapsed_line(struct tree *t, const size_t *kids, size_t n, unsigned depth,
                    const char *why)
{
    uint64_t ns = 0, weight = 0, signals = 0;
    size_t frames = 0;

    if (n == 0 || !tree_budget(t))
        return 0;
    for (size_t i = 0; i < n; i++) {
        ns += t->nodes[kids[i]].total_ns;
        weight += t->nodes[kids[i]].total_weight;
        signals += t->nodes[kids[i]].signals;
        frames += tree_count(t, kids[i]);
    }
    TRY(tree_columns(t, tree_share(t, ns, weight), 0.0, signals, ns, depth));
    if (why)
        return probe_writer_printf(t->w, "\xe2\x80\xa6 %zu frame%s %s\n", frames,
                                   frames == 1 ? "" : "s", why);
    return probe_writer_printf(t->w, "\xe2\x80\xa6 %zu frame%s at or below %.*f%%\n",
                               frames, frames == 1 ? "" : "s",
                               tree_precision(t->o.threshold), t->o.threshold);
}

static int tree_children(struct tree *t, size_t first, unsigned depth, int roots);

static int
tree_node_line(struct tree *t, size_t i, unsigned depth)
{
    const struct tree_node *n = &t->nodes[i];

    if (!tree_budget(t))
        return 0;
    TRY(tree_columns(t, tree_total(t, i), tree_share(t, n->self_ns, n->self_weight),
                     n->signals, n->total_ns, depth));
    if (n->scope) {
        TRY(probe_writer_puts(t->w, "[scope "));
        TRY(tree_put_name(t->w, n->name));
        TRY(probe_writer_puts(t->w, "]"));
    } else {
        TRY(tree_put_name(t->w, n->name));
    }
    TRY(probe_writer_puts(t->w, "\n"));
    if (n->child == TREE_NONE)
        return 0;
    return tree_children(t, n->child, depth + 1, 0);
}

/* The siblings from @first, sorted by time; the small ones in one line unless they
 * are roots (always shown). */
static int
tree_children(struct tree *t, size_t first, unsigned depth, int roots)
{
    size_t n = 0;

    for (size_t c = first; c != TREE_NONE; c = t->nodes[c].next)
        n++;

    struct tree_key *keys = malloc(n * sizeof(*keys));
    size_t *kids = malloc(n * sizeof(*kids));

    if (!keys || !kids) {
        free(keys);
        free(kids);
        return PROBE_ENOMEM;
    }
    n = 0;
    for (size_t c = first; c != TREE_NONE; c = t->nodes[c].next, n++) {
        const struct tree_node *x = &t->nodes[c];

        keys[n] = (struct tree_key){t->by_weight ? x->total_weight : x->total_ns,
                                    x->scope, x->name, c};
    }
    qsort(keys, n, sizeof(*keys), tree_by_total);
    for (size_t i = 0; i < n; i++)
        kids[i] = keys[i].node;
    free(keys);

    int r = 0;
    size_t shown = 0;

    if (depth >= TREE_DEPTH) {
        char why[64];

        snprintf(why, sizeof(why), "deeper (depth limit %d)", TREE_DEPTH);
        r = tree_collapsed_line(t, kids, n, depth, why);
        free(kids);
        return r;
    }
    for (; shown < n && r == 0 && !t->cut; shown++) {
        if (!roots && !(tree_total(t, kids[shown]) > t->o.threshold))
            break;
        r = tree_node_line(t, kids[shown], depth);
    }
    if (r == 0 && !t->cut)
        r = tree_collapsed_line(t, kids + shown, n - shown, depth, NULL);
    free(kids);
    return r;
}

/* One thread: its samples, then its tree. */
static int
tree_thread(struct tree *t, uint64_t tid)
{
    size_t count = probe_snapshot_sample_count(t->snap);
    const char *name = "";
    uint64_t signals = 0;

    t->nnodes = 0;
    t->roots = TREE_NONE;
    t->thread_ns = t->thread_weight = 0;
    for (size_t i = 0; i < count; i++) {
        const probe_sample_info *s = probe_snapshot_sample(t->snap, i);

        if (!s || s->tid != tid)
            continue;
        if (s->thread != PROBE_SAMPLE_NO_THREAD) {
            const probe_thread_info *th = probe_snapshot_thread(t->snap, s->thread);

            if (th && th->name)
                name = th->name;
        }
        t->thread_ns += s->cpu_ns;
        t->thread_weight += s->weight;
        signals += s->signals;
        TRY(tree_add(t, s));
    }
    t->by_weight = t->thread_ns == 0;

    char cell[TREE_CELL];

    if (!tree_budget(t))
        return 0;
    TRY(probe_writer_puts(t->w, "\nThread "));
    if (*name) {
        TRY(tree_put_name(t->w, name));
        TRY(probe_writer_puts(t->w, " "));
    }
    int wall = probe_snapshot_sampler_info(t->snap)->mode == PROBE_SAMPLE_WALL;
    TRY(probe_writer_printf(t->w, "(tid %" PRIu64 "): %" PRIu64 " samples, %s %s\n", tid,
                            signals, cells_time_trim(cell, sizeof(cell), t->thread_ns),
                            wall ? "sampled" : "CPU"));
    if (!tree_budget(t))
        return 0;
    TRY(probe_writer_puts(t->w, wall ? "  total    self  samples       time  call tree\n"
                                     : "  total    self  samples        CPU  call tree\n"));
    if (t->roots == TREE_NONE)
        return 0;
    return tree_children(t, t->roots, 0, 1);
}

static int
tree_header(probe_writer *w, const probe_snapshot *snap, const struct tree_options *o)
{
    const probe_sampler_info *si = probe_snapshot_sampler_info(snap);
    char cell[TREE_CELL];

    TRY(probe_writer_printf(w, "Sampled call tree (%s, %s interval): ",
                            si->mode == PROBE_SAMPLE_WALL
                                ? "wall time: on CPU, and " PROBE_SAMPLE_BLOCKED_FRAME
                                  " off it"
                                : "CPU time",
                            cells_time_trim(cell, sizeof(cell), si->interval_ns)));
    TRY(probe_writer_printf(
        w, "%" PRIu64 " signals, %" PRIu64 " expirations, %" PRIu64 " dropped\n",
        si->signals, si->expirations, si->dropped));
    TRY(probe_writer_printf(w, "Frames at or below %.*f%% of their thread collapsed",
                            tree_precision(o->threshold), o->threshold));
    if (o->hide_libs)
        TRY(probe_writer_puts(w, "; frames without a symbol folded into their caller"));
    return probe_writer_puts(w, ".\n");
}

/* The heap profiler's top allocation sites, by estimated bytes allocated, each with
 * the allocating function and two callers; nothing when the profiler is off. */
static int
tree_heap(probe_writer *w, const probe_snapshot *snap)
{
    const struct heapsum *h = snap->heap;

    if (!h)
        return 0;
    TRY(probe_writer_printf(w, "\nHeap: top allocation sites (PROBE_MEM=1, estimated from "
                               "%" PRIu64 " samples, one per %" PRIu64 " bytes):\n",
                            h->samples, h->mean));
    if (snap->heap_sites_partial)
        TRY(probe_writer_printf(w, "  (merged: summed over each process's own top %d "
                                   "sites; a site below one's top %d misses its share)\n",
                                HEAPSUM_SITES, HEAPSUM_SITES));
    if (!h->nsites)
        return probe_writer_puts(w, "  none sampled\n");
    TRY(probe_writer_puts(w, "         bytes       blocks  site\n"));
    for (size_t i = 0; i < h->nsites; i++) {
        const struct heapsum_site *s = &h->sites[i];

        TRY(probe_writer_printf(w, "  %12" PRIu64 " %12" PRIu64 "  ", (uint64_t)(s->bytes + 0.5),
                                (uint64_t)(s->blocks + 0.5)));
        for (unsigned k = 0; k < s->nframes; k++) {
            if (k)
                TRY(probe_writer_puts(w, " <- "));
            TRY(tree_put_name(w, s->frames[k]));
        }
        TRY(probe_writer_puts(w, "\n"));
    }
    return 0;
}

int
tree_write(const probe_snapshot *snap, probe_writer *w, const char *options, void *user)
{
    struct tree t = {.w = w, .snap = snap, .roots = TREE_NONE};
    size_t count = probe_snapshot_sample_count(snap);

    (void)user;
    TRY(tree_parse_options(options, &t.o, NULL));
    if (count == 0) {
        const probe_sampler_info *si = probe_snapshot_sampler_info(snap);

        if (si && si->interval_ns == 0)
            TRY(probe_writer_puts(w, "No samples: the sampler never ran "
                                     "(probe_sampler_start(), <probe/sampler.h>).\n"));
        else
            TRY(probe_writer_puts(w, "No samples: the sampler ran but recorded none.\n"));
        return tree_heap(w, snap);
    }
    TRY(tree_header(w, snap, &t.o));

    int r = 0;

    /* Threads in the order their samples come, each once. Samples come grouped
     * by thread, so the list is searched only when the tid changes. */
    uint64_t *tids = malloc(count * sizeof(*tids));
    size_t ntids = 0;

    if (!tids)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);
        int seen = 0;

        if (!s || (ntids > 0 && tids[ntids - 1] == s->tid))
            continue;
        for (size_t j = 0; j < ntids && !seen; j++)
            seen = tids[j] == s->tid;
        if (!seen)
            tids[ntids++] = s->tid;
    }
    for (size_t i = 0; i < ntids && r == 0 && !t.cut; i++)
        r = tree_thread(&t, tids[i]);
    free(tids);
    if (r == 0 && t.cut)
        r = probe_writer_printf(w, "... (tree cut at %d lines)\n", TREE_LINES);
    if (r == 0)
        r = tree_heap(w, snap);
    free(t.nodes);
    free(t.path);
    return r;
}
