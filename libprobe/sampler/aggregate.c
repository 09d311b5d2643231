/* The stack -> weight table: samples drained from the rings are merged here, off the
 * signal path, under the sampler lock; a snapshot symbolizes it and merges the stacks
 * that name the same frames. */
#include "sampler.h"

#include <stdlib.h>
#include <string.h>

#include "core/atomics.h"
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
    free(o->set.v);
    free(o);
}

static int
same_stack(const probe_sample_info *a, const probe_sample_info *b)
{
    if (a->tid != b->tid || a->depth != b->depth || a->nscopes != b->nscopes ||
        a->blocked != b->blocked)
        return 0;
    for (unsigned i = 0; i < a->depth; i++)
        if (a->frames[i] != b->frames[i])
            return 0;
    for (unsigned i = 0; i < a->nscopes; i++)
        if (a->scopes[i] != b->scopes[i])
            return 0;
    return 1;
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

struct sample_set *
agg_samples_build(struct agg_copy *c)
{
    struct owned_set *o = calloc(1, sizeof(*o));
    size_t n = 0, nptrs = 0, k = 0, p = 0;
    char buf[512];

    if (!o) {
        free(c);
        return NULL;
    }
    o->set.free = set_free;
    for (struct stack_ent *e = c->head; e; e = e->next) {
        n++;
        nptrs += e->npcs + e->nscopes;
    }
    o->set.v = calloc(n ? n : 1, sizeof(*o->set.v));
    o->ptrs = calloc(nptrs ? nptrs : 1, sizeof(*o->ptrs));
    o->addrs = calloc(nptrs ? nptrs : 1, sizeof(*o->addrs));
    if (!o->set.v || !o->ptrs || !o->addrs)
        goto fail;
    for (struct stack_ent *e = c->head; e; e = e->next) {
        probe_sample_info *s = &o->set.v[k];
        unsigned depth = e->npcs;
        const char **frames = &o->ptrs[p];
        const char **scopes = frames + depth;
        uint64_t *addrs = &o->addrs[p];

        p += depth + e->nscopes;
        for (unsigned i = 0; i < e->npcs; i++) { /* root first */
            const char *name = symbolize_pc(e->pcs[i], i > 0, buf, sizeof(buf));
            addrs[e->npcs - 1 - i] = e->pcs[i];
            if (!(frames[e->npcs - 1 - i] = intern(o, name)))
                goto fail;
        }
        for (unsigned i = 0; i < e->nscopes; i++) { /* outermost first */
            uint32_t id = (uint32_t)e->pcs[e->npcs + i];
            if (thread_site_name(id, buf, sizeof(buf)) != 0)
                strcpy(buf, "?");
            if (!(scopes[e->nscopes - 1 - i] = intern(o, buf)))
                goto fail;
        }
        *s = (probe_sample_info){.thread = PROBE_SAMPLE_NO_THREAD, .tid = e->tid,
                                 .weight = e->weight, .cpu_ns = e->ns,
                                 .signals = (unsigned)e->signals, .depth = depth,
                                 .frames = frames, .nscopes = e->nscopes,
                                 .scopes = scopes, .addresses = addrs,
                                 .blocked = (int)e->blocked};
        k++;
    }
    qsort(o->set.v, k, sizeof(*o->set.v), by_thread);
    /* Stacks of different PCs in the same functions name the same frames: merge
     * them, within each thread (quadratic in a thread's stacks). */
    size_t out = 0;
    for (size_t i = 0; i < k; i++) {
        size_t j;
        for (j = out; j-- > 0 && o->set.v[j].tid == o->set.v[i].tid;)
            if (same_stack(&o->set.v[j], &o->set.v[i]))
                break;
        if (j != (size_t)-1 && o->set.v[j].tid == o->set.v[i].tid &&
            same_stack(&o->set.v[j], &o->set.v[i])) {
            o->set.v[j].weight += o->set.v[i].weight;
            o->set.v[j].cpu_ns += o->set.v[i].cpu_ns;
            o->set.v[j].signals += o->set.v[i].signals;
        } else {
            o->set.v[out++] = o->set.v[i];
        }
    }
    o->set.n = out;
    qsort(o->set.v, out, sizeof(*o->set.v), by_thread);

    o->set.info = c->info;
    free(c);
    return &o->set;
fail:
    free(c);
    set_free(&o->set);
    return NULL;
}
