/* The "json" formatter: schema "probe/1", documented in docs/json-schema.md. */
#include "json.h"
#include "options.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <probe/mem.h>

#include "core/heapsum.h"
#include "core/snapshot.h"
#include "jsonstr.h"
#include "writer.h"

/* ---- members ----------------------------------------------------------------- */

/* "," before every member but the first of an object or array. */
static int
json_sep(probe_writer *w, int *first)
{
    if (*first) {
        *first = 0;
        return 0;
    }
    return probe_writer_puts(w, ",");
}

/* @first NULL: the caller wrote the separator. */
static int
json_key(probe_writer *w, int *first, const char *key)
{
    if (first)
        TRY(json_sep(w, first));
    TRY(jsonstr_write(w, key));
    return writer_putc(w, ':');
}

static int
json_u64(probe_writer *w, int *first, const char *key, uint64_t v)
{
    TRY(json_key(w, first, key));
    return probe_writer_printf(w, "%" PRIu64, v);
}

static int
json_i64(probe_writer *w, int *first, const char *key, int64_t v)
{
    TRY(json_key(w, first, key));
    return probe_writer_printf(w, "%" PRId64, v);
}

static int
json_str(probe_writer *w, int *first, const char *key, const char *v)
{
    TRY(json_key(w, first, key));
    return jsonstr_write(w, v);
}

static int
json_bool(probe_writer *w, int *first, const char *key, int v)
{
    TRY(json_key(w, first, key));
    return probe_writer_puts(w, v ? "true" : "false");
}

/*
 * A non-negative double in plain decimal with 9 fractional digits at most, by
 * integer arithmetic: printf("%g") would follow the program's LC_NUMERIC and
 * could write "0,5". From 1e9 up only the integer part is kept; not finite,
 * negative or beyond 64 bits: null.
 */
static int
json_double(probe_writer *w, int *first, const char *key, double v)
{
    TRY(json_key(w, first, key));
    if (!isfinite(v) || v < 0 || v >= 1.8e19)
        return probe_writer_puts(w, "null");
    if (v >= 1e9)
        return probe_writer_printf(w, "%" PRIu64, (uint64_t)v);

    uint64_t scaled = (uint64_t)llround(v * 1e9);
    uint64_t whole = scaled / 1000000000u;
    uint64_t frac = scaled % 1000000000u;
    int digits = 9;

    if (frac == 0)
        return probe_writer_printf(w, "%" PRIu64, whole);
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    return probe_writer_printf(w, "%" PRIu64 ".%0*" PRIu64, whole, digits, frac);
}

/* ---- sections ---------------------------------------------------------------- */

static const char *
json_kind(probe_kind kind)
{
    switch (kind) {
    case PROBE_KIND_SCOPE:
        return "scope";
    case PROBE_KIND_LINE:
        return "line";
    case PROBE_KIND_COUNTER:
        return "counter";
    }
    return "unknown";
}

static int
json_clock(probe_writer *w, const probe_snapshot *snap)
{
    const probe_clock_info *c = probe_snapshot_clock(snap);
    int f = 1;

    TRY(json_key(w, NULL, "clock"));
    if (!c)
        return probe_writer_puts(w, "null");
    TRY(writer_putc(w, '{'));
    TRY(json_str(w, &f, "name", c->name));
    TRY(json_double(w, &f, "ns_per_tick", c->ns_per_tick));
    TRY(json_u64(w, &f, "elapsed_ns", c->elapsed_ns));
    return writer_putc(w, '}');
}

/* The non-empty buckets of the duration histogram, [bucket, count] pairs, so that
 * merged reports keep true percentiles. */
static int
json_hist(probe_writer *w, const probe_snapshot *snap, size_t index)
{
    const struct snap_bucket *b;
    size_t n = snapshot_site_hist(snap, index, &b);

    TRY(probe_writer_puts(w, ",\"hist\":["));
    for (size_t i = 0; i < n; i++)
        TRY(probe_writer_printf(w, "%s[%" PRIu32 ",%" PRIu64 "]", i ? "," : "",
                                b[i].bucket, b[i].count));
    return probe_writer_puts(w, "]}");
}

