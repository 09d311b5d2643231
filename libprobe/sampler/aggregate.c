/* The stack -> weight table: samples drained from the rings are merged here, off the
 * signal path, under the sampler lock; a snapshot turns it into samples that refer
 * to a table of frames (one per distinct address, named, with its line and mapping)
 * and of mappings, so that formatters need nothing of the live process. */
#include "sampler.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomics.h"
#include "core/sites.h"
#include "core/thread.h"

#define AGG_BUCKETS 4096
/* Distinct (thread, stack, scopes) kept until probe_reset(): a long run that keeps
 * creating threads or new stacks stays bounded; beyond, samples count as dropped. */
#define AGG_MAX_STACKS 65536u
#define INTERN_BUCKETS 1024

struct stack_ent {
    struct stack_ent *next;
    uint64_t hash, tid, weight, ns, signals;
    unsigned npcs, nscopes, blocked;
    uintptr_t pcs[];            /* then the scope ids, as uintptr_t too */
};

static struct stack_ent *table[AGG_BUCKETS];
static unsigned nstacks;
/* Counters of released slots; live slots' are added at build time. */
static uint64_t ret_signals, ret_exp, ret_dropped, ret_dropped_exp, agg_dropped,
    agg_dropped_exp;

static uint64_t
mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    return h;
}

static void
add_rec(uint64_t tid, const struct sample_rec *r, uint64_t interval_ns)
{
    uint64_t h = mix(tid, r->npcs | (uint64_t)r->nscopes << 32 | (uint64_t)r->blocked << 63);
    struct stack_ent *e;

    for (unsigned i = 0; i < r->npcs; i++)
        h = mix(h, r->pcs[i]);
    for (unsigned i = 0; i < r->nscopes; i++)
        h = mix(h, r->scopes[i]);
    for (e = table[h % AGG_BUCKETS]; e; e = e->next) {
        if (e->hash != h || e->tid != tid || e->npcs != r->npcs ||
            e->nscopes != r->nscopes || e->blocked != r->blocked)
            continue;
        if (memcmp(e->pcs, r->pcs, r->npcs * sizeof(uintptr_t)) != 0)
            continue;
        unsigned i = 0;
        while (i < r->nscopes && e->pcs[e->npcs + i] == r->scopes[i])
            i++;
        if (i == r->nscopes)
            break;
    }
    if (!e) {
        e = nstacks < AGG_MAX_STACKS
                ? malloc(sizeof(*e) + (r->npcs + r->nscopes) * sizeof(uintptr_t))
                : NULL;
        if (!e) {
            agg_dropped++;
            agg_dropped_exp += r->weight;
            return;
        }
        *e = (struct stack_ent){.hash = h, .tid = tid, .npcs = r->npcs,
                                .nscopes = r->nscopes, .blocked = r->blocked};
        memcpy(e->pcs, r->pcs, r->npcs * sizeof(uintptr_t));
        for (unsigned i = 0; i < r->nscopes; i++)
            e->pcs[r->npcs + i] = r->scopes[i];
        e->next = table[h % AGG_BUCKETS];
        table[h % AGG_BUCKETS] = e;
        nstacks++;
    }
    e->weight += r->weight;
    e->ns += r->blocked ? r->ns : r->weight * interval_ns;
    e->signals++;
}

void
agg_samples_drain(struct slot *s)
{
    static struct sample_rec rec; /* large: not on the stack; under the lock */

    while (s->ring.w && ring_pop(&s->ring, &rec))
        add_rec(s->tid, &rec, s->interval_ns);
    while (s->wring.w && ring_pop(&s->wring, &rec))
        add_rec(s->tid, &rec, s->interval_ns);
}

/* A slot's counts since the last reset: the handler's and the wall thread's. */
static void
slot_counts(const struct slot *s, struct counts *c)
{
    c->signals = load_relaxed(&s->hc.signals) + s->wc.signals - s->base.signals;
    c->expirations = load_relaxed(&s->hc.expirations) + s->wc.expirations -
                     s->base.expirations;
    c->dropped = load_relaxed(&s->hc.dropped) + s->wc.dropped - s->base.dropped;
    c->dropped_exp = load_relaxed(&s->hc.dropped_exp) + s->wc.dropped_exp -
                     s->base.dropped_exp;
}

void
agg_samples_totals(const struct slot *s)
{
    struct counts c;

    slot_counts(s, &c);
    ret_signals += c.signals;
    ret_exp += c.expirations;
    ret_dropped += c.dropped;
    ret_dropped_exp += c.dropped_exp;
}

