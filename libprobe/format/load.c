/* probe_snapshot_load(): a probe/1 JSON report (docs/json-schema.md) back into a
 * snapshot. jsonread.c checks the syntax; this file checks the schema: every field
 * of the right type, every index in range, so formatters can trust what they read. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/report.h>
#include <probe/sampler.h>

#include "core/heapsum.h"
#include "core/samples.h"
#include "core/snapshot.h"
#include "jsonread.h"
#include "mem/msnap.h"

struct ld {
    const struct jdoc *d;
    probe_load_error *err;
    int rc;
};

static int
ld_fail(struct ld *l, const struct jv *at, int rc, const char *fmt, ...)
{
    va_list ap;

    if (l->rc)
        return l->rc;
    l->rc = rc;
    if (l->err) {
        l->err->code = rc;
        l->err->offset = at ? at->offset : 0;
        va_start(ap, fmt);
        vsnprintf(l->err->message, sizeof(l->err->message), fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Member @key of @obj of type @t (JV_INT stands for a non-negative integer); NULL
 * if absent and optional. A member of the wrong type is an error. */
static const struct jv *
ld_member(struct ld *l, const struct jv *obj, const char *where, const char *key, int t,
          int required, int nullable)
{
    static const char *const names[] = {"null", "a boolean", "a boolean",
                                        "an integer >= 0", "a number", "a string",
                                        "an array", "an object"};
    const struct jv *v = jv_get(l->d, obj, key);

    if (!v) {
        if (required)
            ld_fail(l, obj, PROBE_EINVAL, "%s: expected member \"%s\" (%s)", where, key,
                    names[t]);
        return NULL;
    }
    if (v->type == JV_NULL && nullable)
        return NULL;
    int ok = v->type == t || (t == JV_TRUE && v->type == JV_FALSE) ||
             (t == JV_NUM && v->type == JV_INT && !v->neg);
    if (t == JV_INT && v->neg)
        ok = 0;
    if (!ok) {
        ld_fail(l, v, PROBE_EINVAL, "%s.%s: expected %s%s", where, key, names[t],
                nullable ? " or null" : "");
        return NULL;
    }
    return v;
}

static uint64_t
ld_u64(struct ld *l, const struct jv *obj, const char *where, const char *key, int req)
{
    const struct jv *v = ld_member(l, obj, where, key, JV_INT, req, 0);
    return v ? v->u : 0;
}

/* A signed 64-bit integer member, 0 when absent. */
static int64_t
ld_i64(struct ld *l, const struct jv *obj, const char *where, const char *key)
{
    const struct jv *v = jv_get(l->d, obj, key);

    if (!v)
        return 0;
    if (v->type != JV_INT ||
        (v->neg ? v->u > (uint64_t)INT64_MAX + 1 : v->u > INT64_MAX)) {
        ld_fail(l, v, PROBE_EINVAL, "%s.%s: expected a signed 64-bit integer", where, key);
        return 0;
    }
    return v->neg ? (int64_t)(0 - v->u) : (int64_t)v->u;
}

/* An index below @n, or @none for null. */
static size_t
ld_index(struct ld *l, const struct jv *obj, const char *where, const char *key, size_t n,
         size_t none)
{
    const struct jv *v = ld_member(l, obj, where, key, JV_INT, none == 0, none != 0);

    if (!v)
        return none;
    if (v->u >= n) {
        ld_fail(l, v, PROBE_EINVAL, "%s.%s: expected an index below %zu", where, key, n);
        return none;
    }
    return (size_t)v->u;
}

static const char *
ld_str(struct ld *l, const struct jv *obj, const char *where, const char *key, int req,
       int nullable)
{
    const struct jv *v = ld_member(l, obj, where, key, JV_STR, req, nullable);
    return v ? v->s : NULL;
}

static int
ld_bool(struct ld *l, const struct jv *obj, const char *where, const char *key, int req)
{
    const struct jv *v = ld_member(l, obj, where, key, JV_TRUE, req, 0);
    return v && v->type == JV_TRUE;
}

static const struct jv *
ld_array(struct ld *l, const struct jv *obj, const char *key, int req)
{
    return ld_member(l, obj, "report", key, JV_ARR, req, 0);
}

static const struct jv *
ld_elem_obj(struct ld *l, const struct jv *e, const char *where)
{
    if (e->type != JV_OBJ) {
        ld_fail(l, e, PROBE_EINVAL, "%s: expected an object", where);
        return NULL;
    }
    return e;
}

static int
ld_kind(struct ld *l, const struct jv *o, const char *where, probe_kind *out)
{
    const char *k = ld_str(l, o, where, "kind", 1, 0);

    if (!k)
        return l->rc;
    if (strcmp(k, "scope") == 0)
        *out = PROBE_KIND_SCOPE;
    else if (strcmp(k, "line") == 0)
        *out = PROBE_KIND_LINE;
    else if (strcmp(k, "counter") == 0)
        *out = PROBE_KIND_COUNTER;
    else
        return ld_fail(l, jv_get(l->d, o, "kind"), PROBE_EINVAL,
                       "%s.kind: expected \"scope\", \"line\" or \"counter\"", where);
    return 0;
}

