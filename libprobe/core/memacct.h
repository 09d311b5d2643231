/* Exact per-scope heap figures (docs/memory.md "Heap profiling"): the malloc
 * interposer adds each allocation to the calling thread's innermost open scope's
 * calling-context node, with owner-only relaxed stores, so scope entry and exit are
 * untouched; a snapshot sums a node's subtree into it and a site's outermost nodes
 * into the site. Inline: the allocator calls them on every allocation and free. */
#ifndef PROBE_CORE_MEMACCT_H
#define PROBE_CORE_MEMACCT_H

#include <stddef.h>

#include <probe/report.h>

#include "atomics.h"
#include "stats.h"
#include "thread.h"

/* An allocation of @bytes by the calling thread. */
static inline void
memacct_alloc(size_t bytes)
{
    struct cct_node *n = thread_current_node();

    if (n) {
        owner_add(&n->mem_allocs, 1);
        owner_add(&n->mem_bytes, bytes);
    }
}

/* A free of @p by the calling thread: @usable(p) bytes, asked only inside a scope. */
static inline void
memacct_free(void *p, size_t (*usable)(void *))
{
    struct cct_node *n = thread_current_node();

    if (n && usable)
        owner_add(&n->mem_freed, usable(p));
}

/* @nodes (parents first) carry their own figures: make them inclusive, and fill the
 * sites' from their outermost nodes (a node with no ancestor of the same site). */
void memacct_inclusive(probe_node_info *nodes, size_t nnodes, probe_site_info *sites,
                       size_t nsites);

#endif