static int json_usage(probe_writer *w, const probe_site_info *s);

static int
json_site(probe_writer *w, const probe_snapshot *snap, const probe_site_info *s,
          size_t index)
{
    int f = 1;

    TRY(writer_putc(w, '{'));
    TRY(json_u64(w, &f, "id", index));
    TRY(json_str(w, &f, "name", s->name));
    TRY(json_str(w, &f, "kind", json_kind(s->kind)));
    TRY(json_str(w, &f, "file", s->file));
    TRY(json_u64(w, &f, "line", s->line));
    TRY(json_str(w, &f, "function", s->function));
    TRY(json_u64(w, &f, "calls", s->calls));
    TRY(json_u64(w, &f, "prim_calls", s->prim_calls));
    TRY(json_u64(w, &f, "total_ns", s->total_ns));
    TRY(json_u64(w, &f, "self_ns", s->self_ns));
    TRY(json_u64(w, &f, "min_ns", s->min_ns));
    TRY(json_u64(w, &f, "max_ns", s->max_ns));
    TRY(json_u64(w, &f, "p50_ns", s->p50_ns));
    TRY(json_u64(w, &f, "p90_ns", s->p90_ns));
    TRY(json_u64(w, &f, "p99_ns", s->p99_ns));
    TRY(json_i64(w, &f, "value", s->value));
    TRY(json_bool(w, &f, "loaded", s->loaded));
    if (s->mem_allocs || s->mem_freed) { /* PROBE_MEM=1: heap by scope */
        int m = 1;
        TRY(json_key(w, &f, "mem"));
        TRY(writer_putc(w, '{'));
        TRY(json_u64(w, &m, "allocs", s->mem_allocs));
        TRY(json_u64(w, &m, "bytes", s->mem_bytes));
        TRY(json_u64(w, &m, "freed_bytes", s->mem_freed));
        TRY(writer_putc(w, '}'));
    }
    TRY(json_key(w, &f, "usage"));
    if (!s->has_usage)
        TRY(probe_writer_puts(w, "null"));
    else
        TRY(json_usage(w, s));
    return json_hist(w, snap, index);
}

static int
json_usage(probe_writer *w, const probe_site_info *s)
{
    int g = 1;
    TRY(writer_putc(w, '{'));
    TRY(json_u64(w, &g, "calls", s->usage_calls));
    TRY(json_u64(w, &g, "user_ns", s->user_ns));
    TRY(json_u64(w, &g, "system_ns", s->system_ns));
    TRY(json_u64(w, &g, "minor_faults", s->minor_faults));
    TRY(json_u64(w, &g, "major_faults", s->major_faults));
    TRY(json_u64(w, &g, "voluntary_switches", s->voluntary_switches));
    TRY(json_u64(w, &g, "involuntary_switches", s->involuntary_switches));
    return writer_putc(w, '}');
}

static int
json_sites(probe_writer *w, const probe_snapshot *snap)
{
    size_t n = probe_snapshot_site_count(snap);
    int f = 1;

    TRY(json_key(w, NULL, "sites"));
    TRY(writer_putc(w, '['));
    for (size_t i = 0; i < n; i++) {
        const probe_site_info *s = probe_snapshot_site(snap, i);

        if (!s)
            continue;
        TRY(json_sep(w, &f));
        TRY(probe_writer_puts(w, "\n  "));
        TRY(json_site(w, snap, s, i));
    }
    return probe_writer_puts(w, "\n]");
}

/* The name of site @i, or NULL (written as null) when there is no such site. */
static const char *
json_site_name(const probe_snapshot *snap, size_t i)
{
    const probe_site_info *s = probe_snapshot_site(snap, i);

    return s ? s->name : NULL;
}

