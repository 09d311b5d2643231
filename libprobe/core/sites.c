#include "sites.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "walk.h"

/* What the registry holds per id. @site points into the module's memory while it is
 * loaded, and to @copy (owned here) once it has been unloaded; a module loaded again
 * points it back at its own descriptor, and the copy stays for its next unload.
 * @site is read without the lock (sites_describe_unlocked): stored with release. */
struct site_rec {
    const struct probe__site *site;
    struct probe__site *copy;
};

/* The records live in chunks that never move: allocated once, published with
 * release, freed never, so that a reader without the lock can hold one while sites
 * register. 64 chunk pointers cover every id. */
#define SITES_CHUNK 1024u
static struct site_rec *rec_chunks[SITES_MAX / SITES_CHUNK];

/* The sites of one module (its probe_sites section, slot by slot), kept after it
 * unloads so that the same module loaded again gets the same ids back: a plugin
 * loaded and unloaded in a loop then uses a fixed number of ids and rows. */
struct module {
    struct probe__site **start; /* while loaded; NULL once unloaded */
    char *path;                 /* the module's file, as dladdr() names it, or NULL */
    uint32_t *ids;              /* per slot; 0: invalid slot or no id */
    size_t n;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static size_t nrecs;            /* ids handed out; published with release */
static struct module *mods;
static size_t nmods, capmods;

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

/* The record of @id, 1 <= id <= nrecs. Called with the lock held. */
static struct site_rec *
rec(uint32_t id)
{
    return &rec_chunks[(id - 1) / SITES_CHUNK][(id - 1) % SITES_CHUNK];
}

static int
grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
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
    for (uint32_t id = 1; site->name && id <= nrecs; id++) {
        const struct probe__site *r = rec(id)->site;
        if (r && r->kind == PROBE_KIND_COUNTER && r->name && strcmp(r->name, site->name) == 0)
            return id;
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
    size_t i = nrecs; /* the new record's index: id i + 1 */
    struct site_rec **chunk = &rec_chunks[i / SITES_CHUNK];
    if (i + 1 >= SITES_MAX) {
        store_release(&site->id, SITES_ID_DROPPED);
        return SITES_ID_DROPPED;
    }
    if (!*chunk) {
        struct site_rec *c = calloc(SITES_CHUNK, sizeof(*c));
        if (!c) {
            store_release(&site->id, SITES_ID_DROPPED);
            return SITES_ID_DROPPED;
        }
        store_release(chunk, c);
    }
    (*chunk)[i % SITES_CHUNK] = (struct site_rec){site, NULL};
    store_release(&nrecs, i + 1); /* read unlocked by sites_describe_unlocked() */
    store_release(&site->id, (uint32_t)(i + 1));
    return (uint32_t)(i + 1);
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

static int
str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Does @s describe the same site as @d (a record's description)? */
static int
same_site(const struct probe__site *s, const struct probe__site *d)
{
    return s->kind == d->kind && s->line == d->line && str_eq(s->name, d->name) &&
           str_eq(s->function, d->function) && str_eq(s->file, d->file);
}

/* Could slot @s of a module being loaded take back @id, the id of the same slot
 * when the module was last loaded? A counter goes by its name alone: its id may be
 * shared with other modules (counter_id). */
static int
slot_matches(const struct probe__site *s, uint32_t id)
{
    if (!valid(s))
        return id == 0;
    if (id == 0 || id > nrecs || load_relaxed(&s->id) != 0)
        return 0; /* no id then, or one already taken by running before the load */
    const struct probe__site *d = rec(id)->site;
    if (!d)
        return 0;
    if (s->kind == PROBE_KIND_COUNTER)
        return d->kind == PROBE_KIND_COUNTER && str_eq(s->name, d->name);
    return d == rec(id)->copy && same_site(s, d);
}

/* An unloaded module with the same file and the same sites, slot by slot. */
static struct module *
find_unloaded(const char *path, struct probe__site **start, size_t n)
{
    for (size_t i = 0; i < nmods; i++) {
        struct module *m = &mods[i];
        size_t k;
        if (m->start || m->n != n || !str_eq(m->path, path))
            continue;
        for (k = 0; k < n && slot_matches(start[k], m->ids[k]); k++)
            ;
        if (k == n)
            return m;
    }
    return NULL;
}

/* The module is back: its sites take their old ids, and the records their own
 * descriptors again. */
static void
reattach(struct module *m, struct probe__site **start)
{
    m->start = start;
    for (size_t k = 0; k < m->n; k++) {
        struct probe__site *s = start[k];
        uint32_t id = m->ids[k];
        if (!id)
            continue;
        struct site_rec *r = rec(id);
        if (r->copy && r->site == r->copy && same_site(s, r->copy))
            store_release(&r->site, s);
        store_release(&s->id, id);
    }
}

/* The file of the module holding @addr, or NULL. Called without the lock: dladdr()
 * takes the loader's. */
static char *
module_path(const void *addr)
{
    Dl_info info;

    if (dladdr(addr, &info) && info.dli_fname && info.dli_fname[0])
        return strdup(info.dli_fname);
    return NULL;
}

PROBE_EXPORT void
probe__sites_register(struct probe__site **start, struct probe__site **stop)
{
    if (!start || !stop || stop <= start)
        return;
    size_t n = (size_t)(stop - start);
    char *path = module_path(start);
    uint32_t *ids = NULL;
    sites_lock();
    for (size_t i = 0; i < nmods; i++) {
        if (mods[i].start == start)
            goto out; /* another translation unit of the same module did it */
    }
    struct module *m = find_unloaded(path, start, n);
    if (m) {
        reattach(m, start);
        goto out;
    }
    /* Out of memory, the sites still register, but are not kept at unload. */
    ids = calloc(n, sizeof(*ids));
    if (ids && grow((void **)&mods, &capmods, nmods + 1, sizeof(*mods)) == 0) {
        mods[nmods++] = (struct module){start, path, ids, n};
        path = NULL;
    } else {
        free(ids);
        ids = NULL;
    }
    for (size_t k = 0; k < n; k++) {
        if (!valid(start[k]))
            continue;
        uint32_t id = assign_id(start[k]);
        if (ids)
            ids[k] = id == SITES_ID_DROPPED ? 0 : id;
    }
out:
    sites_unlock();
    free(path);
}

static char *
dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The module is going away: point the record at a private copy of the description
 * (made once per id: a module loaded again keeps it for its next unload). */
static void
detach(uint32_t id)
{
    struct site_rec *r = rec(id);
    struct probe__site *c;

    if (r->copy) {
        store_release(&r->site, r->copy);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        store_release(&r->site, NULL); /* described as "(unloaded)" from now on */
        return;
    }
    *c = *r->site;
    c->name = dup_or_null(r->site->name);
    c->function = dup_or_null(r->site->function);
    c->file = dup_or_null(r->site->file);
    r->copy = c;
    store_release(&r->site, c);
}

PROBE_EXPORT void
probe__sites_unregister(struct probe__site **start, struct probe__site **stop)
{
    size_t i;

    if (!start || !stop || stop <= start)
        return;
    sites_lock();
    for (i = 0; i < nmods && mods[i].start != start; i++)
        ;
    if (i == nmods)
        goto out; /* already done by another translation unit */
    mods[i].start = NULL;
    for (struct probe__site **p = start; p < stop; p++) {
        uint32_t id = valid(*p) ? load_relaxed(&(*p)->id) : 0;
        if (id && id != SITES_ID_DROPPED && id <= nrecs && rec(id)->site == *p)
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
    s = rec(id)->site;
    if (!s) {
        *out = (struct site_desc){PROBE_KIND_SCOPE, 0, 0, 0, "(unloaded)", NULL, NULL};
        return 0;
    }
    out->kind = (probe_kind)(s->kind & ~PROBE__SITE_RUSAGE);
    out->usage = (s->kind & PROBE__SITE_RUSAGE) != 0;
    out->line = s->line;
    out->loaded = s != rec(id)->copy;
    out->name = s->name;
    out->function = s->function;
    out->file = s->file;
    return 0;
}

/* No lock: the registry may be mid-update. A record is written before nrecs counts
 * it, and its chunk never moves. What it points to may be a module being unloaded
 * right then: a crash dump taken during a dlclose() can read a stale descriptor. */
PROBE_SIGSAFE int
sites_describe_unlocked(uint32_t id, struct walk_frame *out)
{
    size_t n = load_acquire(&nrecs);

    if (id == 0 || id > n)
        return -1;
    const struct site_rec *chunk = load_acquire(&rec_chunks[(id - 1) / SITES_CHUNK]);
    if (!chunk)
        return -1;
    const struct probe__site *s = load_acquire(&chunk[(id - 1) % SITES_CHUNK].site);
    if (!s)
        return -1;
    out->name = s->name;
    out->function = s->function;
    out->file = s->file;
    out->line = s->line;
    return 0;
}

/* The name a report gives site @id: its name, or file:line (under the sites lock). */
int
sites_name(uint32_t id, char *buf, size_t len)
{
    struct site_desc d;
    int rc;

    sites_lock();
    rc = sites_describe_locked(id, &d);
    if (rc == 0) {
        if (d.name)
            snprintf(buf, len, "%s", d.name);
        else
            snprintf(buf, len, "%s:%u", d.file ? d.file : "?", d.line);
    }
    sites_unlock();
    return rc;
}
