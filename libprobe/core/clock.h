/* The scope clock: invariant TSC where the CPU has one, CLOCK_MONOTONIC otherwise.
 * Ticks are converted to nanoseconds only at snapshot time. */
#ifndef PROBE_CORE_CLOCK_H
#define PROBE_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

#include "attrs.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define CLOCK_HAVE_TSC 1
#endif

/* Hidden, so the library reads it directly rather than through the GOT. */
#define PROBE_CLOCK_SIGSAFE /* reachable from signal handlers (see walk.h) */

extern int clock_tsc HIDDEN;

void clock_init(void);
const char *clock_name(void);
/* Nanoseconds per tick, calibrated over the whole run so far. */
double clock_ns_per_tick(void);
/* The last ratio clock_ns_per_tick() computed, or 0: for signal handlers. */
PROBE_CLOCK_SIGSAFE double clock_cached_ns_per_tick(void);
uint64_t clock_monotonic_ns(void);
/* Start of the recording period reports measure (load, then each probe_reset). */
void clock_mark_epoch(void);
/* Nanoseconds from the library's load to @ticks. */
uint64_t clock_since_load_ns(uint64_t ticks, double ns_per_tick);
uint64_t clock_epoch_ns(void);
/* Nanoseconds since the process started (at least since the library loaded). */
uint64_t clock_process_age_ns(void);

static inline uint64_t
clock_ticks(void)
{
#ifdef CLOCK_HAVE_TSC
    if (__builtin_expect(clock_tsc, 1))
        return __rdtsc();
#endif
    return clock_monotonic_ns();
}

#endif
