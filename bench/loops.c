/* The measured loops of scope_overhead (see loops.h). */
#include <stdint.h>

#include <probe/probe.h>

#include "loops.h"

/* The same TLS model the library uses for its per-thread state. */
static __thread uint64_t loops_floor_acc __attribute__((tls_model("initial-exec")));

__attribute__((noinline)) void
loops_empty(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        LOOPS_BARRIER();
}

__attribute__((noinline)) void
loops_floor(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t0 = loops_now();
        LOOPS_BARRIER();
        uint64_t t1 = loops_now();
        loops_floor_acc += t1 - t0;
    }
}

__attribute__((noinline)) void
loops_scope(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        PROBE_SCOPE("x");
        LOOPS_BARRIER();
    }
}

uint64_t
loops_floor_sum(void)
{
    return loops_floor_acc;
}

const char *
loops_floor_clock(void)
{
    return LOOPS_CLOCK;
}