static int
ld_hist(struct ld *l, const struct jv *site, const char *where, probe_snapshot *snap,
        size_t *nb, size_t cap)
{
    const struct jv *h = ld_member(l, site, where, "hist", JV_ARR, 0, 0);
    long last = -1;

    for (const struct jv *e = jv_first(l->d, h); e; e = jv_next(l->d, e)) {
        const struct jv *b = jv_first(l->d, e), *c = jv_next(l->d, b);
        if (e->type != JV_ARR || e->count != 2 || b->type != JV_INT || b->neg ||
            c->type != JV_INT || c->neg || b->u >= 192 || (long)b->u <= last || !c->u)
            return ld_fail(l, e, PROBE_EINVAL,
                           "%s.hist: expected [bucket, count] pairs, buckets rising "
                           "below 192, counts > 0", where);
        if (*nb >= cap)
            return ld_fail(l, e, PROBE_EINVAL, "%s.hist: too many buckets", where);
        last = (long)b->u;
        snap->buckets[(*nb)++] = (struct snap_bucket){(uint32_t)b->u, c->u};
    }
    return l->rc;
}

static int
ld_sites(struct ld *l, const struct jv *root, probe_snapshot *snap)
{
    const struct jv *arr = ld_array(l, root, "sites", 1);
    size_t nb = 0, cap = 0;

    if (!arr)
        return l->rc;
    /* Bucket pairs are at most 192 per site; count them first. */
    for (const struct jv *e = jv_first(l->d, arr); e; e = jv_next(l->d, e)) {
        const struct jv *h = jv_get(l->d, e, "hist");
        cap += h && h->type == JV_ARR ? h->count : 0;
    }
    snap->sites = calloc(arr->count ? arr->count : 1, sizeof(*snap->sites));
    snap->hist_at = calloc(arr->count + 1u, sizeof(*snap->hist_at));
    snap->buckets = calloc(cap ? cap : 1, sizeof(*snap->buckets));
    if (!snap->sites || !snap->hist_at || !snap->buckets)
        return ld_fail(l, arr, PROBE_ENOMEM, "out of memory");
    size_t i = 0;
    for (const struct jv *e = jv_first(l->d, arr); e; e = jv_next(l->d, e), i++) {
        char where[48];
        snprintf(where, sizeof(where), "sites[%zu]", i);
        const struct jv *o = ld_elem_obj(l, e, where);
        probe_site_info *s = &snap->sites[i];
        if (!o)
            return l->rc;
        s->index = i;
        const struct jv *id = ld_member(l, o, where, "id", JV_INT, 0, 0);
        if (id && id->u != i)
            return ld_fail(l, id, PROBE_EINVAL, "%s.id: expected %zu, its index", where, i);
        if (ld_kind(l, o, where, &s->kind))
            return l->rc;
        s->name = ld_str(l, o, where, "name", 1, 1);
        s->file = ld_str(l, o, where, "file", 1, 1);
        s->function = ld_str(l, o, where, "function", 1, 1);
        uint64_t line = ld_u64(l, o, where, "line", 1);
        if (line > UINT32_MAX)
            return ld_fail(l, jv_get(l->d, o, "line"), PROBE_ERANGE,
                           "%s.line: expected a line number below 2^32", where);
        s->line = (unsigned)line;
        s->calls = ld_u64(l, o, where, "calls", 1);
        s->prim_calls = ld_u64(l, o, where, "prim_calls", 0);
        s->total_ns = ld_u64(l, o, where, "total_ns", 1);
        s->self_ns = ld_u64(l, o, where, "self_ns", 1);
        s->min_ns = ld_u64(l, o, where, "min_ns", 1);
        s->max_ns = ld_u64(l, o, where, "max_ns", 1);
        s->p50_ns = ld_u64(l, o, where, "p50_ns", 0);
        s->p90_ns = ld_u64(l, o, where, "p90_ns", 0);
        s->p99_ns = ld_u64(l, o, where, "p99_ns", 0);
        /* Signed: a counter may go below zero. */
        const struct jv *val = jv_get(l->d, o, "value");
        if (val && (val->type != JV_INT || (val->neg ? val->u > (uint64_t)INT64_MAX + 1
                                                      : val->u > INT64_MAX)))
            return ld_fail(l, val, PROBE_EINVAL,
                           "%s.value: expected a signed 64-bit integer", where);
        if (val)
            s->value = val->neg ? (int64_t)(0 - val->u) : (int64_t)val->u;
        const struct jv *ld = jv_get(l->d, o, "loaded");
        s->loaded = ld ? ld_bool(l, o, where, "loaded", 0) : 1;
        const struct jv *u = ld_member(l, o, where, "usage", JV_OBJ, 0, 1);
        if (u) {
            char uw[64];
            snprintf(uw, sizeof(uw), "%s.usage", where);
            s->has_usage = 1;
            s->usage_calls = ld_u64(l, u, uw, "calls", 1);
            s->user_ns = ld_u64(l, u, uw, "user_ns", 1);
            s->system_ns = ld_u64(l, u, uw, "system_ns", 1);
            s->minor_faults = ld_u64(l, u, uw, "minor_faults", 1);
            s->major_faults = ld_u64(l, u, uw, "major_faults", 1);
            s->voluntary_switches = ld_u64(l, u, uw, "voluntary_switches", 1);
            s->involuntary_switches = ld_u64(l, u, uw, "involuntary_switches", 1);
        }
        const struct jv *m = ld_member(l, o, where, "mem", JV_OBJ, 0, 1);
        if (m) {
            char mw[64];
            snprintf(mw, sizeof(mw), "%s.mem", where);
            s->mem_allocs = ld_u64(l, m, mw, "allocs", 1);
            s->mem_bytes = ld_u64(l, m, mw, "bytes", 1);
            s->mem_freed = ld_u64(l, m, mw, "freed_bytes", 1);
        }
        snap->hist_at[i] = nb;
        if (ld_hist(l, o, where, snap, &nb, cap) || l->rc)
            return l->rc;
    }
    snap->hist_at[i] = nb;
    snap->nsites = i;
    return 0;
}

