/* Internal: memory snapshots (snapshot.c) and the tracker's hook into reports. */
#ifndef PROBE_MEM_MSNAP_H
#define PROBE_MEM_MSNAP_H

#include <probe/mem.h>

#include "attrs.h"

struct probe_mem_snapshot {
    probe_mem_tag_info *tags;
    probe_mem_info info;
    char *names; /* every tag name, back to back */
};

/* Make report snapshots carry the memory figures (done at the first tag). */
void mem_report_hook_install(void);

/* A snapshot; @set_baseline: growth of the next is measured from this one. */
probe_mem_snapshot *mem_snapshot_collect(int set_baseline);

#endif