static int
json_edge(probe_writer *w, const probe_snapshot *snap, const probe_edge_info *e)
{
    int f = 1;

    TRY(writer_putc(w, '{'));
    TRY(json_str(w, &f, "caller", json_site_name(snap, e->caller)));
    TRY(json_str(w, &f, "callee", json_site_name(snap, e->callee)));
    TRY(json_u64(w, &f, "caller_id", e->caller));
    TRY(json_u64(w, &f, "callee_id", e->callee));
    TRY(json_u64(w, &f, "calls", e->calls));
    TRY(json_u64(w, &f, "total_ns", e->total_ns));
    return writer_putc(w, '}');
}

static int
json_edges(probe_writer *w, const probe_snapshot *snap)
{
    size_t n = probe_snapshot_edge_count(snap);
    int f = 1;

    TRY(json_key(w, NULL, "edges"));
    TRY(writer_putc(w, '['));
    for (size_t i = 0; i < n; i++) {
        const probe_edge_info *e = probe_snapshot_edge(snap, i);

        if (!e)
            continue;
        TRY(json_sep(w, &f));
        TRY(probe_writer_puts(w, "\n  "));
        TRY(json_edge(w, snap, e));
    }
    return probe_writer_puts(w, "\n]");
}

static int
json_node(probe_writer *w, const probe_node_info *n)
{
    int f = 1;

    TRY(writer_putc(w, '{'));
    TRY(json_u64(w, &f, "id", n->index));
    TRY(json_key(w, &f, "parent"));
    if (n->parent == PROBE_NODE_ROOT)
        TRY(probe_writer_puts(w, "null"));
    else
        TRY(probe_writer_printf(w, "%zu", n->parent));
    TRY(json_u64(w, &f, "site", n->site));
    TRY(json_u64(w, &f, "depth", n->depth));
    TRY(json_u64(w, &f, "calls", n->calls));
    TRY(json_u64(w, &f, "total_ns", n->total_ns));
    TRY(json_u64(w, &f, "self_ns", n->self_ns));
    return writer_putc(w, '}');
}

static int
json_nodes(probe_writer *w, const probe_snapshot *snap)
{
    size_t n = probe_snapshot_node_count(snap);
    int f = 1;

    TRY(json_key(w, NULL, "nodes"));
    TRY(writer_putc(w, '['));
    for (size_t i = 0; i < n; i++) {
        const probe_node_info *node = probe_snapshot_node(snap, i);

        if (!node)
            continue;
        TRY(json_sep(w, &f));
        TRY(probe_writer_puts(w, "\n  "));
        TRY(json_node(w, node));
    }
    return probe_writer_puts(w, "\n]");
}

static int
json_thread(probe_writer *w, const probe_thread_info *t)
{
    int f = 1;

    TRY(writer_putc(w, '{'));
    TRY(json_u64(w, &f, "tid", t->tid));
    TRY(json_str(w, &f, "name", t->name));
    TRY(json_bool(w, &f, "live", t->live));
    TRY(json_u64(w, &f, "scopes", t->scopes));
    TRY(json_u64(w, &f, "events_dropped", t->events_dropped));
    return writer_putc(w, '}');
}

static int
json_threads(probe_writer *w, const probe_snapshot *snap)
{
    size_t n = probe_snapshot_thread_count(snap);
    int f = 1;

    TRY(json_key(w, NULL, "threads"));
    TRY(writer_putc(w, '['));
    for (size_t i = 0; i < n; i++) {
        const probe_thread_info *t = probe_snapshot_thread(snap, i);

        if (!t)
            continue;
        TRY(json_sep(w, &f));
        TRY(probe_writer_puts(w, "\n  "));
        TRY(json_thread(w, t));
    }
    return probe_writer_puts(w, "\n]");
}