static int
ld_edges(struct ld *l, const struct jv *root, probe_snapshot *snap)
{
    const struct jv *arr = ld_array(l, root, "edges", 1);
    size_t i = 0;

    if (!arr)
        return l->rc;
    snap->edges = calloc(arr->count ? arr->count : 1, sizeof(*snap->edges));
    if (!snap->edges)
        return ld_fail(l, arr, PROBE_ENOMEM, "out of memory");
    for (const struct jv *e = jv_first(l->d, arr); e && !l->rc; e = jv_next(l->d, e), i++) {
        char where[48];
        snprintf(where, sizeof(where), "edges[%zu]", i);
        const struct jv *o = ld_elem_obj(l, e, where);
        if (!o)
            break;
        probe_edge_info *x = &snap->edges[i];
        x->caller = ld_index(l, o, where, "caller_id", snap->nsites, 0);
        x->callee = ld_index(l, o, where, "callee_id", snap->nsites, 0);
        x->calls = ld_u64(l, o, where, "calls", 1);
        x->total_ns = ld_u64(l, o, where, "total_ns", 1);
    }
    snap->nedges = i;
    return l->rc;
}

static int
ld_nodes(struct ld *l, const struct jv *root, probe_snapshot *snap)
{
    const struct jv *arr = ld_array(l, root, "nodes", 0);
    size_t i = 0;

    snap->nodes = calloc(arr && arr->count ? arr->count : 1, sizeof(*snap->nodes));
    if (!snap->nodes)
        return ld_fail(l, arr, PROBE_ENOMEM, "out of memory");
    for (const struct jv *e = jv_first(l->d, arr); e && !l->rc; e = jv_next(l->d, e), i++) {
        char where[48];
        snprintf(where, sizeof(where), "nodes[%zu]", i);
        const struct jv *o = ld_elem_obj(l, e, where);
        if (!o)
            break;
        probe_node_info *n = &snap->nodes[i];
        n->index = i;
        /* Parents come first: an index below this node's own. */
        n->parent = ld_index(l, o, where, "parent", i, PROBE_NODE_ROOT);
        n->site = ld_index(l, o, where, "site", snap->nsites, 0);
        n->depth = n->parent == PROBE_NODE_ROOT ? 0 : snap->nodes[n->parent].depth + 1;
        n->calls = ld_u64(l, o, where, "calls", 1);
        n->total_ns = ld_u64(l, o, where, "total_ns", 1);
        n->self_ns = ld_u64(l, o, where, "self_ns", 1);
    }
    snap->nnodes = i;
    return l->rc;
}

static int
ld_threads(struct ld *l, const struct jv *root, probe_snapshot *snap)
{
    const struct jv *arr = ld_array(l, root, "threads", 1);
    size_t i = 0;

    if (!arr)
        return l->rc;
    snap->threads = calloc(arr->count ? arr->count : 1, sizeof(*snap->threads));
    if (!snap->threads)
        return ld_fail(l, arr, PROBE_ENOMEM, "out of memory");
    for (const struct jv *e = jv_first(l->d, arr); e && !l->rc; e = jv_next(l->d, e), i++) {
        char where[48];
        snprintf(where, sizeof(where), "threads[%zu]", i);
        const struct jv *o = ld_elem_obj(l, e, where);
        if (!o)
            break;
        probe_thread_info *t = &snap->threads[i];
        t->tid = ld_u64(l, o, where, "tid", 1);
        t->name = ld_str(l, o, where, "name", 1, 0);
        t->live = ld_bool(l, o, where, "live", 0);
        t->scopes = ld_u64(l, o, where, "scopes", 0);
        t->events_dropped = ld_u64(l, o, where, "events_dropped", 0);
    }
    snap->nthreads = i;
    return l->rc;
}

