#include "aggregate.h"

#include <stdlib.h>
#include <string.h>

#include "atomics.h"

static struct site_acc *
site_slot(struct aggregate *agg, uint32_t id)
{
    if (id >= agg->nsites) {
        size_t n = agg->nsites ? agg->nsites : 64;
        while (n <= id)
            n *= 2;
        struct site_acc **p = realloc(agg->sites, n * sizeof(*p));
        if (!p)
            return NULL;
        memset(p + agg->nsites, 0, (n - agg->nsites) * sizeof(*p));
        agg->sites = p;
        agg->nsites = n;
    }
    if (!agg->sites[id]) {
        struct site_acc *a = calloc(1, sizeof(*a));
        if (!a)
            return NULL;
        a->min = UINT64_MAX;
        agg->sites[id] = a;
    }
    return agg->sites[id];
}

const struct site_acc *
agg_site(const struct aggregate *agg, uint32_t id)
{
    return id < agg->nsites ? agg->sites[id] : NULL;
}

static void
acc_add(struct site_acc *a, const struct site_acc *b)
{
    a->calls += b->calls;
    a->prim_calls += b->prim_calls;
    a->total += b->total;
    a->self += b->self;
    a->value += b->value;
    if (b->min < a->min)
        a->min = b->min;
    if (b->max > a->max)
        a->max = b->max;
    for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++)
        a->hist[i] += b->hist[i];
    a->usage.calls += b->usage.calls;
    a->usage.user_ns += b->usage.user_ns;
    a->usage.system_ns += b->usage.system_ns;
    a->usage.minor_faults += b->usage.minor_faults;
    a->usage.major_faults += b->usage.major_faults;
    a->usage.voluntary_switches += b->usage.voluntary_switches;
    a->usage.involuntary_switches += b->usage.involuntary_switches;
}

int
agg_add_site(struct aggregate *agg, uint32_t id, const struct stats_chunk *c, unsigned j)
{
    const struct site_stats *st = &c->sites[j];
    struct site_acc b;

    /* prim_calls and self are published after calls and total, with release: read
     * them first, with acquire, so that what is read next is at least as new and
     * prim_calls <= calls, self <= total hold. */
    b.prim_calls = load_acquire(&st->prim_calls);
    b.self = load_acquire(&st->self);
    b.total = load_relaxed(&st->total);
    b.calls = load_relaxed(&st->calls);
    b.max = load_relaxed(&st->max);
    b.min = load_relaxed(&st->min);
    b.value = load_relaxed(&st->value);
    /* A scope's calls are in its nodes: min says whether it had any. */
    if (!b.calls && b.min == UINT64_MAX)
        return 0;
    struct site_acc *a = site_slot(agg, id);
    if (!a)
        return -1;
    a->calls += b.calls;
    a->prim_calls += b.prim_calls;
    a->total += b.total;
    a->self += b.self;
    a->value += b.value;
    if (b.min < a->min)
        a->min = b.min;
    if (b.max > a->max)
        a->max = b.max;
    /* Only the groups in use: the acquire of the mask pairs with its release after
     * the group's index and the segment's pointer. */
    for (uint32_t m = load_acquire(&st->groups); m; m &= m - 1) {
        unsigned g = (unsigned)__builtin_ctz(m), idx = load_relaxed(&st->hist[g]);
        const struct stats_group *grp = stats_group_of((struct stats_chunk *)c, j, idx);
        for (unsigned k = 0; k < STATS_HIST_GROUP; k++)
            a->hist[g * STATS_HIST_GROUP + k] += load_relaxed(&grp->n[k]);
    }
    const struct usage_stats *u = load_acquire(&c->usage);
    if (u) {
        u += j;
        a->usage.calls += load_relaxed(&u->calls);
        a->usage.user_ns += load_relaxed(&u->user_ns);
        a->usage.system_ns += load_relaxed(&u->system_ns);
        a->usage.minor_faults += load_relaxed(&u->minor_faults);
        a->usage.major_faults += load_relaxed(&u->major_faults);
        a->usage.voluntary_switches += load_relaxed(&u->voluntary_switches);
        a->usage.involuntary_switches += load_relaxed(&u->involuntary_switches);
    }
    return 0;
}