static int
json_rusage(probe_writer *w, const probe_snapshot *snap)
{
    const probe_rusage *r = probe_snapshot_rusage(snap);
    int f = 1;

    TRY(json_key(w, NULL, "rusage"));
    if (!r)
        return probe_writer_puts(w, "null");
    TRY(writer_putc(w, '{'));
    TRY(json_u64(w, &f, "wall_ns", r->wall_ns));
    TRY(json_u64(w, &f, "user_ns", r->user_ns));
    TRY(json_u64(w, &f, "system_ns", r->system_ns));
    TRY(json_u64(w, &f, "max_rss_bytes", r->max_rss_bytes));
    TRY(json_u64(w, &f, "minor_faults", r->minor_faults));
    TRY(json_u64(w, &f, "major_faults", r->major_faults));
    TRY(json_u64(w, &f, "voluntary_switches", r->voluntary_switches));
    TRY(json_u64(w, &f, "involuntary_switches", r->involuntary_switches));
    TRY(json_u64(w, &f, "block_in", r->block_in));
    TRY(json_u64(w, &f, "block_out", r->block_out));
    return writer_putc(w, '}');
}

static int
json_losses(probe_writer *w, const probe_snapshot *snap)
{
    const probe_loss_info *l = probe_snapshot_losses(snap);
    int f = 1;

    TRY(json_key(w, NULL, "losses"));
    if (!l)
        return probe_writer_puts(w, "null");
    TRY(writer_putc(w, '{'));
    TRY(json_u64(w, &f, "depth_overflow", l->depth_overflow));
    TRY(json_u64(w, &f, "unbalanced", l->unbalanced));
    TRY(json_u64(w, &f, "edges_dropped", l->edges_dropped));
    TRY(json_u64(w, &f, "sites_dropped", l->sites_dropped));
    TRY(json_u64(w, &f, "threads_unlisted", l->threads_unlisted));
    TRY(json_u64(w, &f, "events_dropped", l->events_dropped));
    TRY(json_u64(w, &f, "stats_dropped", l->stats_dropped));
    return writer_putc(w, '}');
}

static int
json_mem_tag(probe_writer *w, const probe_mem_tag_info *t, int peaks_unknown)
{
    int f = 1;

    TRY(writer_putc(w, '{'));
    TRY(json_str(w, &f, "tag", t->name));
    TRY(json_i64(w, &f, "live_count", t->live_count));
    TRY(json_i64(w, &f, "live_bytes", t->live_bytes));
    if (peaks_unknown) { /* merged from several processes: not known */
        TRY(json_key(w, &f, "peak_bytes"));
        TRY(probe_writer_puts(w, "null"));
    } else {
        TRY(json_u64(w, &f, "peak_bytes", t->peak_bytes));
    }
    TRY(json_u64(w, &f, "allocs", t->allocs));
    TRY(json_u64(w, &f, "frees", t->frees));
    TRY(json_u64(w, &f, "alloc_bytes", t->alloc_bytes));
    TRY(json_u64(w, &f, "avg_bytes", t->avg_bytes));
    TRY(json_i64(w, &f, "growth_count", t->growth_count));
    TRY(json_i64(w, &f, "growth_bytes", t->growth_bytes));
    TRY(json_u64(w, &f, "untracked_frees", t->untracked_frees));
    TRY(json_u64(w, &f, "double_frees", t->double_frees));
    return writer_putc(w, '}');
}

static int
json_memory(probe_writer *w, const probe_snapshot *snap)
{
    const probe_mem_snapshot *m = probe_snapshot_mem(snap);
    const probe_mem_info *info = probe_mem_snapshot_info(m);
    int f = 1, ft = 1;

    TRY(json_key(w, NULL, "memory"));
    if (!m)
        return probe_writer_puts(w, "null");
    TRY(writer_putc(w, '{'));
    TRY(json_i64(w, &f, "live_count", info->live_count));
    TRY(json_i64(w, &f, "live_bytes", info->live_bytes));
    TRY(json_u64(w, &f, "table_slots", info->table_slots));
    TRY(json_u64(w, &f, "table_full", info->table_full));
    TRY(json_u64(w, &f, "tags_dropped", info->tags_dropped));
    TRY(json_u64(w, &f, "fork_lost", info->fork_lost));
    TRY(json_key(w, &f, "tags"));
    TRY(writer_putc(w, '['));
    for (size_t i = 0; i < probe_mem_snapshot_tag_count(m); i++) {
        TRY(json_sep(w, &ft));
        TRY(probe_writer_puts(w, "\n  "));
        TRY(json_mem_tag(w, probe_mem_snapshot_tag(m, i), snap->peaks_unknown));
    }
    return probe_writer_puts(w, "]}");
}