static int
ld_small(struct ld *l, const struct jv *root, probe_snapshot *snap)
{
    const struct jv *c = ld_member(l, root, "report", "clock", JV_OBJ, 1, 0);
    const struct jv *r = ld_member(l, root, "report", "rusage", JV_OBJ, 0, 1);
    const struct jv *lo = ld_member(l, root, "report", "losses", JV_OBJ, 0, 1);

    if (!c)
        return l->rc;
    snap->clock.name = ld_str(l, c, "clock", "name", 1, 0);
    const struct jv *npt = ld_member(l, c, "clock", "ns_per_tick", JV_NUM, 1, 1);
    snap->clock.ns_per_tick = !npt ? 0 : npt->type == JV_INT ? (double)npt->u : npt->d;
    snap->clock.elapsed_ns = ld_u64(l, c, "clock", "elapsed_ns", 1);
    if (r) {
        probe_rusage *u = &snap->rusage;
        u->wall_ns = ld_u64(l, r, "rusage", "wall_ns", 0);
        u->user_ns = ld_u64(l, r, "rusage", "user_ns", 0);
        u->system_ns = ld_u64(l, r, "rusage", "system_ns", 0);
        u->max_rss_bytes = ld_u64(l, r, "rusage", "max_rss_bytes", 0);
        u->minor_faults = ld_u64(l, r, "rusage", "minor_faults", 0);
        u->major_faults = ld_u64(l, r, "rusage", "major_faults", 0);
        u->voluntary_switches = ld_u64(l, r, "rusage", "voluntary_switches", 0);
        u->involuntary_switches = ld_u64(l, r, "rusage", "involuntary_switches", 0);
        u->block_in = ld_u64(l, r, "rusage", "block_in", 0);
        u->block_out = ld_u64(l, r, "rusage", "block_out", 0);
    }
    if (lo) {
        probe_loss_info *x = &snap->losses;
        x->depth_overflow = ld_u64(l, lo, "losses", "depth_overflow", 0);
        x->unbalanced = ld_u64(l, lo, "losses", "unbalanced", 0);
        x->edges_dropped = ld_u64(l, lo, "losses", "edges_dropped", 0);
        x->sites_dropped = ld_u64(l, lo, "losses", "sites_dropped", 0);
        x->threads_unlisted = ld_u64(l, lo, "losses", "threads_unlisted", 0);
        x->events_dropped = ld_u64(l, lo, "losses", "events_dropped", 0);
    }
    snap->pid = ld_u64(l, root, "report", "pid", 0);
    return l->rc;
}

/* The timeline: threads and sites must be loaded. An event names a thread and, but
 * for an instant, a site; events stay grouped by thread as they were written. */
static int
ld_events(struct ld *l, const struct jv *root, probe_snapshot *snap)
{
    const struct jv *arr = ld_array(l, root, "events", 0);
    size_t i = 0;

    snap->events = calloc(arr && arr->count ? arr->count : 1, sizeof(*snap->events));
    if (!snap->events)
        return ld_fail(l, arr, PROBE_ENOMEM, "out of memory");
    for (const struct jv *e = jv_first(l->d, arr); e && !l->rc; e = jv_next(l->d, e), i++) {
        char where[48];
        snprintf(where, sizeof(where), "events[%zu]", i);
        const struct jv *o = ld_elem_obj(l, e, where);
        if (!o)
            break;
        probe_event_info *x = &snap->events[i];
        x->thread = ld_index(l, o, where, "thread", snap->nthreads, 0);
        x->ts_ns = ld_u64(l, o, where, "ts_ns", 1);
        const char *k = ld_str(l, o, where, "kind", 1, 0);
        if (!k)
            break;
        if (strcmp(k, "begin") == 0)
            x->kind = PROBE_EVENT_BEGIN;
        else if (strcmp(k, "end") == 0)
            x->kind = PROBE_EVENT_END;
        else if (strcmp(k, "counter") == 0)
            x->kind = PROBE_EVENT_COUNTER;
        else if (strcmp(k, "instant") == 0)
            x->kind = PROBE_EVENT_INSTANT;
        else
            return ld_fail(l, jv_get(l->d, o, "kind"), PROBE_EINVAL,
                           "%s.kind: expected \"begin\", \"end\", \"counter\" or "
                           "\"instant\"", where);
        if (x->kind == PROBE_EVENT_INSTANT) {
            x->site = SIZE_MAX;
            x->name = ld_str(l, o, where, "name", 1, 1);
            continue;
        }
        x->site = ld_index(l, o, where, "site", snap->nsites, 0);
        if (l->rc)
            break;
        x->name = snap->sites[x->site].name;
        if (x->kind != PROBE_EVENT_COUNTER)
            continue;
        /* Signed, as a site's value. */
        const struct jv *val = jv_get(l->d, o, "value");
        if (!val || val->type != JV_INT ||
            (val->neg ? val->u > (uint64_t)INT64_MAX + 1 : val->u > INT64_MAX))
            return ld_fail(l, val ? val : o, PROBE_EINVAL,
                           "%s.value: expected a signed 64-bit integer", where);
        x->value = val->neg ? (int64_t)(0 - val->u) : (int64_t)val->u;
    }
    snap->nevents = i;
    return l->rc;
}

/* An optional array of strings @key, kept NUL-terminated back to back in *@ret_buf
 * (as the snapshot keeps the command and the children's files). */