int
agg_add_hist(struct aggregate *agg, uint32_t id, unsigned b, uint64_t count)
{
    struct site_acc *a = site_slot(agg, id);

    if (!a)
        return -1;
    a->hist[b < STATS_HIST_BUCKETS ? b : STATS_HIST_BUCKETS - 1u] += count;
    return 0;
}

static size_t
edge_hash(uint32_t caller, uint32_t callee)
{
    uint64_t k = ((uint64_t)caller << 32) | callee;
    k *= 0x9e3779b97f4a7c15ull;
    return (size_t)(k >> 32);
}

static struct edge_acc *
edge_find(struct edge_acc *tab, size_t cap, uint32_t caller, uint32_t callee)
{
    for (size_t i = edge_hash(caller, callee) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (tab[i].callee == 0 || (tab[i].callee == callee && tab[i].caller == caller))
            return &tab[i];
    }
}

static int
edge_grow(struct aggregate *agg)
{
    size_t cap = agg->edge_cap ? agg->edge_cap * 2 : 256;
    struct edge_acc *tab = calloc(cap, sizeof(*tab));

    if (!tab)
        return -1;
    for (size_t i = 0; i < agg->edge_cap; i++) {
        const struct edge_acc *e = &agg->edges[i];
        if (e->callee)
            *edge_find(tab, cap, e->caller, e->callee) = *e;
    }
    free(agg->edges);
    agg->edges = tab;
    agg->edge_cap = cap;
    return 0;
}

int
agg_add_edge(struct aggregate *agg, uint32_t caller, uint32_t callee, uint64_t calls,
             uint64_t total)
{
    if (!calls || !callee)
        return 0;
    if ((agg->nedges + 1) * 2 > agg->edge_cap && edge_grow(agg) < 0)
        return -1;
    struct edge_acc *e = edge_find(agg->edges, agg->edge_cap, caller, callee);
    if (!e->callee) {
        e->caller = caller;
        e->callee = callee;
        agg->nedges++;
    }
    e->calls += calls;
    e->total += total;
    return 0;
}

static size_t
node_hash(uint32_t parent, uint32_t site)
{
    return edge_hash(parent, site);
}

static int
node_hash_grow(struct aggregate *agg)
{
    size_t cap = agg->node_hash_cap ? agg->node_hash_cap * 2 : 1024;
    uint32_t *tab = calloc(cap, sizeof(*tab));

    if (!tab)
        return -1;
    for (size_t i = 1; i < agg->nnodes; i++) {
        size_t h = node_hash(agg->nodes[i].parent, agg->nodes[i].site) & (cap - 1);
        while (tab[h])
            h = (h + 1) & (cap - 1);
        tab[h] = (uint32_t)i + 1;
    }
    free(agg->node_hash);
    agg->node_hash = tab;
    agg->node_hash_cap = cap;
    return 0;
}

static int
node_append(struct aggregate *agg, uint32_t parent, uint32_t site)
{
    if (agg->nnodes == agg->node_cap) {
        size_t cap = agg->node_cap ? agg->node_cap * 2 : 256;
        struct node_acc *p = realloc(agg->nodes, cap * sizeof(*p));
        if (!p)
            return -1;
        agg->nodes = p;
        agg->node_cap = cap;
    }
    agg->nodes[agg->nnodes++] = (struct node_acc){.parent = parent, .site = site};
    return 0;
}

uint32_t
agg_add_node_hint(struct aggregate *agg, uint32_t parent, const struct node_acc *n,
                  uint32_t hint)
{
    if (hint < agg->nnodes) {
        struct node_acc *a = &agg->nodes[hint];
        if (hint && a->parent == parent && a->site == n->site) {
            a->calls += n->calls;
            a->total += n->total;
            a->total_prim += n->total_prim;
            a->self += n->self;
            a->prim_calls += n->prim_calls;
            return hint;
        }
    }
    return agg_add_node(agg, parent, n);
}