void
agg_samples_forget(void)
{
    for (unsigned b = 0; b < AGG_BUCKETS; b++) {
        for (struct stack_ent *e = table[b], *next; e; e = next) {
            next = e->next;
            free(e);
        }
        table[b] = NULL;
    }
    nstacks = 0;
    ret_signals = ret_exp = ret_dropped = ret_dropped_exp = 0;
    agg_dropped = agg_dropped_exp = 0;
}

/* ---- building a snapshot's samples -------------------------------------------- */

struct interned {
    struct interned *next;
    char s[];
};

struct owned_set {
    struct sample_set set;
    struct interned *strings[INTERN_BUCKETS];
    const char **ptrs;          /* every sample's frames then scopes */
    uint64_t *addrs;            /* every sample's frame addresses */
    size_t *fids;               /* every sample's frame ids */
};

static const char *
intern(struct owned_set *o, const char *s)
{
    uint64_t h = 1469598103934665603u;

    for (const char *p = s; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    struct interned **b = &o->strings[h % INTERN_BUCKETS];
    for (struct interned *i = *b; i; i = i->next)
        if (strcmp(i->s, s) == 0)
            return i->s;
    size_t n = strlen(s) + 1;
    struct interned *i = malloc(sizeof(*i) + n);
    if (!i)
        return NULL;
    memcpy(i->s, s, n);
    i->next = *b;
    *b = i;
    return i->s;
}

static void
set_free(struct sample_set *set)
{
    struct owned_set *o = (struct owned_set *)set;

    for (size_t b = 0; b < INTERN_BUCKETS; b++) {
        for (struct interned *i = o->strings[b], *n; i; i = n) {
            n = i->next;
            free(i);
        }
    }
    free(o->ptrs);
    free(o->addrs);
    free(o->fids);
    free(o->set.frames);
    free(o->set.mappings);
    free(o->set.v);
    free(o);
}

static int
by_thread(const void *pa, const void *pb)
{
    const probe_sample_info *a = pa, *b = pb;

    if (a->tid != b->tid)
        return a->tid < b->tid ? -1 : 1;
    return a->weight > b->weight ? -1 : a->weight < b->weight;
}

/* What a snapshot needs of the table, copied under the sampler lock: the stacks (a
 * list in one block) and the counters. Symbolizing happens after the lock is gone:
 * dladdr() and dl_iterate_phdr() take the loader lock, which a thread in dlopen()
 * holds while a constructor's first use of libprobe waits for the sampler lock. */
struct agg_copy {
    struct stack_ent *head;
    probe_sampler_info info;
    char block[];
};

struct agg_copy *
agg_samples_copy(uint64_t interval_ns, int mode, int running)
{
    size_t bytes = 0;

    for (size_t b = 0; b < AGG_BUCKETS; b++)
        for (struct stack_ent *e = table[b]; e; e = e->next)
            bytes += sizeof(*e) + (e->npcs + e->nscopes) * sizeof(uintptr_t);
    struct agg_copy *c = malloc(sizeof(*c) + bytes);
    if (!c)
        return NULL;
    char *at = c->block;
    struct stack_ent **tail = &c->head;
    for (size_t b = 0; b < AGG_BUCKETS; b++) {
        for (struct stack_ent *e = table[b]; e; e = e->next) {
            size_t size = sizeof(*e) + (e->npcs + e->nscopes) * sizeof(uintptr_t);
            struct stack_ent *d = (struct stack_ent *)(void *)at;
            memcpy(d, e, size);
            *tail = d;
            tail = &d->next;
            at += size;
        }
    }
    *tail = NULL;

    probe_sampler_info *in = &c->info;
    *in = (probe_sampler_info){.interval_ns = interval_ns, .mode = mode,
                               .running = running};
    in->signals = ret_signals;
    in->expirations = ret_exp;
    in->dropped = ret_dropped + agg_dropped;
    in->dropped_expirations = ret_dropped_exp + agg_dropped_exp;
    for (struct slot *s = load_acquire(&slot_list); s; s = s->next) {
        if (!s->used)
            continue;
        struct counts k;
        slot_counts(s, &k);
        in->signals += k.signals;
        in->expirations += k.expirations;
        in->dropped += k.dropped;
        in->dropped_expirations += k.dropped_exp;
    }
    return c;
}

/* The frame table being built: frames keyed by (address, is_return) in an
 * open-addressing hash (index + 1; 0 is empty), and the mappings they are in. */
struct frame_build {
    struct owned_set *o;
    size_t cap;                 /* of o->set.frames: every PC fits */
    size_t *slots;
    size_t nslots;              /* a power of two, more than twice cap */
    size_t mcap;
    char buf[512];
};

static uint64_t
frame_hash(uint64_t pc, int is_return)
{
    uint64_t h = (pc ^ (uint64_t)is_return) * 0x9e3779b97f4a7c15u;

    return h ^ (h >> 29);
}

/* The index of the mapping of @m's executable segment holding @a, added if new;
 * PROBE_NO_MAPPING if no executable segment holds it. */
static int
mapping_of(struct frame_build *fb, const struct module *m, uintptr_t a, size_t *out)
{
    struct sample_set *set = &fb->o->set;
    const struct module_segment *seg = module_segment_of(m, a);
    char hex[2 * MODULES_BUILD_ID_MAX + 1];

    *out = PROBE_NO_MAPPING;
    if (!seg || !seg->exec)
        return 0;
    for (size_t i = 0; i < set->nmappings; i++) {
        const probe_mapping_info *p = &set->mappings[i];
        if (p->start == seg->lo && p->limit == seg->hi && strcmp(p->path, m->path) == 0) {
            *out = i;
            return 0;
        }
    }
    if (set->nmappings == fb->mcap) {
        size_t cap = fb->mcap ? fb->mcap * 2 : 16;
        probe_mapping_info *v = realloc(set->mappings, cap * sizeof(*v));
        if (!v)
            return PROBE_ENOMEM;
        set->mappings = v;
        fb->mcap = cap;
    }
    module_build_id_hex(m, hex);
    const char *path = intern(fb->o, m->path ? m->path : "");
    const char *build_id = intern(fb->o, hex);
    if (!path || !build_id)
        return PROBE_ENOMEM;
    set->mappings[set->nmappings] =
        (probe_mapping_info){.start = seg->lo, .limit = seg->hi, .offset = seg->offset,
                             .path = path, .build_id = build_id,
                             .main_program = m->main_program};
    *out = set->nmappings++;
    return 0;
}

/* The id of the frame at @pc, made if new: its name, line and mapping. A return
 * address is looked up at the call before it (pc - 1). */
static int
frame_id(struct frame_build *fb, uintptr_t pc, int is_return, size_t *out)
{
    struct sample_set *set = &fb->o->set;
    size_t k = frame_hash(pc, is_return) & (fb->nslots - 1);

    for (; fb->slots[k]; k = (k + 1) & (fb->nslots - 1)) {
        const probe_frame_info *f = &set->frames[fb->slots[k] - 1];
        if (f->address == pc && f->is_return == is_return) {
            *out = fb->slots[k] - 1;
            return 0;
        }
    }
    assert(set->nframes < fb->cap);

    probe_frame_info *f = &set->frames[set->nframes];
    const char *file = NULL;
    unsigned line = 0;
    struct module m;

    *f = (probe_frame_info){.address = pc, .is_return = is_return, .line = 0,
                            .mapping = PROBE_NO_MAPPING};
    if (!(f->function = intern(fb->o, symbolize_pc(pc, is_return, fb->buf, sizeof(fb->buf)))))
        return PROBE_ENOMEM;
    if (symbolize_line(pc, is_return, &file, &line) == 0 && file) {
        if (!(f->file = intern(fb->o, file)))
            return PROBE_ENOMEM;
        f->line = line;
    }
    uintptr_t at = is_return && pc ? pc - 1 : pc;
    if (modules_find(at, &m) == 0 && mapping_of(fb, &m, at, &f->mapping) < 0)
        return PROBE_ENOMEM;
    fb->slots[k] = set->nframes + 1;
    *out = set->nframes++;
    return 0;
}

static int
mapping_order(const void *pa, const void *pb)
{
    const probe_mapping_info *a = *(const probe_mapping_info *const *)pa;
    const probe_mapping_info *b = *(const probe_mapping_info *const *)pb;

    if (a->main_program != b->main_program)
        return a->main_program ? -1 : 1;
    return a->start < b->start ? -1 : a->start > b->start;
}

/* The program's mappings first (pprof takes the first for the program's), then by
 * address; the frames' mapping indexes follow. */
static int
sort_mappings(struct sample_set *set)
{
    size_t n = set->nmappings;
    const probe_mapping_info **order = calloc(n ? n : 1, sizeof(*order));
    probe_mapping_info *sorted = calloc(n ? n : 1, sizeof(*sorted));
    size_t *rank = calloc(n ? n : 1, sizeof(*rank));
    int r = PROBE_ENOMEM;

    if (!order || !sorted || !rank)
        goto out;
    for (size_t i = 0; i < n; i++)
        order[i] = &set->mappings[i];
    qsort(order, n, sizeof(*order), mapping_order);
    for (size_t i = 0; i < n; i++) {
        sorted[i] = *order[i];
        rank[order[i] - set->mappings] = i;
    }
    for (size_t i = 0; i < set->nframes; i++)
        if (set->frames[i].mapping != PROBE_NO_MAPPING)
            set->frames[i].mapping = rank[set->frames[i].mapping];
    free(set->mappings);
    set->mappings = sorted;
    sorted = NULL;
    r = 0;
out:
    free(order);
    free(sorted);
    free(rank);
    return r;
}

/* Stacks stay apart by address (the table's key): merging those that name the same
 * functions would keep one stack's addresses, and so its lines, for all of them.
 * Formatters that show names sum them. */
struct sample_set *
agg_samples_build(struct agg_copy *c)
{
    struct owned_set *o = calloc(1, sizeof(*o));
    struct frame_build fb = {.o = o};
    size_t n = 0, nptrs = 0, npcs = 0, k = 0, p = 0;

    if (!o) {
        free(c);
        return NULL;
    }
    o->set.free = set_free;
    for (struct stack_ent *e = c->head; e; e = e->next) {
        n++;
        nptrs += e->npcs + e->nscopes;
        npcs += e->npcs;
    }
    fb.cap = npcs ? npcs : 1;
    for (fb.nslots = 16; fb.nslots <= 2 * fb.cap; fb.nslots *= 2)
        ;
    o->set.v = calloc(n ? n : 1, sizeof(*o->set.v));
    o->ptrs = calloc(nptrs ? nptrs : 1, sizeof(*o->ptrs));
    o->addrs = calloc(nptrs ? nptrs : 1, sizeof(*o->addrs));
    o->fids = calloc(nptrs ? nptrs : 1, sizeof(*o->fids));
    o->set.frames = calloc(fb.cap, sizeof(*o->set.frames));
    fb.slots = calloc(fb.nslots, sizeof(*fb.slots));
    if (!o->set.v || !o->ptrs || !o->addrs || !o->fids || !o->set.frames || !fb.slots)
        goto fail;
    /* Names and mappings of modules loaded since the last scan, too. */
    (void)modules_refresh_if_changed();
    for (struct stack_ent *e = c->head; e; e = e->next) {
        probe_sample_info *s = &o->set.v[k];
        unsigned depth = e->npcs;
        const char **frames = &o->ptrs[p];
        const char **scopes = frames + depth;
        uint64_t *addrs = &o->addrs[p];
        size_t *fids = &o->fids[p];

        p += depth + e->nscopes;
        for (unsigned i = 0; i < e->npcs; i++) { /* root first */
            unsigned at = e->npcs - 1 - i;
            if (frame_id(&fb, e->pcs[i], i > 0, &fids[at]) < 0)
                goto fail;
            addrs[at] = e->pcs[i];
            frames[at] = o->set.frames[fids[at]].function;
        }
        for (unsigned i = 0; i < e->nscopes; i++) { /* outermost first */
            uint32_t id = (uint32_t)e->pcs[e->npcs + i];
            if (sites_name(id, fb.buf, sizeof(fb.buf)) != 0)
                strcpy(fb.buf, "?");
            if (!(scopes[e->nscopes - 1 - i] = intern(o, fb.buf)))
                goto fail;
        }
        *s = (probe_sample_info){.thread = PROBE_SAMPLE_NO_THREAD, .tid = e->tid,
                                 .weight = e->weight, .cpu_ns = e->ns,
                                 .signals = (unsigned)e->signals, .depth = depth,
                                 .frames = frames, .nscopes = e->nscopes,
                                 .scopes = scopes, .addresses = addrs,
                                 .blocked = (int)e->blocked, .frame_ids = fids};
        k++;
    }
    if (sort_mappings(&o->set) < 0)
        goto fail;
    o->set.n = k;
    qsort(o->set.v, k, sizeof(*o->set.v), by_thread);

    o->set.info = c->info;
    free(fb.slots);
    free(c);
    return &o->set;
fail:
    free(fb.slots);
    free(c);
    set_free(&o->set);
    return NULL;
}