/* The heap profiler's totals and top allocation sites (the probe-heap/1 report's
 * "sites", cut to HEAPSUM_SITES), as whole bytes and blocks; null when it is off. */
static int
json_heap(probe_writer *w, const probe_snapshot *snap)
{
    const struct heapsum *h = snap->heap;
    int f = 1, fs = 1;

    TRY(json_key(w, NULL, "heap"));
    if (!h)
        return probe_writer_puts(w, "null");
    TRY(writer_putc(w, '{'));
    TRY(json_u64(w, &f, "sample_bytes", h->mean));
    TRY(json_u64(w, &f, "samples", h->samples));
    TRY(json_u64(w, &f, "allocated_bytes", (uint64_t)(h->alloc_space + 0.5)));
    TRY(json_u64(w, &f, "allocated_blocks", (uint64_t)(h->alloc_objects + 0.5)));
    TRY(json_u64(w, &f, "inuse_bytes",
                 h->inuse_space > 0 ? (uint64_t)(h->inuse_space + 0.5) : 0));
    if (snap->peaks_unknown) {
        TRY(json_key(w, &f, "peak_bytes"));
        TRY(probe_writer_puts(w, "null"));
    } else {
        TRY(json_u64(w, &f, "peak_bytes", (uint64_t)(h->peak_space + 0.5)));
    }
    if (snap->heap_sites_partial)
        TRY(json_bool(w, &f, "sites_partial", 1));
    TRY(json_key(w, &f, "sites"));
    TRY(writer_putc(w, '['));
    for (size_t i = 0; i < h->nsites; i++) {
        const struct heapsum_site *s = &h->sites[i];
        int fr = 1;

        TRY(json_sep(w, &fs));
        TRY(probe_writer_puts(w, "\n  {\"frames\":["));
        for (unsigned k = 0; k < s->nframes; k++) {
            TRY(json_sep(w, &fr));
            TRY(jsonstr_write(w, s->frames[k]));
        }
        TRY(probe_writer_printf(w, "],\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 "}",
                                (uint64_t)(s->bytes + 0.5), (uint64_t)(s->blocks + 0.5)));
    }
    return probe_writer_puts(w, "]}");
}

static int
json_names(probe_writer *w, int *first, const char *key, const char *const *v, unsigned n)
{
    TRY(json_key(w, first, key));
    TRY(writer_putc(w, '['));
    for (unsigned i = 0; i < n; i++) {
        if (i)
            TRY(writer_putc(w, ','));
        TRY(jsonstr_write(w, v[i]));
    }
    return writer_putc(w, ']');
}

static int
json_sample(probe_writer *w, const probe_sample_info *s)
{
    int f = 1;

    TRY(writer_putc(w, '{'));
    TRY(json_key(w, &f, "thread"));
    if (s->thread == PROBE_SAMPLE_NO_THREAD)
        TRY(probe_writer_puts(w, "null"));
    else
        TRY(probe_writer_printf(w, "%zu", s->thread));
    TRY(json_u64(w, &f, "tid", s->tid));
    TRY(json_u64(w, &f, "weight", s->weight));
    TRY(json_u64(w, &f, "cpu_ns", s->cpu_ns));
    TRY(json_u64(w, &f, "signals", s->signals));
    TRY(json_key(w, &f, "blocked"));
    TRY(probe_writer_puts(w, s->blocked ? "true" : "false"));
    TRY(json_names(w, &f, "frames", s->frames, s->depth));
    TRY(json_names(w, &f, "scopes", s->scopes, s->nscopes));
    TRY(json_key(w, &f, "frame_ids"));
    TRY(writer_putc(w, '['));
    for (unsigned i = 0; s->frame_ids && i < s->depth; i++)
        TRY(probe_writer_printf(w, i ? ",%zu" : "%zu", s->frame_ids[i]));
    TRY(writer_putc(w, ']'));
    return writer_putc(w, '}');
}

