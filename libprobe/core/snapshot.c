/* probe_snapshot_take(): merge every thread into one immutable value, with its own
 * copies of all strings (a module may be unloaded while the snapshot lives). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/mem.h>
#include <probe/report.h>

#include "aggregate.h"
#include "clock.h"
#include "heapsum.h"
#include "memhook.h"
#include "memacct.h"
#include "samples.h"
#include "sites.h"
#include "snapshot.h"
#include "thread.h"
#include "trace.h"

struct sample_set *(*sampler_collect_hook)(void);
int (*snapshot_children_hook)(char **ret_buf, size_t *ret_len);
void *(*mem_collect_hook)(void);
void (*mem_free_hook)(void *);
struct heapsum *(*heap_collect_hook)(void);

static uint64_t
to_ns(uint64_t ticks, double ns_per_tick)
{
    /* Truncation keeps sums ordered: floor(a) + floor(b) <= floor(a + b). */
    return (uint64_t)((double)ticks * ns_per_tick);
}

static uint64_t
percentile(const struct site_acc *a, double q)
{
    uint64_t want = (uint64_t)((double)a->calls * q + 0.999999), seen = 0;

    for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++) {
        seen += a->hist[i];
        if (seen >= want && seen) {
            uint64_t mid = stats_hist_lower(i) + stats_hist_width(i) / 2;
            return mid < a->min ? a->min : mid > a->max ? a->max : mid;
        }
    }
    return a->max;
}

/* A self time as shown: a sum modulo 2^64 (stats.h), so below zero when children
 * read a later clock than their parent's end; and inner calls of a recursion still
 * running have added their self time but the outermost call has not added its total
 * yet: never below 0, never above total. */
static uint64_t
self_clamped(uint64_t self, uint64_t total)
{
    if ((int64_t)self < 0)
        return 0;
    return self < total ? self : total;
}

static void
fill_stats(probe_site_info *s, const struct site_acc *a, double npt)
{
    if (!a || !a->calls)
        return;
    s->calls = a->calls;
    s->prim_calls = a->prim_calls;
    s->value = a->value;
    if (s->kind != PROBE_KIND_SCOPE)
        return;
    s->total_ns = to_ns(a->total, npt);
    s->self_ns = to_ns(self_clamped(a->self, a->total), npt);
    s->min_ns = to_ns(a->min, npt);
    s->max_ns = to_ns(a->max, npt);
    s->p50_ns = to_ns(percentile(a, 0.50), npt);
    s->p90_ns = to_ns(percentile(a, 0.90), npt);
    s->p99_ns = to_ns(percentile(a, 0.99), npt);
    s->usage_calls = a->usage.calls;
    s->user_ns = a->usage.user_ns;
    s->system_ns = a->usage.system_ns;
    s->minor_faults = a->usage.minor_faults;
    s->major_faults = a->usage.major_faults;
    s->voluntary_switches = a->usage.voluntary_switches;
    s->involuntary_switches = a->usage.involuntary_switches;
}

/* Room a site needs in the string arena: its strings, and a "file:line" name for a
 * line site. */
static size_t
desc_size(const struct site_desc *d)
{
    size_t n = 3 * 1 + 24;

    n += d->name ? strlen(d->name) : 0;
    n += d->function ? strlen(d->function) : 0;
    n += d->file ? 2 * strlen(d->file) : 0;
    return n;
}

static const char *
arena_put(char **cursor, const char *s)
{
    char *at = *cursor;
    size_t n;

    if (!s)
        return NULL;
    n = strlen(s) + 1;
    memcpy(at, s, n);
    *cursor += n;
    return at;
}

/* Copy the description of every site into @snap, under the registry lock. */
static int
describe_sites(probe_snapshot *snap)
{
    struct site_desc d;
    size_t bytes = 1, n = 0;
    char *cur;
    int rc = -1;

    sites_lock();
    while (sites_describe_locked((uint32_t)n + 1, &d) == 0) {
        bytes += desc_size(&d);
        n++;
    }
    snap->sites = calloc(n ? n : 1, sizeof(*snap->sites));
    snap->strings = malloc(bytes);
    if (!snap->sites || !snap->strings)
        goto out;
    cur = snap->strings;
    for (size_t i = 0; i < n; i++) {
        probe_site_info *s = &snap->sites[i];
        sites_describe_locked((uint32_t)i + 1, &d);
        s->index = i;
        s->kind = d.kind;
        s->line = d.line;
        s->loaded = d.loaded;
        s->has_usage = d.usage;
        s->function = arena_put(&cur, d.function);
        s->file = arena_put(&cur, d.file);
        if (d.name) {
            s->name = arena_put(&cur, d.name);
        } else {
            int len = sprintf(cur, "%s:%u", d.file ? d.file : "?", d.line);
            s->name = cur;
            cur += len + 1;
        }
    }
    snap->nsites = n;
    rc = 0;
out:
    sites_unlock();
    return rc;
}