static int
ld_strings(struct ld *l, const struct jv *root, const char *key, char **ret_buf,
           size_t *ret_len)
{
    const struct jv *arr = ld_member(l, root, "report", key, JV_ARR, 0, 1);
    size_t len = 0;

    if (!arr || !arr->count)
        return l->rc;
    for (const struct jv *e = jv_first(l->d, arr); e; e = jv_next(l->d, e)) {
        if (e->type != JV_STR)
            return ld_fail(l, e, PROBE_EINVAL, "%s: expected strings", key);
        len += strlen(e->s) + 1;
    }
    if (!(*ret_buf = malloc(len)))
        return ld_fail(l, arr, PROBE_ENOMEM, "out of memory");
    for (const struct jv *e = jv_first(l->d, arr); e; e = jv_next(l->d, e)) {
        size_t n = strlen(e->s) + 1;
        memcpy(*ret_buf + *ret_len, e->s, n);
        *ret_len += n;
    }
    return 0;
}

/* ---- samples, frames, mappings ---------------------------------------------- */

struct loaded_samples {
    struct sample_set set;
    const char **names;     /* every sample's frames, then scopes */
    size_t *ids;
    uint64_t *addrs;
};

static void
loaded_samples_free(struct sample_set *s)
{
    struct loaded_samples *ls = (struct loaded_samples *)s;

    free(s->v);
    free(s->frames);
    free(s->mappings);
    free(ls->names);
    free(ls->ids);
    free(ls->addrs);
    free(ls);
}

static int
ld_mappings(struct ld *l, const struct jv *root, struct sample_set *set)
{
    const struct jv *arr = ld_array(l, root, "mappings", 0);
    size_t i = 0;

    set->mappings = calloc(arr && arr->count ? arr->count : 1, sizeof(*set->mappings));
    if (!set->mappings)
        return ld_fail(l, arr, PROBE_ENOMEM, "out of memory");
    for (const struct jv *e = jv_first(l->d, arr); e && !l->rc; e = jv_next(l->d, e), i++) {
        char where[48];
        snprintf(where, sizeof(where), "mappings[%zu]", i);
        const struct jv *o = ld_elem_obj(l, e, where);
        if (!o)
            break;
        probe_mapping_info *m = &set->mappings[i];
        m->start = ld_u64(l, o, where, "start", 1);
        m->limit = ld_u64(l, o, where, "limit", 1);
        m->offset = ld_u64(l, o, where, "offset", 0);
        m->path = ld_str(l, o, where, "path", 0, 0);
        m->build_id = ld_str(l, o, where, "build_id", 0, 0);
        m->path = m->path ? m->path : "";
        m->build_id = m->build_id ? m->build_id : "";
        m->main_program = ld_bool(l, o, where, "main_program", 0);
    }
    set->nmappings = i;
    return l->rc;
}

static int
ld_frames(struct ld *l, const struct jv *root, struct sample_set *set)
{
    const struct jv *arr = ld_array(l, root, "frames", 0);
    size_t i = 0;

    set->frames = calloc(arr && arr->count ? arr->count : 1, sizeof(*set->frames));
    if (!set->frames)
        return ld_fail(l, arr, PROBE_ENOMEM, "out of memory");
    for (const struct jv *e = jv_first(l->d, arr); e && !l->rc; e = jv_next(l->d, e), i++) {
        char where[48];
        snprintf(where, sizeof(where), "frames[%zu]", i);
        const struct jv *o = ld_elem_obj(l, e, where);
        if (!o)
            break;
        probe_frame_info *f = &set->frames[i];
        f->address = ld_u64(l, o, where, "address", 1);
        f->function = ld_str(l, o, where, "function", 1, 0);
        f->file = ld_str(l, o, where, "file", 0, 1);
        uint64_t line = ld_u64(l, o, where, "line", 0);
        f->line = line > UINT32_MAX ? 0 : (unsigned)line;
        f->mapping = ld_index(l, o, where, "mapping", set->nmappings, PROBE_NO_MAPPING);
        f->is_return = ld_bool(l, o, where, "is_return", 0);
    }
    set->nframes = i;
    return l->rc;
}

/* A string array member into @names; returns how many. */
static unsigned
ld_names(struct ld *l, const struct jv *o, const char *where, const char *key,
         const char **names, size_t *at)
{
    const struct jv *a = ld_member(l, o, where, key, JV_ARR, 1, 0);
    unsigned n = 0;

    for (const struct jv *e = jv_first(l->d, a); e && !l->rc; e = jv_next(l->d, e), n++) {
        if (e->type != JV_STR) {
            ld_fail(l, e, PROBE_EINVAL, "%s.%s: expected strings", where, key);
            break;
        }
        names[(*at)++] = e->s;
    }
    return n;
}

