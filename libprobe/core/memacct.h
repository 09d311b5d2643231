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
#include "attrs.h"
#include "stats.h"
#include "thread.h"

/* Map the calling thread's heap figures for node @idx's chunk; NULL if mmap fails
 * (the allocation then goes uncounted). */
struct node_mem *memacct_chunk(struct thread_state *t, uint32_t idx) COLD;

/* The calling thread's innermost open scope's heap figures, or NULL. */
static inline struct node_mem *
memacct_current(void)
{
    struct thread_state *t;
    struct cct_node *n = thread_current_node(&t);

    if (!n)
        return NULL;
    struct node_mem *m = t->mem_chunks[n->idx / THREAD_NODE_CHUNK];

    if (unlikely(!m) && !(m = memacct_chunk(t, n->idx)))
        return NULL;
    return m + n->idx % THREAD_NODE_CHUNK;
}

/* An allocation of @bytes by the calling thread. */
static inline void
memacct_alloc(size_t bytes)
{
    struct node_mem *m = memacct_current();

    if (m) {
        owner_add(&m->allocs, 1);
        owner_add(&m->bytes, bytes);
    }
}

/* A free of @p by the calling thread: @usable(p) bytes, asked only inside a scope. */
static inline void
memacct_free(void *p, size_t (*usable)(void *))
{
    struct node_mem *m = usable ? memacct_current() : NULL;

    if (m)
        owner_add(&m->freed, usable(p));
}

/* probe_reset: the owner zeroes its figures (thread.c's catch_up). */
void memacct_clear(struct thread_state *t);

/* The thread is being freed: unmap its figures. */
void memacct_unmap(struct thread_state *t);

/* @nodes (parents first) carry their own figures: make them inclusive, and fill the
 * sites' from their outermost nodes (a node with no ancestor of the same site). */
void memacct_inclusive(probe_node_info *nodes, size_t nnodes, probe_site_info *sites,
                       size_t nsites);

#endif