static int
collect_edges(probe_snapshot *snap, const struct aggregate *agg, double npt)
{
    snap->edges = calloc(agg->nedges ? agg->nedges : 1, sizeof(*snap->edges));
    if (!snap->edges)
        return -1;
    for (size_t i = 0; i < agg->edge_cap; i++) {
        const struct edge_acc *e = &agg->edges[i];
        /* Ids beyond the described sites were registered after the description. */
        if (!e->callee || !e->caller || e->caller > snap->nsites || e->callee > snap->nsites)
            continue;
        snap->edges[snap->nedges++] = (probe_edge_info){
            e->caller - 1u, e->callee - 1u, e->calls, to_ns(e->total, npt)};
    }
    return 0;
}

/* Aggregate node i (1-based: 0 is the root) becomes snapshot node i - 1. A node of a
 * site registered after the description, or under such a node, is left out. */
static int
collect_nodes(probe_snapshot *snap, const struct aggregate *agg, double npt)
{
    size_t *map = calloc(agg->nnodes ? agg->nnodes : 1, sizeof(*map));

    snap->nodes = calloc(agg->nnodes ? agg->nnodes : 1, sizeof(*snap->nodes));
    if (!map || !snap->nodes) {
        free(map);
        return -1;
    }
    /* A path with no call on it or below it (all counted before a probe_reset) is
     * left out: mark the live ones, children first, since they come after parents. */
    for (size_t i = agg->nnodes; i-- > 1;) {
        const struct node_acc *n = &agg->nodes[i];
        if (n->calls || map[i])
            map[n->parent] = 1;
        map[i] = n->calls || map[i];
    }
    map[0] = PROBE_NODE_ROOT;
    for (size_t i = 1; i < agg->nnodes; i++) {
        const struct node_acc *n = &agg->nodes[i];
        size_t parent = map[n->parent];
        int live = map[i] != 0;
        map[i] = SIZE_MAX - 1; /* left out */
        if (!live || !n->site || n->site > snap->nsites || parent == SIZE_MAX - 1)
            continue;
        probe_node_info *o = &snap->nodes[snap->nnodes];
        o->index = snap->nnodes;
        o->parent = parent;
        o->site = n->site - 1u;
        o->depth = parent == PROBE_NODE_ROOT ? 0 : snap->nodes[parent].depth + 1;
        o->calls = n->calls;
        o->total_ns = to_ns(n->total, npt);
        o->self_ns = to_ns(self_clamped(n->self, n->total), npt);
        o->mem_allocs = n->mem_allocs;
        o->mem_bytes = n->mem_bytes;
        o->mem_freed = n->mem_freed;
        map[i] = snap->nnodes++;
    }
    free(map);
    memacct_inclusive(snap->nodes, snap->nnodes, snap->sites, snap->nsites);
    return 0;
}

static int
collect_events(probe_snapshot *snap, const struct raw_events *raw, double npt)
{
    snap->events = calloc(raw->n ? raw->n : 1, sizeof(*snap->events));
    if (!snap->events)
        return -1;
    for (size_t i = 0; i < raw->n; i++) {
        const struct raw_event *r = &raw->v[i];
        probe_event_info *e = &snap->events[snap->nevents];
        if (r->kind == PROBE_EVENT_INSTANT) {
            e->site = SIZE_MAX;
            e->name = (const char *)(intptr_t)r->value;
        } else if (r->id && r->id <= snap->nsites) {
            e->site = r->id - 1u;
            e->name = snap->sites[e->site].name;
            e->value = r->value;
        } else {
            continue; /* a site registered after the description */
        }
        e->thread = r->thread;
        e->kind = (probe_event_kind)r->kind;
        e->ts_ns = clock_since_load_ns(r->ts, npt);
        snap->nevents++;
    }
    return 0;
}

