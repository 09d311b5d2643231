/* probe_snapshot_merge(): several snapshots (saved reports of forked children, or
 * repeated runs) into one. Sites are matched by what identifies them in source,
 * never by index; histograms are summed so percentiles are recomputed, not
 * averaged. The result owns copies of every string. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <probe/report.h>

#include "core/heapsum.h"
#include "core/samples.h"
#include "core/snapshot.h"
#include "core/stats.h"
#include "mem/msnap.h"

struct arena {
    char *buf;
    size_t at, cap;
};

static size_t
slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *
arena_dup(struct arena *a, const char *s)
{
    size_t n = slen(s);
    char *at = a->buf + a->at;

    if (!s)
        return NULL;
    memcpy(at, s, n);
    a->at += n;
    return at;
}

/* Bytes every string of @s needs, with room for a thread's "pid P: " prefix. */
static size_t
strings_size(const probe_snapshot *s)
{
    size_t n = slen(s->clock.name);

    for (size_t i = 0; i < s->nsites; i++)
        n += slen(s->sites[i].name) + slen(s->sites[i].file) + slen(s->sites[i].function);
    for (size_t i = 0; i < s->nthreads; i++)
        n += slen(s->threads[i].name) + 32;
    for (size_t i = 0; s->samples && i < s->samples->n; i++) {
        const probe_sample_info *x = &s->samples->v[i];
        for (unsigned k = 0; k < x->depth; k++)
            n += slen(x->frames[k]);
        for (unsigned k = 0; k < x->nscopes; k++)
            n += slen(x->scopes[k]);
    }
    for (size_t i = 0; s->samples && i < s->samples->nframes; i++)
        n += slen(s->samples->frames[i].function) + slen(s->samples->frames[i].file);
    for (size_t i = 0; s->samples && i < s->samples->nmappings; i++)
        n += slen(s->samples->mappings[i].path) + slen(s->samples->mappings[i].build_id);
    for (size_t i = 0; i < s->nevents; i++)
        if (s->events[i].kind == PROBE_EVENT_INSTANT)
            n += slen(s->events[i].name);
    return n;
}

static int
str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static uint64_t
str_hash(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return (h ^ (s ? 1 : 2)) * 1099511628211u;
}

static int
site_same(const probe_site_info *a, const probe_site_info *b)
{
    return a->kind == b->kind && a->line == b->line && str_eq(a->name, b->name) &&
           str_eq(a->file, b->file) && str_eq(a->function, b->function);
}

static uint64_t
site_hash(const probe_site_info *s)
{
    uint64_t h = 14695981039346656037u ^ ((uint64_t)s->kind << 32 | s->line);
    return str_hash(str_hash(str_hash(h, s->name), s->file), s->function);
}

/* An open-addressing table of indices (SIZE_MAX: free), a power of two in size. */
struct table {
    size_t *slot;
    size_t mask;
};

static int
table_init(struct table *t, size_t n)
{
    size_t cap = 16;

    while (cap < 2 * n + 16)
        cap *= 2;
    t->slot = malloc(cap * sizeof(*t->slot));
    if (!t->slot)
        return -1;
    memset(t->slot, 0xff, cap * sizeof(*t->slot));
    t->mask = cap - 1;
    return 0;
}

struct node_key {
    size_t parent, site;
};

static int
edge_cmp(const void *pa, const void *pb)
{
    const probe_edge_info *a = pa, *b = pb;

    if (a->caller != b->caller)
        return a->caller < b->caller ? -1 : 1;
    return a->callee < b->callee ? -1 : a->callee > b->callee;
}

struct merged_samples {
    struct sample_set set;
    const char **names;
    size_t *ids;
    uint64_t *addrs;
};

static void
merged_samples_free(struct sample_set *s)
{
    struct merged_samples *m = (struct merged_samples *)s;

    free(s->v);
    free(s->frames);
    free(s->mappings);
    free(m->names);
    free(m->ids);
    free(m->addrs);
    free(m);
}

static int
merge_samples(probe_snapshot *out, const probe_snapshot *const *in, size_t n,
              struct arena *ar, const size_t *thread_base)
{
    size_t ns = 0, nf = 0, nm = 0, nnames = 0, nids = 0;
    int any = 0;