uint32_t
agg_add_node(struct aggregate *agg, uint32_t parent, const struct node_acc *n)
{
    if (!agg->nnodes && node_append(agg, 0, 0) < 0) /* the root */
        return AGG_NODE_DROPPED;
    if ((agg->nnodes + 1) * 2 > agg->node_hash_cap && node_hash_grow(agg) < 0)
        return AGG_NODE_DROPPED;
    size_t mask = agg->node_hash_cap - 1, h = node_hash(parent, n->site) & mask;
    uint32_t idx = 0;
    for (; agg->node_hash[h]; h = (h + 1) & mask) {
        const struct node_acc *c = &agg->nodes[agg->node_hash[h] - 1];
        if (c->parent == parent && c->site == n->site) {
            idx = agg->node_hash[h] - 1;
            break;
        }
    }
    if (!idx) {
        if (agg->nnodes >= AGG_MAX_NODES || node_append(agg, parent, n->site) < 0) {
            agg->loss.edges_dropped += n->calls;
            return AGG_NODE_DROPPED;
        }
        idx = (uint32_t)agg->nnodes - 1;
        agg->node_hash[h] = idx + 1;
    }
    struct node_acc *a = &agg->nodes[idx];
    a->calls += n->calls;
    a->total += n->total;
    a->total_prim += n->total_prim;
    a->self += n->self;
    a->mem_allocs += n->mem_allocs;
    a->mem_bytes += n->mem_bytes;
    a->mem_freed += n->mem_freed;
    a->prim_calls += n->prim_calls;
    return idx;
}

int
agg_node_to_site(struct aggregate *agg, const struct node_acc *n)
{
    if (!n->calls)
        return 0;
    struct site_acc *a = site_slot(agg, n->site);
    if (!a)
        return -1;
    a->calls += n->calls;
    a->prim_calls += n->prim_calls;
    a->total += n->total_prim;
    a->self += n->self;
    return 0;
}

int
agg_sites_from_nodes(struct aggregate *agg)
{
    for (size_t i = 1; i < agg->nnodes; i++)
        if (agg_node_to_site(agg, &agg->nodes[i]) < 0)
            return -1;
    return 0;
}

int
agg_derive_edges(struct aggregate *agg)
{
    for (size_t i = 1; i < agg->nnodes; i++) {
        const struct node_acc *n = &agg->nodes[i];
        if (n->parent == 0)
            continue; /* top level: no caller */
        if (agg_add_edge(agg, agg->nodes[n->parent].site, n->site, n->calls,
                         n->total_prim) < 0)
            return -1;
    }
    return 0;
}

int
agg_merge(struct aggregate *agg, const struct aggregate *from)
{
    uint32_t *map = from->nnodes ? malloc(from->nnodes * sizeof(*map)) : NULL;

    if (from->nnodes && !map)
        return -1;
    for (size_t i = 1; i < from->nnodes; i++) {
        const struct node_acc *n = &from->nodes[i];
        uint32_t parent = n->parent ? map[n->parent] : 0;
        map[i] = parent == AGG_NODE_DROPPED ? AGG_NODE_DROPPED : agg_add_node(agg, parent, n);
        if (map[i] == AGG_NODE_DROPPED && agg_node_to_site(agg, n) < 0) {
            free(map);
            return -1;
        }
    }
    free(map);
    for (size_t id = 0; id < from->nsites; id++) {
        if (!from->sites[id])
            continue;
        struct site_acc *a = site_slot(agg, (uint32_t)id);
        if (!a)
            return -1;
        acc_add(a, from->sites[id]);
    }
    /* Edges are derived from the nodes once, for a snapshot (agg_derive_edges). */
    agg->loss.depth_overflow += from->loss.depth_overflow;
    agg->loss.unbalanced += from->loss.unbalanced;
    agg->loss.edges_dropped += from->loss.edges_dropped;
    agg->loss.sites_dropped += from->loss.sites_dropped;
    agg->loss.threads_unlisted += from->loss.threads_unlisted;
    agg->loss.stats_dropped += from->loss.stats_dropped;
    agg->scopes += from->scopes;
    return 0;
}

void
agg_free(struct aggregate *agg)
{
    for (size_t i = 0; i < agg->nsites; i++)
        free(agg->sites[i]);
    free(agg->sites);
    free(agg->edges);
    free(agg->nodes);
    free(agg->node_hash);
    memset(agg, 0, sizeof(*agg));
}
