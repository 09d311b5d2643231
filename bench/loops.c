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

__attribute__((noinline)) void
loops_depth3(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        PROBE_SCOPE("d1");
        {
            PROBE_SCOPE("d2");
            {
                PROBE_SCOPE("d3");
                LOOPS_BARRIER();
            }
        }
    }
}

__attribute__((noinline)) void
loops_depth3_floor(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a0 = loops_now();
        uint64_t b0 = loops_now();
        uint64_t c0 = loops_now();
        LOOPS_BARRIER();
        uint64_t c1 = loops_now();
        loops_floor_acc += c1 - c0;
        uint64_t b1 = loops_now();
        loops_floor_acc += b1 - b0;
        uint64_t a1 = loops_now();
        loops_floor_acc += a1 - a0;
    }
}

#define LOOPS_REC_DEPTH 3

static __attribute__((noinline)) void
recurse(unsigned d)
{
    PROBE_SCOPE("rec");
    if (d > 1)
        recurse(d - 1);
    LOOPS_BARRIER();
}

static __attribute__((noinline)) void
recurse_floor(unsigned d)
{
    uint64_t t0 = loops_now();
    if (d > 1)
        recurse_floor(d - 1);
    LOOPS_BARRIER();
    uint64_t t1 = loops_now();
    loops_floor_acc += t1 - t0;
}

__attribute__((noinline)) void
loops_recurse(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        recurse(LOOPS_REC_DEPTH);
}

__attribute__((noinline)) void
loops_recurse_floor(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        recurse_floor(LOOPS_REC_DEPTH);
}

/* A body of 0 to 63 steps, chosen by a pseudo-random sequence: calls whose durations
 * change histogram bucket in an order no predictor learns. */
static inline void
jitter_body(uint32_t *x)
{
    *x = *x * 1103515245u + 12345u;
    for (unsigned j = *x >> 26; j; j--)
        LOOPS_BARRIER();
}

__attribute__((noinline)) void
loops_jitter(uint64_t n)
{
    static uint32_t x = 1;

    for (uint64_t i = 0; i < n; i++) {
        PROBE_SCOPE("jitter");
        jitter_body(&x);
    }
}

__attribute__((noinline)) void
loops_jitter_floor(uint64_t n)
{
    static uint32_t x = 1;

    for (uint64_t i = 0; i < n; i++) {
        uint64_t t0 = loops_now();
        jitter_body(&x);
        uint64_t t1 = loops_now();
        loops_floor_acc += t1 - t0;
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