    for (size_t k = 0; k < n; k++) {
        const struct sample_set *s = in[k]->samples;
        if (!s || !s->info.interval_ns)
            continue;
        any = 1;
        ns += s->n, nf += s->nframes, nm += s->nmappings;
        for (size_t i = 0; i < s->n; i++)
            nnames += s->v[i].depth + s->v[i].nscopes, nids += s->v[i].depth;
    }
    if (!any)
        return 0;
    struct merged_samples *m = calloc(1, sizeof(*m));
    if (!m)
        return -1;
    m->set.free = merged_samples_free;
    out->samples = &m->set;
    m->set.v = calloc(ns ? ns : 1, sizeof(*m->set.v));
    m->set.frames = calloc(nf ? nf : 1, sizeof(*m->set.frames));
    m->set.mappings = calloc(nm ? nm : 1, sizeof(*m->set.mappings));
    m->names = calloc(nnames ? nnames : 1, sizeof(*m->names));
    m->ids = calloc(nids ? nids : 1, sizeof(*m->ids));
    m->addrs = calloc(nids ? nids : 1, sizeof(*m->addrs));
    if (!m->set.v || !m->set.frames || !m->set.mappings || !m->names || !m->ids ||
        !m->addrs)
        return -1;
    size_t at = 0, idat = 0;
    probe_sampler_info *info = &m->set.info;
    for (size_t k = 0; k < n; k++) {
        const struct sample_set *s = in[k]->samples;
        size_t fbase = m->set.nframes, mbase = m->set.nmappings;
        if (!s || !s->info.interval_ns)
            continue;
        if (!info->interval_ns) {
            info->interval_ns = s->info.interval_ns;
            info->mode = s->info.mode;
        }
        info->running |= s->info.running;
        info->signals += s->info.signals;
        info->expirations += s->info.expirations;
        info->dropped += s->info.dropped;
        info->dropped_expirations += s->info.dropped_expirations;
        for (size_t i = 0; i < s->nmappings; i++) {
            probe_mapping_info *o = &m->set.mappings[m->set.nmappings++];
            *o = s->mappings[i];
            o->path = arena_dup(ar, o->path);
            o->build_id = arena_dup(ar, o->build_id);
        }
        for (size_t i = 0; i < s->nframes; i++) {
            probe_frame_info *o = &m->set.frames[m->set.nframes++];
            *o = s->frames[i];
            o->function = arena_dup(ar, o->function);
            o->file = arena_dup(ar, o->file);
            if (o->mapping != PROBE_NO_MAPPING)
                o->mapping += mbase;
        }
        for (size_t i = 0; i < s->n; i++) {
            const probe_sample_info *x = &s->v[i];
            probe_sample_info *o = &m->set.v[m->set.n++];
            *o = *x;
            if (x->thread != PROBE_SAMPLE_NO_THREAD)
                o->thread = x->thread + thread_base[k];
            o->frames = m->names + at;
            for (unsigned j = 0; j < x->depth; j++)
                m->names[at++] = arena_dup(ar, x->frames[j]);
            o->scopes = m->names + at;
            for (unsigned j = 0; j < x->nscopes; j++)
                m->names[at++] = arena_dup(ar, x->scopes[j]);
            o->frame_ids = x->frame_ids ? m->ids + idat : NULL;
            o->addresses = x->addresses ? m->addrs + idat : NULL;
            for (unsigned j = 0; j < x->depth; j++) {
                if (x->frame_ids)
                    m->ids[idat + j] = x->frame_ids[j] + fbase;
                if (x->addresses)
                    m->addrs[idat + j] = x->addresses[j];
            }
            idat += x->depth;
        }
    }
    return 0;
}

/* Sum input @k's histogram of site @i into @h (dense), rebucketed when its clock
 * ran at another rate than the merged one. */
static void
hist_add(uint64_t *h, const probe_snapshot *in, size_t i, double npt)
{
    const struct snap_bucket *b;
    size_t nb = snapshot_site_hist(in, i, &b);

    for (size_t j = 0; j < nb; j++) {
        unsigned to = b[j].bucket;
        if (in->clock.ns_per_tick != npt && npt > 0) {
            double mid = (double)(stats_hist_lower(to) + stats_hist_width(to) / 2);
            to = stats_hist_bucket((uint64_t)(mid * in->clock.ns_per_tick / npt));
        }
        h[to] += b[j].count;
    }
}

