/* Instruction counters for budgets: callgrind's client requests under Valgrind,
 * perf_event_open(2) elsewhere, or none. Internal. */
#ifndef PROBE_BUDGET_COUNTER_H
#define PROBE_BUDGET_COUNTER_H

#include <stdint.h>

#include <probe/budget.h>

struct counter {
    probe_budget_source source;
    int fd;                     /* perf_event_open's descriptor, else -1 */
    uint64_t overhead;          /* the count of a call to an empty function */
    char note[160];             /* why there is no source; "" else */
};

/* 1 under Valgrind (any tool). */
int counter_on_valgrind(void);

/* Pick the best source and calibrate it. Always succeeds: with no source, c->source
 * is PROBE_BUDGET_SOURCE_NONE and c->note says why. */
void counter_open(struct counter *c);

/* Run fn(arg) once. Sets *cpu_ns and *wall_ns, and *instructions when the source
 * counted the run (returns 0); returns -1 when it could not (c->note says why, and
 * the source is dropped). */
int counter_run(struct counter *c, void (*fn)(void *), void *arg, uint64_t *cpu_ns,
                uint64_t *wall_ns, uint64_t *instructions);

void counter_close(struct counter *c);

#endif