static int
ld_samples(struct ld *l, const struct jv *root, probe_snapshot *snap)
{
    const struct jv *s = ld_member(l, root, "report", "samples", JV_OBJ, 0, 1);
    struct loaded_samples *ls;
    size_t nnames = 0, nids = 0, n = 0;

    if (!s)
        return l->rc;
    const struct jv *st = ld_member(l, s, "samples", "stacks", JV_ARR, 1, 0);
    if (!st)
        return l->rc;
    ls = calloc(1, sizeof(*ls));
    if (!ls)
        return ld_fail(l, s, PROBE_ENOMEM, "out of memory");
    ls->set.free = loaded_samples_free;
    snap->samples = &ls->set;
    for (const struct jv *e = jv_first(l->d, st); e; e = jv_next(l->d, e)) {
        const struct jv *f = jv_get(l->d, e, "frames"), *sc = jv_get(l->d, e, "scopes");
        nnames += (f ? f->count : 0) + (sc ? sc->count : 0);
        nids += f ? f->count : 0;
    }
    ls->set.v = calloc(st->count ? st->count : 1, sizeof(*ls->set.v));
    ls->names = calloc(nnames ? nnames : 1, sizeof(*ls->names));
    ls->ids = calloc(nids ? nids : 1, sizeof(*ls->ids));
    ls->addrs = calloc(nids ? nids : 1, sizeof(*ls->addrs));
    if (!ls->set.v || !ls->names || !ls->ids || !ls->addrs)
        return ld_fail(l, s, PROBE_ENOMEM, "out of memory");
    if (ld_mappings(l, root, &ls->set) || ld_frames(l, root, &ls->set))
        return l->rc;

    probe_sampler_info *in = &ls->set.info;
    in->interval_ns = ld_u64(l, s, "samples", "interval_ns", 1);
    const char *mode = ld_str(l, s, "samples", "mode", 0, 0);
    in->mode = mode && strcmp(mode, "wall") == 0 ? PROBE_SAMPLE_WALL : PROBE_SAMPLE_CPU;
    in->running = ld_bool(l, s, "samples", "running", 0);
    in->signals = ld_u64(l, s, "samples", "signals", 0);
    in->expirations = ld_u64(l, s, "samples", "expirations", 0);
    in->dropped = ld_u64(l, s, "samples", "dropped", 0);
    in->dropped_expirations = ld_u64(l, s, "samples", "dropped_expirations", 0);

    size_t at = 0, idat = 0;
    for (const struct jv *e = jv_first(l->d, st); e && !l->rc; e = jv_next(l->d, e), n++) {
        char where[48];
        snprintf(where, sizeof(where), "samples.stacks[%zu]", n);
        const struct jv *o = ld_elem_obj(l, e, where);
        if (!o)
            break;
        probe_sample_info *x = &ls->set.v[n];
        x->thread = ld_index(l, o, where, "thread", snap->nthreads, PROBE_SAMPLE_NO_THREAD);
        x->tid = ld_u64(l, o, where, "tid", 0);
        x->weight = ld_u64(l, o, where, "weight", 1);
        x->cpu_ns = ld_u64(l, o, where, "cpu_ns", 0);
        uint64_t sig = ld_u64(l, o, where, "signals", 0);
        x->signals = sig > UINT32_MAX ? UINT32_MAX : (unsigned)sig;
        x->blocked = ld_bool(l, o, where, "blocked", 0);
        x->frames = ls->names + at;
        x->depth = ld_names(l, o, where, "frames", ls->names, &at);
        x->scopes = ls->names + at;
        x->nscopes = ld_names(l, o, where, "scopes", ls->names, &at);
        const struct jv *ids = ld_member(l, o, where, "frame_ids", JV_ARR, 0, 0);
        if (ids && ids->count == x->depth && x->depth) {
            x->frame_ids = ls->ids + idat;
            x->addresses = ls->addrs + idat;
            for (const struct jv *k = jv_first(l->d, ids); k; k = jv_next(l->d, k)) {
                if (k->type != JV_INT || k->neg || k->u >= ls->set.nframes)
                    return ld_fail(l, k, PROBE_EINVAL, "%s.frame_ids: expected indices "
                                   "below %zu", where, ls->set.nframes);
                ls->addrs[idat] = ls->set.frames[k->u].address;
                ls->ids[idat++] = (size_t)k->u;
            }
        } else if (ids && ids->count) {
            return ld_fail(l, ids, PROBE_EINVAL, "%s.frame_ids: expected one per frame",
                           where);
        }
    }
    ls->set.n = n;
    return l->rc;
}

/* ---- memory and heap -------------------------------------------------------------- */

static void
loaded_mem_free(void *p)
{
    probe_mem_snapshot_free(p);
}

/* "memory": the tagged objects' figures (json.c's json_memory), as the tracker's
 * own snapshot (mem/msnap.h), so that the formatters show them as they did. */