/* Every input's timeline, one after another: each keeps its threads (renumbered as
 * merged) and so its events stay grouped by thread, apart from other processes'. */
static int
merge_events(probe_snapshot *out, const probe_snapshot *const *in, size_t n,
             struct arena *ar, const size_t *map, const size_t *site_base,
             const size_t *thread_base)
{
    size_t total = 0;

    for (size_t k = 0; k < n; k++)
        total += in[k]->nevents;
    if (!total)
        return 0;
    free(out->events);
    out->events = calloc(total, sizeof(*out->events));
    if (!out->events)
        return -1;
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < in[k]->nevents; i++) {
            const probe_event_info *x = &in[k]->events[i];
            probe_event_info *o = &out->events[out->nevents++];
            *o = *x;
            o->thread = x->thread + thread_base[k];
            if (x->site < in[k]->nsites) {
                o->site = map[site_base[k] + x->site];
                o->name = out->sites[o->site].name;
            } else {
                o->site = SIZE_MAX;
                o->name = arena_dup(ar, x->name);
            }
        }
    return 0;
}

/* The program's arguments: kept when every input has the same (the children of one
 * program, repeated runs of one command); otherwise unknown. */
static int
merge_command(probe_snapshot *out, const probe_snapshot *const *in, size_t n)
{
    const probe_snapshot *first = in[0];

    if (!first->command)
        return 0;
    for (size_t k = 1; k < n; k++)
        if (in[k]->command_len != first->command_len || !in[k]->command ||
            memcmp(in[k]->command, first->command, first->command_len) != 0)
            return 0;
    out->command = malloc(first->command_len);
    if (!out->command)
        return -1;
    memcpy(out->command, first->command, first->command_len);
    out->command_len = first->command_len;
    return 0;
}

static void
merge_mem_free(void *p)
{
    probe_mem_snapshot_free(p);
}

