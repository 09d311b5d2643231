/* Sums of statistics from many threads, indexed by site id. Used for the threads
 * that have exited (under the registry lock) and for building a snapshot. Not
 * thread-safe by itself. */
#ifndef PROBE_CORE_AGGREGATE_H
#define PROBE_CORE_AGGREGATE_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"

struct site_acc {
    uint64_t calls, prim_calls, total, self, max;
    uint64_t min;           /* UINT64_MAX until a call is added */
    int64_t value;
    struct usage_stats usage;
    uint64_t hist[STATS_HIST_BUCKETS];
};

struct edge_acc {
    uint32_t caller, callee; /* callee == 0: free slot */
    uint64_t calls, total;
};

/* A calling-context tree node summed over threads; node 0 is the root. */
struct node_acc {
    uint32_t parent, site;
    uint64_t calls, total, total_prim, self, prim_calls;
    uint64_t mem_allocs, mem_bytes, mem_freed; /* memacct.c: the node's own */
};

#define AGG_MAX_NODES (1u << 20)
#define AGG_NODE_DROPPED 0xffffffffu

struct loss_acc {
    uint64_t depth_overflow, unbalanced, edges_dropped, sites_dropped, threads_unlisted;
    /* Calls or usage whose histogram group or usage record could not be allocated
     * (their other statistics are kept). */
    uint64_t stats_dropped;
};

struct aggregate {
    struct site_acc **sites;    /* sites[id], allocated when first added to */
    size_t nsites;              /* capacity of @sites */
    struct edge_acc *edges;     /* open-addressing table, power-of-two size */
    size_t edge_cap, nedges;
    struct node_acc *nodes;     /* parents before children */
    size_t nnodes, node_cap;
    uint32_t *node_hash;        /* (parent, site) -> index + 1, open addressing */
    size_t node_hash_cap;
    struct loss_acc loss;
    uint64_t scopes;            /* completed scope calls */
};

/* Read site @j of chunk @c (owned by a running thread) with atomic loads and add it
 * as site @id. */
int agg_add_site(struct aggregate *agg, uint32_t id, const struct stats_chunk *c, unsigned j);
/* Add @count calls in histogram bucket @b to site @id. Returns 0, or -1 when out of
 * memory. */
int agg_add_hist(struct aggregate *agg, uint32_t id, unsigned b, uint64_t count);
int agg_add_edge(struct aggregate *agg, uint32_t caller, uint32_t callee, uint64_t calls,
                 uint64_t total);
/* Add to the child of @parent for @site (created if new). Returns its index, or
 * AGG_NODE_DROPPED when the table is full (counted as dropped edges) or out of
 * memory. @parent must be an index this function returned, or 0 (the root). */
uint32_t agg_add_node(struct aggregate *agg, uint32_t parent, const struct node_acc *n);
/* The same, trying node @hint first (the index a node at the same place of another
 * thread's table got): threads that ran the same code build their tables in the
 * same order, so most nodes are found without hashing. */
uint32_t agg_add_node_hint(struct aggregate *agg, uint32_t parent, const struct node_acc *n,
                           uint32_t hint);
/* Add node @n's calls and times to its site's (when its path is dropped). */
int agg_node_to_site(struct aggregate *agg, const struct node_acc *n);
/* Add every node's calls and times to its site's: a scope's figures are kept by its
 * nodes (stats.h). Once, on the aggregate a snapshot is made from. */
int agg_sites_from_nodes(struct aggregate *agg);
/* Fill the edges from the nodes: caller -> callee for every node under another. */
int agg_derive_edges(struct aggregate *agg);
int agg_merge(struct aggregate *agg, const struct aggregate *from);
void agg_free(struct aggregate *agg);
/* The accumulated site @id, or NULL if nothing was added for it. */
const struct site_acc *agg_site(const struct aggregate *agg, uint32_t id);

#endif