static int
ld_memory(struct ld *l, const struct jv *root, probe_snapshot *snap)
{
    const struct jv *o = ld_member(l, root, "report", "memory", JV_OBJ, 0, 1);

    if (!o)
        return l->rc;

    const struct jv *arr = ld_member(l, o, "memory", "tags", JV_ARR, 1, 0);

    if (!arr)
        return l->rc;

    probe_mem_snapshot *m = calloc(1, sizeof(*m));
    size_t n = arr->count;

    if (!m || !(m->tags = calloc(n ? n : 1, sizeof(*m->tags))) ||
        !(m->names = calloc(n ? n : 1, PROBE_MEM_TAG_MAX_LEN + 1))) {
        probe_mem_snapshot_free(m);
        return ld_fail(l, arr, PROBE_ENOMEM, "out of memory");
    }
    snap->mem = m;
    snap->mem_free = loaded_mem_free;
    m->info.live_count = ld_i64(l, o, "memory", "live_count");
    m->info.live_bytes = ld_i64(l, o, "memory", "live_bytes");
    m->info.table_slots = ld_u64(l, o, "memory", "table_slots", 0);
    m->info.table_full = ld_u64(l, o, "memory", "table_full", 0);
    m->info.tags_dropped = ld_u64(l, o, "memory", "tags_dropped", 0);
    m->info.fork_lost = ld_u64(l, o, "memory", "fork_lost", 0);

    int64_t positive = 0;
    size_t i = 0;

    for (const struct jv *e = jv_first(l->d, arr); e && !l->rc; e = jv_next(l->d, e), i++) {
        char where[48];
        snprintf(where, sizeof(where), "memory.tags[%zu]", i);
        const struct jv *t = ld_elem_obj(l, e, where);
        if (!t)
            break;
        probe_mem_tag_info *x = &m->tags[i];
        char *name = m->names + i * (PROBE_MEM_TAG_MAX_LEN + 1);
        const char *tag = ld_str(l, t, where, "tag", 1, 0);

        snprintf(name, PROBE_MEM_TAG_MAX_LEN + 1, "%s", tag ? tag : "");
        x->name = name;
        x->live_count = ld_i64(l, t, where, "live_count");
        x->live_bytes = ld_i64(l, t, where, "live_bytes");
        const struct jv *peak = ld_member(l, t, where, "peak_bytes", JV_INT, 0, 1);
        x->peak_bytes = peak ? peak->u : 0;
        /* null: merged from several processes, not known */
        if (jv_get(l->d, t, "peak_bytes") && !peak && !l->rc)
            snap->peaks_unknown = 1;
        x->allocs = ld_u64(l, t, where, "allocs", 0);
        x->frees = ld_u64(l, t, where, "frees", 0);
        x->alloc_bytes = ld_u64(l, t, where, "alloc_bytes", 0);
        x->avg_bytes = ld_u64(l, t, where, "avg_bytes", 0);
        x->growth_count = ld_i64(l, t, where, "growth_count");
        x->growth_bytes = ld_i64(l, t, where, "growth_bytes");
        x->untracked_frees = ld_u64(l, t, where, "untracked_frees", 0);
        x->double_frees = ld_u64(l, t, where, "double_frees", 0);
        positive += x->live_bytes > 0 ? x->live_bytes : 0;
    }
    m->info.tags = i;
    /* Not saved (the report keeps integers): computed as the tracker does. */
    for (size_t k = 0; k < i; k++)
        m->tags[k].share = positive && m->tags[k].live_bytes > 0
                               ? (double)m->tags[k].live_bytes / (double)positive : 0;
    return l->rc;
}

/* "heap": the heap profiler's totals and top sites (json.c's json_heap). Its
 * timeline of bytes in use is not in the report: a loaded heap has none. */
static int
ld_heap(struct ld *l, const struct jv *root, probe_snapshot *snap)
{
    const struct jv *o = ld_member(l, root, "report", "heap", JV_OBJ, 0, 1);

    if (!o)
        return l->rc;

    const struct jv *arr = ld_member(l, o, "heap", "sites", JV_ARR, 1, 0);

    if (!arr)
        return l->rc;

    struct heapsum *h = calloc(1, sizeof(*h));
    size_t n = arr->count;

    if (!h || !(h->sites = calloc(n ? n : 1, sizeof(*h->sites)))) {
        heapsum_free(h);
        return ld_fail(l, arr, PROBE_ENOMEM, "out of memory");
    }
    snap->heap = h;
    h->mean = ld_u64(l, o, "heap", "sample_bytes", 0);
    h->samples = ld_u64(l, o, "heap", "samples", 0);
    h->alloc_space = (double)ld_u64(l, o, "heap", "allocated_bytes", 0);
    h->alloc_objects = (double)ld_u64(l, o, "heap", "allocated_blocks", 0);
    h->inuse_space = (double)ld_u64(l, o, "heap", "inuse_bytes", 0);
    const struct jv *peak = ld_member(l, o, "heap", "peak_bytes", JV_INT, 0, 1);
    h->peak_space = peak ? (double)peak->u : 0;
    if (jv_get(l->d, o, "peak_bytes") && !peak && !l->rc)
        snap->peaks_unknown = 1;
    snap->heap_sites_partial = ld_bool(l, o, "heap", "sites_partial", 0);

    size_t i = 0;

    for (const struct jv *e = jv_first(l->d, arr); e && !l->rc; e = jv_next(l->d, e), i++) {
        char where[48];
        snprintf(where, sizeof(where), "heap.sites[%zu]", i);
        const struct jv *t = ld_elem_obj(l, e, where);
        if (!t)
            break;
        struct heapsum_site *x = &h->sites[i];
        const struct jv *fr = ld_member(l, t, where, "frames", JV_ARR, 1, 0);
        if (!fr)
            break;
        for (const struct jv *f = jv_first(l->d, fr); f && x->nframes < HEAPSUM_FRAMES;
             f = jv_next(l->d, f)) {
            if (f->type != JV_STR)
                return ld_fail(l, f, PROBE_EINVAL, "%s.frames: expected strings", where);
            snprintf(x->frames[x->nframes++], HEAPSUM_NAME, "%s", f->s);
        }
        x->bytes = (double)ld_u64(l, t, where, "bytes", 1);
        x->blocks = (double)ld_u64(l, t, where, "blocks", 1);
    }
    h->nsites = i;
    return l->rc;
}

