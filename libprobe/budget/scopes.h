/* The PROBE_SCOPEs a budgeted function ran: each scope name's self time and calls
 * per run (the minimum self time over the runs), from snapshots taken between the
 * runs. Internal. */
#ifndef PROBE_BUDGET_SCOPES_H
#define PROBE_BUDGET_SCOPES_H

#include <stddef.h>
#include <stdint.h>

#include <probe/report.h>

struct scope_cost {
    char *name;
    uint64_t self_ns;       /* minimum over the runs it ran in */
    uint64_t calls;         /* in the last run it ran in */
};

struct scope_table {
    struct scope_cost *v;
    size_t n, cap;
    probe_snapshot *prev;
    int failed;             /* out of memory: the table is incomplete */
};

/* Hooks for budget_measure() (measure.h); @ctx is a zeroed struct scope_table. */
void scopes_before(void *ctx);
void scopes_after_run(void *ctx);

void scopes_free(struct scope_table *t);

#endif
