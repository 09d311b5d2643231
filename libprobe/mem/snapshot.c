/* Memory snapshots: a copy of every tag's counters, their difference, and the hook
 * that puts them into report snapshots. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/memhook.h"
#include "msnap.h"
#include "table.h"
#include "tags.h"

/* Live figures at the last probe_mem_snapshot_take(), by tag id: what growth is
 * measured from. */
static struct {
    int64_t count, bytes;
} baseline[PROBE_MEM_MAX_TAGS];
static pthread_mutex_t baseline_mutex = PTHREAD_MUTEX_INITIALIZER;

static uint64_t
load(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static probe_mem_snapshot *
snap_alloc(size_t n)
{
    probe_mem_snapshot *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->tags = calloc(n ? n : 1, sizeof(*s->tags));
    s->names = malloc((n ? n : 1) * (PROBE_MEM_TAG_MAX_LEN + 1));
    if (!s->tags || !s->names) {
        probe_mem_snapshot_free(s);
        return NULL;
    }
    return s;
}

static void
set_name(probe_mem_snapshot *s, size_t i, const char *name)
{
    char *at = s->names + i * (PROBE_MEM_TAG_MAX_LEN + 1);

    strncpy(at, name, PROBE_MEM_TAG_MAX_LEN);
    at[PROBE_MEM_TAG_MAX_LEN] = '\0';
    s->tags[i].name = at;
}

static int
by_live_bytes(const void *pa, const void *pb)
{
    const probe_mem_tag_info *a = pa, *b = pb;

    if (a->live_bytes != b->live_bytes)
        return a->live_bytes > b->live_bytes ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int
by_growth(const void *pa, const void *pb)
{
    const probe_mem_tag_info *a = pa, *b = pb;

    if (a->growth_bytes != b->growth_bytes)
        return a->growth_bytes > b->growth_bytes ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Totals, shares and order, once the tags are filled in. */
static void
finish(probe_mem_snapshot *s, int (*order)(const void *, const void *))
{
    int64_t count = 0, bytes = 0, positive = 0;

    for (size_t i = 0; i < s->info.tags; i++) {
        count += s->tags[i].live_count;
        bytes += s->tags[i].live_bytes;
        positive += s->tags[i].live_bytes > 0 ? s->tags[i].live_bytes : 0;
    }
    s->info.live_count = count;
    s->info.live_bytes = bytes;
    for (size_t i = 0; i < s->info.tags; i++) {
        probe_mem_tag_info *t = &s->tags[i];
        if (!s->info.is_diff)
            t->share = positive && t->live_bytes > 0 ? (double)t->live_bytes / positive : 0;
    }
    qsort(s->tags, s->info.tags, sizeof(*s->tags), order);
}

probe_mem_snapshot *
mem_snapshot_collect(int set_baseline)
{
    unsigned n = mem_tag_count();
    probe_mem_snapshot *s = snap_alloc(n);

    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&baseline_mutex);
    for (unsigned id = 1; id <= n; id++) {
        const struct mem_tag *m = mem_tag_get(id);
        probe_mem_tag_info *t = &s->tags[id - 1];
        /* Frees before allocations: a free is never counted without its allocation. */
        uint64_t frees = load(&m->frees);
        int64_t live = __atomic_load_n(&m->live_bytes, __ATOMIC_RELAXED);

        t->allocs = load(&m->allocs);
        t->alloc_bytes = load(&m->alloc_bytes);
        t->frees = frees;
        t->live_count = (int64_t)(t->allocs - frees);
        t->live_bytes = live;
        t->peak_bytes = load(&m->peak_bytes);
        t->avg_bytes = t->allocs ? t->alloc_bytes / t->allocs : 0;
        t->untracked_frees = load(&m->untracked_frees);
        t->double_frees = load(&m->double_frees);
        t->growth_count = t->live_count - baseline[id - 1].count;
        t->growth_bytes = t->live_bytes - baseline[id - 1].bytes;
        if (set_baseline) {
            baseline[id - 1].count = t->live_count;
            baseline[id - 1].bytes = t->live_bytes;
        }
        set_name(s, id - 1, m->name);
    }
    pthread_mutex_unlock(&baseline_mutex);
    s->info.tags = n;
    s->info.table_slots = table_slots();
    s->info.table_full = load(&table_full_count);
    s->info.tags_dropped = load(&mem_tags_dropped);
    s->info.fork_lost = load(&table_fork_lost);
    finish(s, by_live_bytes);
    return s;
}

PROBE_EXPORT probe_mem_snapshot *
probe_mem_snapshot_take(void)
{
    return mem_snapshot_collect(1);
}

static uint64_t
sub(uint64_t b, uint64_t a)
{
    return b > a ? b - a : 0;
}

PROBE_EXPORT probe_mem_snapshot *
probe_mem_snapshot_diff(const probe_mem_snapshot *a, const probe_mem_snapshot *b)
{
    probe_mem_snapshot *d;
    size_t n = 0;

    if (!a || !b) {
        errno = EINVAL;
        return NULL;
    }
    d = snap_alloc(a->info.tags + b->info.tags);
    if (!d) {
        errno = ENOMEM;
        return NULL;
    }
    /* Every tag of b, then the tags only a has (all gone in b). */
    for (size_t i = 0; i < b->info.tags; i++) {
        const probe_mem_tag_info *tb = &b->tags[i];
        const probe_mem_tag_info *ta = probe_mem_snapshot_find(a, tb->name);
        static const probe_mem_tag_info zero;
        probe_mem_tag_info *t = &d->tags[n];

        if (!ta)
            ta = &zero;
        *t = *tb;
        t->live_count = tb->live_count - ta->live_count;
        t->live_bytes = tb->live_bytes - ta->live_bytes;
        t->allocs = sub(tb->allocs, ta->allocs);
        t->frees = sub(tb->frees, ta->frees);
        t->alloc_bytes = sub(tb->alloc_bytes, ta->alloc_bytes);
        t->untracked_frees = sub(tb->untracked_frees, ta->untracked_frees);
        t->double_frees = sub(tb->double_frees, ta->double_frees);
        t->growth_count = t->live_count;
        t->growth_bytes = t->live_bytes;
        set_name(d, n++, tb->name);
    }
    for (size_t i = 0; i < a->info.tags; i++) {
        const probe_mem_tag_info *ta = &a->tags[i];
        probe_mem_tag_info *t = &d->tags[n];

        if (probe_mem_snapshot_find(b, ta->name))
            continue;
        memset(t, 0, sizeof(*t));
        t->live_count = t->growth_count = -ta->live_count;
        t->live_bytes = t->growth_bytes = -ta->live_bytes;
        set_name(d, n++, ta->name);
    }
    d->info = b->info;
    d->info.tags = n;
    d->info.table_full = sub(b->info.table_full, a->info.table_full);
    d->info.tags_dropped = sub(b->info.tags_dropped, a->info.tags_dropped);
    d->info.fork_lost = sub(b->info.fork_lost, a->info.fork_lost);
    d->info.is_diff = 1;
    finish(d, by_growth);
    return d;
}

PROBE_EXPORT void
probe_mem_snapshot_free(probe_mem_snapshot *snap)
{
    if (!snap)
        return;
    free(snap->tags);
    free(snap->names);
    free(snap);
}

PROBE_EXPORT size_t
probe_mem_snapshot_tag_count(const probe_mem_snapshot *snap)
{
    return snap ? snap->info.tags : 0;
}

PROBE_EXPORT const probe_mem_tag_info *
probe_mem_snapshot_tag(const probe_mem_snapshot *snap, size_t i)
{
    return snap && i < snap->info.tags ? &snap->tags[i] : NULL;
}

PROBE_EXPORT const probe_mem_tag_info *
probe_mem_snapshot_find(const probe_mem_snapshot *snap, const char *name)
{
    if (!snap || !name)
        return NULL;
    for (size_t i = 0; i < snap->info.tags; i++) {
        if (strcmp(snap->tags[i].name, name) == 0)
            return &snap->tags[i];
    }
    return NULL;
}

PROBE_EXPORT const probe_mem_info *
probe_mem_snapshot_info(const probe_mem_snapshot *snap)
{
    return snap ? &snap->info : NULL;
}

/* ---- the report's view --------------------------------------------------------- */

static void *
report_collect(void)
{
    return mem_snapshot_collect(0); /* a report does not move the baseline */
}

static void
report_free(void *p)
{
    probe_mem_snapshot_free(p);
}

void
mem_report_hook_install(void)
{
    __atomic_store_n(&mem_free_hook, report_free, __ATOMIC_RELEASE);
    __atomic_store_n(&mem_collect_hook, report_collect, __ATOMIC_RELEASE);
}