/* ---- entry points --------------------------------------------------------------- */

static probe_snapshot *
load_fail(probe_snapshot *snap, int rc)
{
    probe_snapshot_free(snap);
    errno = -rc;
    return NULL;
}

PROBE_EXPORT probe_snapshot *
probe_snapshot_load_buffer(const void *buf, size_t len, probe_load_error *err)
{
    probe_load_error dummy;
    struct jdoc doc;
    struct ld l = {&doc, err ? err : &dummy, 0};
    probe_snapshot *snap;
    int rc;

    if (err)
        memset(err, 0, sizeof(*err));
    if (!buf && len)
        return ld_fail(&l, NULL, PROBE_EINVAL, "a buffer"), load_fail(NULL, PROBE_EINVAL);
    rc = jsonread_parse(buf ? buf : "", len, &doc, &l.err->offset, l.err->message,
                        sizeof(l.err->message));
    if (rc < 0) {
        l.err->code = rc;
        return load_fail(NULL, rc);
    }
    snap = calloc(1, sizeof(*snap));
    if (!snap) {
        jsonread_free(&doc);
        ld_fail(&l, NULL, PROBE_ENOMEM, "out of memory");
        return load_fail(NULL, PROBE_ENOMEM);
    }
    const struct jv *root = &doc.v[0];
    if (root->type != JV_OBJ) {
        ld_fail(&l, root, PROBE_EINVAL, "expected an object (a probe/1 report)");
    } else {
        const char *schema = ld_str(&l, root, "report", "schema", 1, 0);
        if (schema && strcmp(schema, "probe/1") != 0)
            ld_fail(&l, jv_get(&doc, root, "schema"), PROBE_EINVAL,
                    "schema: expected \"probe/1\"");
    }
    if (!l.rc)
        (void)(ld_small(&l, root, snap) || ld_sites(&l, root, snap) ||
               ld_edges(&l, root, snap) || ld_nodes(&l, root, snap) ||
               ld_threads(&l, root, snap) || ld_events(&l, root, snap) ||
               ld_strings(&l, root, "command", &snap->command, &snap->command_len) ||
               ld_strings(&l, root, "children", &snap->children, &snap->children_len) ||
               ld_samples(&l, root, snap) || ld_memory(&l, root, snap) ||
               ld_heap(&l, root, snap));
    if (!snap->events)
        snap->events = calloc(1, sizeof(*snap->events));
    if (!l.rc && !snap->events)
        ld_fail(&l, NULL, PROBE_ENOMEM, "out of memory");
    /* The strings point into the pool: the snapshot keeps it. */
    snap->strings = doc.pool;
    doc.pool = NULL;
    jsonread_free(&doc);
    if (l.rc)
        return load_fail(snap, l.rc);
    return snap;
}

/* Read all of @fd, at most the reader's limit and one byte more. */
static int
read_all(int fd, char **ret, size_t *ret_len)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);

    if (!buf)
        return PROBE_ENOMEM;
    for (;;) {
        if (len == cap) {
            if (cap > JSONREAD_MAX_INPUT)
                break;
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return PROBE_ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = -errno;
            free(buf);
            return e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *ret = buf;
    *ret_len = len;
    return 0;
}

PROBE_EXPORT probe_snapshot *
probe_snapshot_load_fd(int fd, probe_load_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    if (err)
        memset(err, 0, sizeof(*err));
    if (fd < 0) {
        rc = PROBE_EBADF;
        goto fail;
    }
    rc = read_all(fd, &buf, &len);
    if (rc < 0)
        goto fail;
    probe_snapshot *snap = probe_snapshot_load_buffer(buf, len, err);
    int e = errno;
    free(buf);
    errno = e;
    return snap;
fail:
    if (err) {
        err->code = rc;
        snprintf(err->message, sizeof(err->message), "%s", probe_strerror(rc));
    }
    errno = -rc;
    return NULL;
}

PROBE_EXPORT probe_snapshot *
probe_snapshot_load(const char *path, probe_load_error *err)
{
    int fd;

    if (!path) {
        if (err) {
            memset(err, 0, sizeof(*err));
            err->code = PROBE_EINVAL;
            snprintf(err->message, sizeof(err->message), "no path");
        }
        errno = EINVAL;
        return NULL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        if (err) {
            memset(err, 0, sizeof(*err));
            err->code = rc;
            snprintf(err->message, sizeof(err->message), "%s", probe_strerror(rc));
        }
        errno = -rc;
        return NULL;
    }
    probe_snapshot *snap = probe_snapshot_load_fd(fd, err);
    int e = errno;
    close(fd);
    errno = e;
    return snap;
}