/* Keep each scope site's non-empty histogram buckets, for saved reports. */
static int
collect_hists(probe_snapshot *snap, struct aggregate *agg)
{
    size_t n = 0;

    for (size_t i = 0; i < snap->nsites; i++) {
        const struct site_acc *a = agg_site(agg, (uint32_t)i + 1);
        for (unsigned b = 0; a && a->calls && b < STATS_HIST_BUCKETS; b++)
            n += a->hist[b] != 0;
    }
    snap->hist_at = calloc(snap->nsites + 1, sizeof(*snap->hist_at));
    snap->buckets = calloc(n ? n : 1, sizeof(*snap->buckets));
    if (!snap->hist_at || !snap->buckets)
        return -1;
    n = 0;
    for (size_t i = 0; i < snap->nsites; i++) {
        const struct site_acc *a = agg_site(agg, (uint32_t)i + 1);
        snap->hist_at[i] = n;
        for (unsigned b = 0; a && a->calls && b < STATS_HIST_BUCKETS; b++)
            if (a->hist[b])
                snap->buckets[n++] = (struct snap_bucket){b, a->hist[b]};
    }
    snap->hist_at[snap->nsites] = n;
    return 0;
}

size_t
snapshot_site_hist(const probe_snapshot *snap, size_t i, const struct snap_bucket **ret)
{
    if (!snap || !snap->hist_at || i >= snap->nsites) {
        *ret = NULL;
        return 0;
    }
    *ret = snap->buckets + snap->hist_at[i];
    return snap->hist_at[i + 1] - snap->hist_at[i];
}

uint64_t
snapshot_percentile_ns(const struct snap_bucket *b, size_t nb, uint64_t calls, double q,
                       double npt, uint64_t min_ns, uint64_t max_ns)
{
    uint64_t want = (uint64_t)((double)calls * q + 0.999999), seen = 0;

    /* to_ns() is monotonic, so clamping after it equals clamping the ticks. */
    for (size_t i = 0; i < nb; i++) {
        seen += b[i].count;
        if (seen >= want && seen) {
            uint64_t mid = to_ns(stats_hist_lower(b[i].bucket) +
                                     stats_hist_width(b[i].bucket) / 2, npt);
            return mid < min_ns ? min_ns : mid > max_ns ? max_ns : mid;
        }
    }
    return max_ns;
}

/* The program's arguments, for reports to name it (a report may be rendered by
 * another process, which cannot ask). Whole arguments only; none on failure. */