static int
merge_by_live_bytes(const void *pa, const void *pb)
{
    const probe_mem_tag_info *a = pa, *b = pb;

    if (a->live_bytes != b->live_bytes)
        return a->live_bytes > b->live_bytes ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Tagged memory: tags matched by name, every count summed; a tag's peak is not
 * known across processes (each peaked at its own time): with several inputs the
 * peaks are dropped (peaks_unknown), not guessed. */
static int
merge_memory(probe_snapshot *out, const probe_snapshot *const *in, size_t n)
{
    size_t cap = 0, have = 0;

    for (size_t k = 0; k < n; k++) {
        const probe_mem_snapshot *m = in[k]->mem;
        if (m) {
            cap += m->info.tags;
            have++;
        }
    }
    if (!have)
        return 0;

    probe_mem_snapshot *o = calloc(1, sizeof(*o));

    if (!o || !(o->tags = calloc(cap ? cap : 1, sizeof(*o->tags))) ||
        !(o->names = calloc(cap ? cap : 1, PROBE_MEM_TAG_MAX_LEN + 1))) {
        probe_mem_snapshot_free(o);
        return -1;
    }
    out->mem = o;
    out->mem_free = merge_mem_free;
    for (size_t k = 0; k < n; k++) {
        const probe_mem_snapshot *m = in[k]->mem;
        if (!m)
            continue;
        o->info.table_slots = o->info.table_slots > m->info.table_slots
                                  ? o->info.table_slots : m->info.table_slots;
        o->info.table_full += m->info.table_full;
        o->info.tags_dropped += m->info.tags_dropped;
        o->info.fork_lost += m->info.fork_lost;
        o->info.is_diff |= m->info.is_diff;
        for (size_t i = 0; i < m->info.tags; i++) {
            const probe_mem_tag_info *t = &m->tags[i];
            size_t j = 0;

            /* Tags are few (PROBE_MEM_MAX_TAGS per process): a scan will do. */
            while (j < o->info.tags && strcmp(o->tags[j].name, t->name) != 0)
                j++;
            probe_mem_tag_info *x = &o->tags[j];
            if (j == o->info.tags) {
                char *name = o->names + j * (PROBE_MEM_TAG_MAX_LEN + 1);
                snprintf(name, PROBE_MEM_TAG_MAX_LEN + 1, "%s", t->name);
                x->name = name;
                o->info.tags++;
            }
            x->live_count += t->live_count;
            x->live_bytes += t->live_bytes;
            x->peak_bytes = have == 1 ? t->peak_bytes : 0;
            x->allocs += t->allocs;
            x->frees += t->frees;
            x->alloc_bytes += t->alloc_bytes;
            x->growth_count += t->growth_count;
            x->growth_bytes += t->growth_bytes;
            x->untracked_frees += t->untracked_frees;
            x->double_frees += t->double_frees;
        }
    }

    int64_t positive = 0;

    for (size_t j = 0; j < o->info.tags; j++) {
        probe_mem_tag_info *x = &o->tags[j];
        x->avg_bytes = x->allocs ? x->alloc_bytes / x->allocs : 0;
        o->info.live_count += x->live_count;
        o->info.live_bytes += x->live_bytes;
        positive += x->live_bytes > 0 ? x->live_bytes : 0;
    }
    for (size_t j = 0; j < o->info.tags; j++) {
        probe_mem_tag_info *x = &o->tags[j];
        if (!o->info.is_diff)
            x->share = positive && x->live_bytes > 0 ? (double)x->live_bytes / positive : 0;
        else
            x->share = have == 1 ? x->share : 0;
    }
    if (have > 1) /* one keeps its order */
        qsort(o->tags, o->info.tags, sizeof(*o->tags), merge_by_live_bytes);
    return 0;
}

static int
merge_heap_site_cmp(const void *pa, const void *pb)
{
    const struct heapsum_site *a = pa, *b = pb;

    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    return 0;
}

static int
heap_site_same(const struct heapsum_site *a, const struct heapsum_site *b)
{
    if (a->nframes != b->nframes)
        return 0;
    for (unsigned f = 0; f < a->nframes; f++)
        if (strcmp(a->frames[f], b->frames[f]) != 0)
            return 0;
    return 1;
}

/* The sampled heap: totals summed; top sites matched by their frames and summed,
 * the largest HEAPSUM_SITES kept. Exact for one input. With several, each brought
 * only its own top sites (heap_sites_partial), and the peak and the timeline are
 * dropped (peaks_unknown): processes peak at their own times. */
static int
merge_heap(probe_snapshot *out, const probe_snapshot *const *in, size_t n)
{
    size_t cap = 0, npoints = 0, have = 0;

    for (size_t k = 0; k < n; k++) {
        if (in[k]->heap) {
            cap += in[k]->heap->nsites;
            npoints = in[k]->heap->npoints;
            have++;
        }
    }
    if (!have)
        return 0;

    struct heapsum *h = calloc(1, sizeof(*h));

    if (!h || !(h->sites = calloc(cap ? cap : 1, sizeof(*h->sites)))) {
        heapsum_free(h);
        return -1;
    }
    out->heap = h;
    if (have == 1 && npoints) {
        if (!(h->points = malloc(npoints * sizeof(*h->points))))
            return -1;
    }
    for (size_t k = 0; k < n; k++) {
        const struct heapsum *x = in[k]->heap;
        if (!x)
            continue;
        h->mean = h->mean > x->mean ? h->mean : x->mean;
        h->samples += x->samples;
        h->alloc_space += x->alloc_space;
        h->alloc_objects += x->alloc_objects;
        h->inuse_space += x->inuse_space;
        if (have == 1) {
            h->peak_space = x->peak_space;
            if (x->npoints)
                memcpy(h->points, x->points, x->npoints * sizeof(*h->points));
            h->npoints = x->npoints;
        }
        for (size_t i = 0; i < x->nsites; i++) {
            size_t j = 0;

            while (j < h->nsites && !heap_site_same(&h->sites[j], &x->sites[i]))
                j++;
            if (j == h->nsites)
                h->sites[h->nsites++] = (struct heapsum_site){
                    .nframes = x->sites[i].nframes};
            memcpy(h->sites[j].frames, x->sites[i].frames, sizeof(h->sites[j].frames));
            h->sites[j].bytes += x->sites[i].bytes;
            h->sites[j].blocks += x->sites[i].blocks;
        }
    }
    if (have > 1) /* one keeps its order */
        qsort(h->sites, h->nsites, sizeof(*h->sites), merge_heap_site_cmp);
    if (h->nsites > HEAPSUM_SITES)
        h->nsites = HEAPSUM_SITES;
    return 0;
}

static probe_snapshot *
merge_fail(probe_snapshot *out, size_t *map, struct table *t, uint64_t *h)
{
    free(map);
    free(t->slot);
    free(h);
    probe_snapshot_free(out);
    errno = ENOMEM;
    return NULL;
}

PROBE_EXPORT probe_snapshot *
probe_snapshot_merge(const probe_snapshot *const *in, size_t n)
{
    size_t total_sites = 0, total_edges = 0, total_nodes = 0, total_threads = 0;
    size_t bytes = 1;
    struct table t = {0};
    size_t *map = NULL;
    uint64_t *h = NULL;
    struct arena ar;
    probe_snapshot *out;

    if (!in || !n) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t k = 0; k < n; k++) {
        if (!in[k]) {
            errno = EINVAL;
            return NULL;
        }
        total_sites += in[k]->nsites;
        total_edges += in[k]->nedges;
        total_nodes += in[k]->nnodes;
        total_threads += in[k]->nthreads;
        bytes += strings_size(in[k]);
    }
    out = calloc(1, sizeof(*out));
    if (!out)
        return merge_fail(NULL, NULL, &t, NULL);
    out->strings = malloc(bytes);
    out->sites = calloc(total_sites + 1, sizeof(*out->sites));
    out->edges = calloc(total_edges + 1, sizeof(*out->edges));
    out->nodes = calloc(total_nodes + 1, sizeof(*out->nodes));
    out->threads = calloc(total_threads + 1, sizeof(*out->threads));
    out->events = calloc(1, sizeof(*out->events));
    /* map: input k's site i -> merged site, then reused for nodes. */
    map = calloc(total_sites + total_nodes + 2 * n + 1, sizeof(*map));
    if (!out->strings || !out->sites || !out->edges || !out->nodes || !out->threads ||
        !out->events || !map || table_init(&t, total_sites) < 0)
        return merge_fail(out, map, &t, h);
    ar = (struct arena){out->strings, 0, bytes};

    const probe_snapshot *first = in[0];
    double npt = first->clock.ns_per_tick;
    out->clock.name = arena_dup(&ar, first->clock.name);
    out->clock.ns_per_tick = npt;
    out->pid = n == 1 ? first->pid : 0;

    /* Sites: match, then sum. */
    size_t *site_base = map + total_sites + total_nodes, base = 0;
    for (size_t k = 0; k < n; k++) {
        site_base[k] = base;
        for (size_t i = 0; i < in[k]->nsites; i++, base++) {
            const probe_site_info *s = &in[k]->sites[i];
            size_t at = site_hash(s) & t.mask;
            while (t.slot[at] != SIZE_MAX && !site_same(&out->sites[t.slot[at]], s))
                at = (at + 1) & t.mask;
            if (t.slot[at] == SIZE_MAX) {
                probe_site_info *o = &out->sites[out->nsites];
                o->index = out->nsites;
                o->kind = s->kind;
                o->line = s->line;
                o->name = arena_dup(&ar, s->name);
                o->file = arena_dup(&ar, s->file);
                o->function = arena_dup(&ar, s->function);
                t.slot[at] = out->nsites++;
            }
            map[base] = t.slot[at];
        }
    }
    h = calloc(out->nsites * (size_t)STATS_HIST_BUCKETS + 1, sizeof(*h));
    char *exact = calloc(out->nsites + 1, 1);
    if (!h || !exact) {
        free(exact);
        return merge_fail(out, map, &t, h);
    }
    memset(exact, 1, out->nsites);
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < in[k]->nsites; i++) {
            const probe_site_info *s = &in[k]->sites[i];
            size_t m = map[site_base[k] + i];
            probe_site_info *o = &out->sites[m];
            int had = o->calls != 0;
            o->loaded |= s->loaded;
            o->has_usage |= s->has_usage;
            o->mem_allocs += s->mem_allocs;
            o->mem_bytes += s->mem_bytes;
            o->mem_freed += s->mem_freed;
            if (!s->calls)
                continue;
            o->calls += s->calls;
            o->prim_calls += s->prim_calls;
            o->total_ns += s->total_ns;
            o->self_ns += s->self_ns;
            o->value += s->value;
            o->min_ns = had && o->min_ns < s->min_ns ? o->min_ns : s->min_ns;
            o->max_ns = o->max_ns > s->max_ns ? o->max_ns : s->max_ns;
            /* Without a histogram, the largest percentile is the best bound. */
            o->p50_ns = o->p50_ns > s->p50_ns ? o->p50_ns : s->p50_ns;
            o->p90_ns = o->p90_ns > s->p90_ns ? o->p90_ns : s->p90_ns;
            o->p99_ns = o->p99_ns > s->p99_ns ? o->p99_ns : s->p99_ns;
            o->usage_calls += s->usage_calls;
            o->user_ns += s->user_ns;
            o->system_ns += s->system_ns;
            o->minor_faults += s->minor_faults;
            o->major_faults += s->major_faults;
            o->voluntary_switches += s->voluntary_switches;
            o->involuntary_switches += s->involuntary_switches;
            if (!in[k]->hist_at)
                exact[m] = 0;
            hist_add(h + m * STATS_HIST_BUCKETS, in[k], i, npt);
        }
    }
    /* Keep the summed histograms, sparse, and recompute the percentiles from them. */
    size_t nb = 0;
    for (size_t i = 0; i < out->nsites * (size_t)STATS_HIST_BUCKETS; i++)
        nb += h[i] != 0;
    out->hist_at = calloc(out->nsites + 1, sizeof(*out->hist_at));
    out->buckets = calloc(nb + 1, sizeof(*out->buckets));
    if (!out->hist_at || !out->buckets) {
        free(exact);
        return merge_fail(out, map, &t, h);
    }
    nb = 0;
    for (size_t i = 0; i < out->nsites; i++) {
        probe_site_info *o = &out->sites[i];
        out->hist_at[i] = nb;
        for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++)
            if (h[i * STATS_HIST_BUCKETS + b])
                out->buckets[nb++] = (struct snap_bucket){b, h[i * STATS_HIST_BUCKETS + b]};
        if (n > 1 && exact[i] && o->kind == PROBE_KIND_SCOPE && o->calls) {
            const struct snap_bucket *hb = out->buckets + out->hist_at[i];
            size_t hn = nb - out->hist_at[i];
            o->p50_ns = snapshot_percentile_ns(hb, hn, o->calls, 0.50, npt, o->min_ns, o->max_ns);
            o->p90_ns = snapshot_percentile_ns(hb, hn, o->calls, 0.90, npt, o->min_ns, o->max_ns);
            o->p99_ns = snapshot_percentile_ns(hb, hn, o->calls, 0.99, npt, o->min_ns, o->max_ns);
        }
    }
    out->hist_at[out->nsites] = nb;
    free(exact);
    free(h);
    h = NULL;
    if (n == 1) /* a copy keeps the percentiles as they were */
        for (size_t i = 0; i < out->nsites; i++) {
            out->sites[i].p50_ns = first->sites[i].p50_ns;
            out->sites[i].p90_ns = first->sites[i].p90_ns;
            out->sites[i].p99_ns = first->sites[i].p99_ns;
        }

    /* Edges: mapped, sorted, equal pairs summed. */
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < in[k]->nedges; i++) {
            probe_edge_info e = in[k]->edges[i];
            e.caller = map[site_base[k] + e.caller];
            e.callee = map[site_base[k] + e.callee];
            out->edges[out->nedges++] = e;
        }
    qsort(out->edges, out->nedges, sizeof(*out->edges), edge_cmp);
    size_t ne = 0;
    for (size_t i = 0; i < out->nedges; i++) {
        if (ne && edge_cmp(&out->edges[ne - 1], &out->edges[i]) == 0) {
            out->edges[ne - 1].calls += out->edges[i].calls;
            out->edges[ne - 1].total_ns += out->edges[i].total_ns;
        } else {
            out->edges[ne++] = out->edges[i];
        }
    }
    out->nedges = ne;

    /* Nodes: a path is its merged parent and merged site; parents come first. */
    free(t.slot);
    if (table_init(&t, total_nodes) < 0)
        return merge_fail(out, map, &t, h);
    size_t *nmap = map + total_sites;
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < in[k]->nnodes; i++) {
            const probe_node_info *x = &in[k]->nodes[i];
            size_t parent = x->parent == PROBE_NODE_ROOT ? PROBE_NODE_ROOT : nmap[x->parent];
            size_t site = map[site_base[k] + x->site];
            size_t at = (str_hash(parent * 1099511628211u ^ site, NULL)) & t.mask;
            while (t.slot[at] != SIZE_MAX && (out->nodes[t.slot[at]].parent != parent ||
                                              out->nodes[t.slot[at]].site != site))
                at = (at + 1) & t.mask;
            if (t.slot[at] == SIZE_MAX) {
                probe_node_info *o = &out->nodes[out->nnodes];
                o->index = out->nnodes;
                o->parent = parent;
                o->site = site;
                o->depth = parent == PROBE_NODE_ROOT ? 0 : out->nodes[parent].depth + 1;
                t.slot[at] = out->nnodes++;
            }
            probe_node_info *o = &out->nodes[t.slot[at]];
            o->calls += x->calls;
            o->total_ns += x->total_ns;
            o->self_ns += x->self_ns;
            nmap[i] = t.slot[at];
        }
    }

    /* Threads: kept apart, named after their process when there are several. */
    size_t *thread_base = site_base + n;
    for (size_t k = 0; k < n; k++) {
        thread_base[k] = out->nthreads;
        for (size_t i = 0; i < in[k]->nthreads; i++) {
            probe_thread_info *o = &out->threads[out->nthreads++];
            const char *name = in[k]->threads[i].name;
            *o = in[k]->threads[i];
            if (n == 1) {
                o->name = arena_dup(&ar, name ? name : "");
                continue;
            }
            char *at = ar.buf + ar.at;
            int len;
            if (in[k]->pid)
                len = sprintf(at, "pid %" PRIu64 "%s%s", in[k]->pid, name && *name ? ": " : "",
                              name ? name : "");
            else
                len = sprintf(at, "report %zu%s%s", k + 1, name && *name ? ": " : "",
                              name ? name : "");
            o->name = at;
            ar.at += (size_t)len + 1;
        }
    }

    for (size_t k = 0; k < n; k++) {
        const probe_snapshot *s = in[k];
        if (s->clock.elapsed_ns > out->clock.elapsed_ns)
            out->clock.elapsed_ns = s->clock.elapsed_ns;
        probe_rusage *r = &out->rusage;
        r->wall_ns = r->wall_ns > s->rusage.wall_ns ? r->wall_ns : s->rusage.wall_ns;
        r->user_ns += s->rusage.user_ns;
        r->system_ns += s->rusage.system_ns;
        if (s->rusage.max_rss_bytes > r->max_rss_bytes)
            r->max_rss_bytes = s->rusage.max_rss_bytes;
        r->minor_faults += s->rusage.minor_faults;
        r->major_faults += s->rusage.major_faults;
        r->voluntary_switches += s->rusage.voluntary_switches;
        r->involuntary_switches += s->rusage.involuntary_switches;
        r->block_in += s->rusage.block_in;
        r->block_out += s->rusage.block_out;
        probe_loss_info *l = &out->losses;
        l->depth_overflow += s->losses.depth_overflow;
        l->unbalanced += s->losses.unbalanced;
        l->edges_dropped += s->losses.edges_dropped;
        l->sites_dropped += s->losses.sites_dropped;
        l->threads_unlisted += s->losses.threads_unlisted;
        l->events_dropped += s->losses.events_dropped;
    }
    if (merge_samples(out, in, n, &ar, thread_base) < 0 ||
        merge_events(out, in, n, &ar, map, site_base, thread_base) < 0 ||
        merge_command(out, in, n) < 0 || merge_memory(out, in, n) < 0 ||
        merge_heap(out, in, n) < 0)
        return merge_fail(out, map, &t, h);
    /* What several inputs could not keep exactly; one input keeps its own marks. */
    size_t nmem = 0, nheap = 0;
    for (size_t k = 0; k < n; k++) {
        nmem += in[k]->mem != NULL;
        nheap += in[k]->heap != NULL;
        out->peaks_unknown |= in[k]->peaks_unknown;
        out->heap_sites_partial |= in[k]->heap_sites_partial;
    }
    out->peaks_unknown |= nmem > 1 || nheap > 1;
    out->heap_sites_partial |= nheap > 1;
    free(map);
    free(t.slot);
    return out;
}