/* The sampler's stacks (<probe/sampler.h>); null when it never ran. */
static int
json_samples(probe_writer *w, const probe_snapshot *snap)
{
    const probe_sampler_info *in = probe_snapshot_sampler_info(snap);
    size_t n = probe_snapshot_sample_count(snap);
    int f = 1;

    TRY(json_key(w, NULL, "samples"));
    if (!in || !in->interval_ns)
        return probe_writer_puts(w, "null");
    TRY(writer_putc(w, '{'));
    TRY(json_u64(w, &f, "interval_ns", in->interval_ns));
    TRY(json_str(w, &f, "mode", in->mode == PROBE_SAMPLE_WALL ? "wall" : "cpu"));
    TRY(json_bool(w, &f, "running", in->running));
    TRY(json_u64(w, &f, "signals", in->signals));
    TRY(json_u64(w, &f, "expirations", in->expirations));
    TRY(json_u64(w, &f, "dropped", in->dropped));
    TRY(json_u64(w, &f, "dropped_expirations", in->dropped_expirations));
    TRY(json_key(w, &f, "stacks"));
    TRY(writer_putc(w, '['));
    for (size_t i = 0; i < n; i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);
        if (!s)
            continue;
        TRY(probe_writer_puts(w, i ? ",\n  " : "\n  "));
        TRY(json_sample(w, s));
    }
    return probe_writer_puts(w, "\n]}");
}

/* The code mappings the frames are in (the program's first); [] without samples. */
static int
json_mappings(probe_writer *w, const probe_snapshot *snap)
{
    size_t n = probe_snapshot_mapping_count(snap);

    TRY(json_key(w, NULL, "mappings"));
    TRY(writer_putc(w, '['));
    for (size_t i = 0; i < n; i++) {
        const probe_mapping_info *m = probe_snapshot_mapping(snap, i);
        int f = 1;

        if (!m)
            continue;
        TRY(probe_writer_puts(w, i ? ",\n  {" : "\n  {"));
        TRY(json_u64(w, &f, "start", m->start));
        TRY(json_u64(w, &f, "limit", m->limit));
        TRY(json_u64(w, &f, "offset", m->offset));
        TRY(json_str(w, &f, "path", m->path ? m->path : ""));
        TRY(json_str(w, &f, "build_id", m->build_id ? m->build_id : ""));
        TRY(json_bool(w, &f, "main_program", m->main_program));
        TRY(writer_putc(w, '}'));
    }
    return probe_writer_puts(w, n ? "\n]" : "]");
}

/* The sampled stacks' distinct frames, which stacks[].frame_ids index. */
static int
json_frames(probe_writer *w, const probe_snapshot *snap)
{
    size_t n = probe_snapshot_frame_count(snap);

    TRY(json_key(w, NULL, "frames"));
    TRY(writer_putc(w, '['));
    for (size_t i = 0; i < n; i++) {
        const probe_frame_info *fr = probe_snapshot_frame(snap, i);
        int f = 1;

        if (!fr)
            continue;
        TRY(probe_writer_puts(w, i ? ",\n  {" : "\n  {"));
        TRY(json_u64(w, &f, "address", fr->address));
        TRY(json_str(w, &f, "function", fr->function));
        TRY(json_key(w, &f, "file"));
        TRY(fr->file ? jsonstr_write(w, fr->file) : probe_writer_puts(w, "null"));
        TRY(json_u64(w, &f, "line", fr->line));
        TRY(json_key(w, &f, "mapping"));
        if (fr->mapping == PROBE_NO_MAPPING)
            TRY(probe_writer_puts(w, "null"));
        else
            TRY(probe_writer_printf(w, "%zu", fr->mapping));
        TRY(json_bool(w, &f, "is_return", fr->is_return));
        TRY(writer_putc(w, '}'));
    }
    return probe_writer_puts(w, n ? "\n]" : "]");
}