static void
collect_command(probe_snapshot *snap)
{
    char *buf = malloc(SNAPSHOT_COMMAND_MAX);
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    size_t len = 0;

    while (buf && fd >= 0 && len < SNAPSHOT_COMMAND_MAX) {
        ssize_t r = read(fd, buf + len, SNAPSHOT_COMMAND_MAX - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    if (fd >= 0)
        close(fd);
    while (len && buf[len - 1] != '\0') /* a cut-off last argument */
        len--;
    if (!len) {
        free(buf);
        return;
    }
    snap->command = buf;
    snap->command_len = len;
}

static int
edge_order(const void *pa, const void *pb)
{
    const probe_edge_info *a = pa, *b = pb;

    if (a->caller != b->caller)
        return a->caller < b->caller ? -1 : 1;
    return a->callee < b->callee ? -1 : a->callee > b->callee;
}

PROBE_EXPORT probe_snapshot *
probe_snapshot_take(void)
{
    struct aggregate agg = {0};
    struct raw_events raw = {0};
    probe_snapshot *snap = calloc(1, sizeof(*snap));
    double npt = clock_ns_per_tick();

    if (!snap)
        goto fail;
    if (thread_collect(&agg, &snap->listing, &snap->nthreads, &raw) < 0 ||
        agg_sites_from_nodes(&agg) < 0 || agg_derive_edges(&agg) < 0)
        goto fail;
    /* Described after collecting, so every id seen in the statistics is described. */
    if (describe_sites(snap) < 0)
        goto fail;
    for (size_t i = 0; i < snap->nsites; i++)
        fill_stats(&snap->sites[i], agg_site(&agg, (uint32_t)i + 1), npt);
    if (collect_edges(snap, &agg, npt) < 0 || collect_nodes(snap, &agg, npt) < 0 ||
        collect_events(snap, &raw, npt) < 0 || collect_hists(snap, &agg) < 0)
        goto fail;
    qsort(snap->edges, snap->nedges, sizeof(*snap->edges), edge_order);

    snap->threads = calloc(snap->nthreads ? snap->nthreads : 1, sizeof(*snap->threads));
    if (!snap->threads)
        goto fail;
    for (size_t i = 0; i < snap->nthreads; i++) {
        const struct thread_listing *l = &snap->listing[i];
        snap->threads[i] = (probe_thread_info){l->tid, l->name, l->live, l->scopes,
                                               l->events_dropped};
    }
    struct sample_set *(*collect)(void) = __atomic_load_n(&sampler_collect_hook,
                                                           __ATOMIC_ACQUIRE);
    snap->samples = collect ? collect() : NULL;
    for (size_t i = 0; snap->samples && i < snap->samples->n; i++) {
        probe_sample_info *s = &snap->samples->v[i];
        s->thread = PROBE_SAMPLE_NO_THREAD;
        for (size_t k = 0; k < snap->nthreads; k++)
            if (snap->threads[k].tid == s->tid)
                s->thread = k; /* the last: a live thread after an exited one */
    }
    void *(*mem_collect)(void) = __atomic_load_n(&mem_collect_hook, __ATOMIC_ACQUIRE);
    if (mem_collect) {
        snap->mem_free = __atomic_load_n(&mem_free_hook, __ATOMIC_ACQUIRE);
        if (!(snap->mem = mem_collect()))
            goto fail;
    }
    struct heapsum *(*heap_collect)(void) = __atomic_load_n(&heap_collect_hook,
                                                            __ATOMIC_ACQUIRE);
    if (heap_collect && !(snap->heap = heap_collect()))
        goto fail;
    snap->losses = (probe_loss_info){agg.loss.depth_overflow, agg.loss.unbalanced,
                                     agg.loss.edges_dropped, agg.loss.sites_dropped,
                                     agg.loss.threads_unlisted, raw.dropped,
                                     agg.loss.stats_dropped};
    snap->pid = (uint64_t)getpid();
    collect_command(snap);
    int (*children)(char **, size_t *) = __atomic_load_n(&snapshot_children_hook,
                                                         __ATOMIC_ACQUIRE);
    if (children && children(&snap->children, &snap->children_len) < 0)
        snap->children = NULL, snap->children_len = 0; /* the list is a courtesy */
    snap->clock.name = clock_name();
    snap->clock.ns_per_tick = npt;
    snap->clock.elapsed_ns = clock_monotonic_ns() - clock_epoch_ns();
    (void)probe_getrusage(PROBE_RUSAGE_SELF, &snap->rusage); /* zeroes stay on failure */
    /* A duration a report can show, not a clock reading (docs/json-schema.md). */
    if (snap->rusage.user_ns || snap->rusage.system_ns || snap->rusage.max_rss_bytes)
        snap->rusage.wall_ns = clock_process_age_ns();
    agg_free(&agg);
    free(raw.v);
    return snap;
fail:
    agg_free(&agg);
    free(raw.v);
    probe_snapshot_free(snap);
    errno = ENOMEM;
    return NULL;
}

PROBE_EXPORT void
probe_snapshot_free(probe_snapshot *snap)
{
    if (!snap)
        return;
    free(snap->sites);
    free(snap->edges);
    free(snap->nodes);
    free(snap->events);
    free(snap->threads);
    free(snap->listing);
    free(snap->strings);
    free(snap->buckets);
    free(snap->hist_at);
    free(snap->extra);
    free(snap->command);
    free(snap->children);
    if (snap->samples)
        snap->samples->free(snap->samples);
    if (snap->mem)
        snap->mem_free(snap->mem);
    heapsum_free(snap->heap);
    free(snap);
}

PROBE_EXPORT size_t
probe_snapshot_site_count(const probe_snapshot *snap)
{
    return snap ? snap->nsites : 0;
}

PROBE_EXPORT const probe_site_info *
probe_snapshot_site(const probe_snapshot *snap, size_t i)
{
    return snap && i < snap->nsites ? &snap->sites[i] : NULL;
}

PROBE_EXPORT size_t
probe_snapshot_edge_count(const probe_snapshot *snap)
{
    return snap ? snap->nedges : 0;
}

PROBE_EXPORT const probe_edge_info *
probe_snapshot_edge(const probe_snapshot *snap, size_t i)
{
    return snap && i < snap->nedges ? &snap->edges[i] : NULL;
}

PROBE_EXPORT size_t
probe_snapshot_node_count(const probe_snapshot *snap)
{
    return snap ? snap->nnodes : 0;
}

PROBE_EXPORT const probe_node_info *
probe_snapshot_node(const probe_snapshot *snap, size_t i)
{
    return snap && i < snap->nnodes ? &snap->nodes[i] : NULL;
}

PROBE_EXPORT size_t
probe_snapshot_event_count(const probe_snapshot *snap)
{
    return snap ? snap->nevents : 0;
}

PROBE_EXPORT const probe_event_info *
probe_snapshot_event(const probe_snapshot *snap, size_t i)
{
    return snap && i < snap->nevents ? &snap->events[i] : NULL;
}

PROBE_EXPORT size_t
probe_snapshot_thread_count(const probe_snapshot *snap)
{
    return snap ? snap->nthreads : 0;
}

PROBE_EXPORT const probe_thread_info *
probe_snapshot_thread(const probe_snapshot *snap, size_t i)
{
    return snap && i < snap->nthreads ? &snap->threads[i] : NULL;
}

PROBE_EXPORT const probe_loss_info *
probe_snapshot_losses(const probe_snapshot *snap)
{
    return snap ? &snap->losses : NULL;
}

PROBE_EXPORT const probe_clock_info *
probe_snapshot_clock(const probe_snapshot *snap)
{
    return snap ? &snap->clock : NULL;
}

PROBE_EXPORT const probe_rusage *
probe_snapshot_rusage(const probe_snapshot *snap)
{
    return snap ? &snap->rusage : NULL;
}

PROBE_EXPORT const probe_site_info *
probe_snapshot_find(const probe_snapshot *snap, const char *name)
{
    if (!snap || !name)
        return NULL;
    for (size_t i = 0; i < snap->nsites; i++) {
        if (snap->sites[i].name && strcmp(snap->sites[i].name, name) == 0)
            return &snap->sites[i];
    }
    return NULL;
}

PROBE_EXPORT size_t
probe_snapshot_sample_count(const probe_snapshot *snap)
{
    return snap && snap->samples ? snap->samples->n : 0;
}

PROBE_EXPORT const probe_sample_info *
probe_snapshot_sample(const probe_snapshot *snap, size_t i)
{
    return snap && snap->samples && i < snap->samples->n ? &snap->samples->v[i] : NULL;
}

PROBE_EXPORT const probe_sampler_info *
probe_snapshot_sampler_info(const probe_snapshot *snap)
{
    static const probe_sampler_info none;

    if (!snap)
        return NULL;
    return snap->samples ? &snap->samples->info : &none;
}

PROBE_EXPORT size_t
probe_snapshot_mapping_count(const probe_snapshot *snap)
{
    return snap && snap->samples ? snap->samples->nmappings : 0;
}

PROBE_EXPORT const probe_mapping_info *
probe_snapshot_mapping(const probe_snapshot *snap, size_t i)
{
    return snap && snap->samples && i < snap->samples->nmappings
               ? &snap->samples->mappings[i]
               : NULL;
}

PROBE_EXPORT size_t
probe_snapshot_frame_count(const probe_snapshot *snap)
{
    return snap && snap->samples ? snap->samples->nframes : 0;
}

PROBE_EXPORT const probe_frame_info *
probe_snapshot_frame(const probe_snapshot *snap, size_t i)
{
    return snap && snap->samples && i < snap->samples->nframes ? &snap->samples->frames[i]
                                                               : NULL;
}

PROBE_EXPORT const probe_mem_snapshot *
probe_snapshot_mem(const probe_snapshot *snap)
{
    return snap ? snap->mem : NULL;
}

struct sample_set *
snapshot_sample_set(probe_snapshot *snap)
{
    return snap ? snap->samples : NULL;
}

void
snapshot_set_elapsed(probe_snapshot *snap, uint64_t ns)
{
    if (snap)
        snap->clock.elapsed_ns = ns;
}
