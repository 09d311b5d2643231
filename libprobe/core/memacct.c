/* Exact per-scope heap figures, at snapshot time: see memacct.h. */
#include <string.h>
#include <sys/mman.h>

#include "memacct.h"

#define MEM_CHUNK_BYTES (THREAD_NODE_CHUNK * sizeof(struct node_mem))

/* mmap, not malloc: the allocator calls this from inside malloc. */
struct node_mem *
memacct_chunk(struct thread_state *t, uint32_t idx)
{
    struct node_mem **slot = &t->mem_chunks[idx / THREAD_NODE_CHUNK];
    void *p = mmap(NULL, MEM_CHUNK_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return NULL;
    __atomic_store_n(slot, (struct node_mem *)p, __ATOMIC_RELEASE);
    return p;
}

void
memacct_clear(struct thread_state *t)
{
    for (size_t i = 0; i < THREAD_NODE_CHUNKS; i++)
        if (t->mem_chunks[i])
            memset(t->mem_chunks[i], 0, MEM_CHUNK_BYTES);
}

void
memacct_unmap(struct thread_state *t)
{
    for (size_t i = 0; i < THREAD_NODE_CHUNKS; i++) {
        if (t->mem_chunks[i])
            munmap(t->mem_chunks[i], MEM_CHUNK_BYTES);
        t->mem_chunks[i] = NULL;
    }
}

void
memacct_inclusive(probe_node_info *nodes, size_t nnodes, probe_site_info *sites,
                  size_t nsites)
{
    for (size_t i = nnodes; i-- > 0;) {
        const probe_node_info *c = &nodes[i];
        if (c->parent == PROBE_NODE_ROOT || c->parent >= nnodes)
            continue;
        nodes[c->parent].mem_allocs += c->mem_allocs;
        nodes[c->parent].mem_bytes += c->mem_bytes;
        nodes[c->parent].mem_freed += c->mem_freed;
    }
    for (size_t i = 0; i < nnodes; i++) {
        const probe_node_info *c = &nodes[i];
        int nested = 0;
        if (c->site >= nsites || (!c->mem_allocs && !c->mem_freed))
            continue;
        for (size_t a = c->parent; a != PROBE_NODE_ROOT && a < nnodes && !nested;
             a = nodes[a].parent)
            nested = nodes[a].site == c->site;
        if (nested)
            continue; /* its figures are in the outer call's */
        sites[c->site].mem_allocs += c->mem_allocs;
        sites[c->site].mem_bytes += c->mem_bytes;
        sites[c->site].mem_freed += c->mem_freed;
    }
}