/* The process the snapshot was taken in: merged reports name threads by it. */
static int
json_pid(probe_writer *w, const probe_snapshot *snap)
{
    TRY(json_key(w, NULL, "pid"));
    return probe_writer_printf(w, "%" PRIu64, snap ? snap->pid : 0);
}

/* @key: strings kept NUL-terminated back to back; @absent ("null" or "[]") without. */
static int
json_strings(probe_writer *w, const char *key, const char *buf, size_t len,
             const char *absent)
{
    TRY(json_key(w, NULL, key));
    if (!buf)
        return probe_writer_puts(w, absent);
    TRY(writer_putc(w, '['));
    for (size_t at = 0; at < len; at += strlen(buf + at) + 1) {
        if (at)
            TRY(writer_putc(w, ','));
        TRY(jsonstr_write(w, buf + at));
    }
    return writer_putc(w, ']');
}

/* The program's arguments at snapshot time; null when unknown. */
static int
json_command(probe_writer *w, const probe_snapshot *snap)
{
    return json_strings(w, "command", snap ? snap->command : NULL,
                        snap ? snap->command_len : 0, "null");
}

/* probe run --follow-fork: the children's report files; [] otherwise. */
static int
json_children(probe_writer *w, const probe_snapshot *snap)
{
    return json_strings(w, "children", snap ? snap->children : NULL,
                        snap ? snap->children_len : 0, "[]");
}

static const char *
json_event_kind(probe_event_kind kind)
{
    switch (kind) {
    case PROBE_EVENT_BEGIN:
        return "begin";
    case PROBE_EVENT_END:
        return "end";
    case PROBE_EVENT_COUNTER:
        return "counter";
    case PROBE_EVENT_INSTANT:
        return "instant";
    }
    return "unknown";
}

/* The timeline (flight recorder), grouped by thread as the snapshot holds it; [] when
 * not tracing. The recorder bounds it (buffer_events a thread, <probe/trace.h>). */
static int
json_events(probe_writer *w, const probe_snapshot *snap)
{
    size_t n = probe_snapshot_event_count(snap);

    TRY(json_key(w, NULL, "events"));
    TRY(writer_putc(w, '['));
    for (size_t i = 0; i < n; i++) {
        const probe_event_info *e = probe_snapshot_event(snap, i);
        int f = 1;

        if (!e)
            continue;
        TRY(probe_writer_puts(w, i ? ",\n  {" : "\n  {"));
        TRY(json_u64(w, &f, "thread", e->thread));
        TRY(json_str(w, &f, "kind", json_event_kind(e->kind)));
        TRY(json_u64(w, &f, "ts_ns", e->ts_ns));
        if (e->kind == PROBE_EVENT_INSTANT)
            TRY(json_str(w, &f, "name", e->name));
        else
            TRY(json_u64(w, &f, "site", e->site));
        if (e->kind == PROBE_EVENT_COUNTER)
            TRY(json_i64(w, &f, "value", e->value));
        TRY(writer_putc(w, '}'));
    }
    return probe_writer_puts(w, n ? "\n]" : "]");
}

int
json_check_options(const char *options, struct options_error *err)
{
    return options && *options ? options_fail_none(err, "json", options) : 0;
}

int
json_write(const probe_snapshot *snap, probe_writer *w, const char *options, void *user)
{
    static int (*const sections[])(probe_writer *, const probe_snapshot *) = {
        json_clock, json_sites, json_edges, json_nodes, json_threads, json_rusage,
        json_losses, json_samples, json_mappings, json_frames, json_memory, json_heap,
        json_pid, json_command, json_events, json_children,
    };

    (void)user;
    TRY(json_check_options(options, NULL));
    TRY(probe_writer_puts(w, "{\"schema\":\"" PROBE_SCHEMA "\""));
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
        TRY(probe_writer_puts(w, ",\n"));
        TRY(sections[i](w, snap));
    }
    return probe_writer_puts(w, "}\n");
}
