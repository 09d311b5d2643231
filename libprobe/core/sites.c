#include "sites.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "walk.h"

/* What the registry holds per id. @site points into the module's memory while it is
 * loaded, and to @copy (owned here) once it has been unloaded. */
struct site_rec {
    const struct probe__site *site;
    struct probe__site *copy;
};

struct range {
    struct probe__site **start;
    struct probe__site **stop;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct site_rec *recs;   /* recs[id - 1] */
static size_t nrecs, caprecs;
static struct range *ranges;
static size_t nranges, capranges;

void
sites_lock(void)
{
    pthread_mutex_lock(&lock);
}

void
sites_unlock(void)
{
    pthread_mutex_unlock(&lock);
}

void
sites_atfork_child(void)
{
    pthread_mutex_unlock(&lock); /* taken by the forking thread before fork */
}

size_t
sites_count(void)
{
    size_t n;

    sites_lock();
    n = nrecs;
    sites_unlock();
    return n;
}

static int
grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* A counter is known by its name: every PROBE_COUNT site with the same name shares
 * one id, so its deltas add up wherever they come from. */
static uint32_t
counter_id(const struct probe__site *site)
{
    for (size_t i = 0; site->name && i < nrecs; i++) {
        const struct probe__site *r = recs[i].site;
        if (r && r->kind == PROBE_KIND_COUNTER && r->name && strcmp(r->name, site->name) == 0)
            return (uint32_t)i + 1;
    }
    return 0;
}

/* Called with the lock held. */
static uint32_t
assign_id(struct probe__site *site)
{
    uint32_t id = load_relaxed(&site->id);

    if (id)
        return id;
    if (site->kind == PROBE_KIND_COUNTER && (id = counter_id(site))) {
        store_release(&site->id, id);
        return id;
    }
    if (nrecs + 1 >= SITES_MAX || grow((void **)&recs, &caprecs, nrecs + 1, sizeof(*recs))) {
        store_release(&site->id, SITES_ID_DROPPED);
        return SITES_ID_DROPPED;
    }
    recs[nrecs].site = site;
    recs[nrecs].copy = NULL;
    store_release(&nrecs, nrecs + 1); /* read unlocked by sites_describe_unlocked() */
    store_release(&site->id, (uint32_t)nrecs);
    return (uint32_t)nrecs;
}

static int
valid(const struct probe__site *site)
{
    return site && site->magic == PROBE__SITE_MAGIC &&
           (site->kind & ~PROBE__SITE_RUSAGE) <= PROBE_KIND_COUNTER;
}

uint32_t
sites_register_one(struct probe__site *site)
{
    uint32_t id;

    if (!valid(site))
        return SITES_ID_DROPPED;
    sites_lock();
    id = assign_id(site);
    sites_unlock();
    return id;
}

PROBE_EXPORT void
probe__sites_register(struct probe__site **start, struct probe__site **stop)
{
    if (!start || !stop || stop <= start)
        return;
    sites_lock();
    for (size_t i = 0; i < nranges; i++) {
        if (ranges[i].start == start)
            goto out; /* another translation unit of the same module did it */
    }
    if (grow((void **)&ranges, &capranges, nranges + 1, sizeof(*ranges)) == 0)
        ranges[nranges++] = (struct range){start, stop};
    for (struct probe__site **p = start; p < stop; p++) {
        if (valid(*p))
            assign_id(*p);
    }
out:
    sites_unlock();
}

static char *
dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The module is going away: keep a private copy of each description. */
static void
detach(uint32_t id)
{
    struct site_rec *r = &recs[id - 1];
    struct probe__site *c;

    if (r->copy)
        return;
    c = calloc(1, sizeof(*c));
    if (!c) {
        r->site = NULL; /* described as "(unloaded)" from now on */
        return;
    }
    *c = *r->site;
    c->name = dup_or_null(r->site->name);
    c->function = dup_or_null(r->site->function);
    c->file = dup_or_null(r->site->file);
    r->copy = c;
    r->site = c;
}

PROBE_EXPORT void
probe__sites_unregister(struct probe__site **start, struct probe__site **stop)
{
    size_t i;

    if (!start || !stop || stop <= start)
        return;
    sites_lock();
    for (i = 0; i < nranges && ranges[i].start != start; i++)
        ;
    if (i == nranges)
        goto out; /* already done by another translation unit */
    ranges[i] = ranges[--nranges];
    for (struct probe__site **p = start; p < stop; p++) {
        uint32_t id = valid(*p) ? load_relaxed(&(*p)->id) : 0;
        if (id && id != SITES_ID_DROPPED && id <= nrecs && recs[id - 1].site == *p)
            detach(id);
    }
out:
    sites_unlock();
}

int
sites_describe_locked(uint32_t id, struct site_desc *out)
{
    const struct probe__site *s;

    if (id == 0 || id > nrecs)
        return -1;
    s = recs[id - 1].site;
    if (!s) {
        *out = (struct site_desc){PROBE_KIND_SCOPE, 0, 0, 0, "(unloaded)", NULL, NULL};
        return 0;
    }
    out->kind = (probe_kind)(s->kind & ~PROBE__SITE_RUSAGE);
    out->usage = (s->kind & PROBE__SITE_RUSAGE) != 0;
    out->line = s->line;
    out->loaded = recs[id - 1].copy == NULL;
    out->name = s->name;
    out->function = s->function;
    out->file = s->file;
    return 0;
}

/* No lock: the registry may be mid-update. recs and nrecs are read once; a stale
 * pair can only point at memory that realloc has not freed yet or at the new array
 * (realloc's old block may be gone: read nrecs first, then recs, and accept that a
 * crash dump taken during a registration can name a site "?"). */
PROBE_SIGSAFE int
sites_describe_unlocked(uint32_t id, struct walk_frame *out)
{
    size_t n = load_acquire(&nrecs);
    struct site_rec *r = load_acquire(&recs);

    if (id == 0 || id > n || !r)
        return -1;
    const struct probe__site *s = r[id - 1].site;
    if (!s)
        return -1;
    out->name = s->name;
    out->function = s->function;
    out->file = s->file;
    out->line = s->line;
    return 0;
}
