/* Exact per-scope heap figures, at snapshot time: see memacct.h. */
#include "memacct.h"

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
