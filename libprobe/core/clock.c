#include "clock.h"

#include <stdlib.h>
#include <string.h>
#if defined(CLOCK_HAVE_TSC)
#include <cpuid.h>
#endif

int clock_tsc;

/* Calibration origin: one (ticks, ns) pair taken at load. The ratio is measured over
 * the longest interval available, so it gets more precise the longer the run. */
static uint64_t origin_ticks;
static uint64_t origin_ns;
static uint64_t epoch_ns;
static uint64_t cached_npt_bits; /* a double, read by signal handlers */

uint64_t
clock_monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
tsc_is_invariant(void)
{
#if defined(CLOCK_HAVE_TSC)
    unsigned a, b, c, d;

    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
        return 0;
    if (!__get_cpuid(0x80000007u, &a, &b, &c, &d))
        return 0;
    return (d >> 8) & 1; /* "invariant TSC": constant rate, runs in every C-state */
#else
    return 0;
#endif
}

void
clock_init(void)
{
    const char *want = secure_getenv("PROBE_CLOCK");

    clock_tsc = tsc_is_invariant();
    if (want && strcmp(want, "monotonic") == 0)
        clock_tsc = 0;
    origin_ns = clock_monotonic_ns();
    origin_ticks = clock_ticks();
    epoch_ns = origin_ns;
}

double
clock_cached_ns_per_tick(void)
{
    if (!clock_tsc)
        return 1.0;
    uint64_t bits = __atomic_load_n(&cached_npt_bits, __ATOMIC_RELAXED);
    double npt;
    memcpy(&npt, &bits, sizeof(npt));
    return npt;
}

uint64_t
clock_since_load_ns(uint64_t ticks, double ns_per_tick)
{
    return ticks > origin_ticks ? (uint64_t)((double)(ticks - origin_ticks) * ns_per_tick)
                                : 0;
}

void
clock_mark_epoch(void)
{
    __atomic_store_n(&epoch_ns, clock_monotonic_ns(), __ATOMIC_RELAXED);
}

uint64_t
clock_epoch_ns(void)
{
    return __atomic_load_n(&epoch_ns, __ATOMIC_RELAXED);
}

const char *
clock_name(void)
{
    return clock_tsc ? "tsc" : "clock_gettime(CLOCK_MONOTONIC)";
}

double
clock_ns_per_tick(void)
{
    uint64_t ticks, ns;

    if (!clock_tsc)
        return 1.0;
    /* Below 5 ms the read jitter of the two clocks would show; wait that long once. */
    do {
        ns = clock_monotonic_ns();
        ticks = clock_ticks();
    } while (ns - origin_ns < 5000000u);
    if (ticks <= origin_ticks)
        return 1.0;
    double npt = (double)(ns - origin_ns) / (double)(ticks - origin_ticks);
    uint64_t bits;
    memcpy(&bits, &npt, sizeof(bits));
    __atomic_store_n(&cached_npt_bits, bits, __ATOMIC_RELAXED);
    return npt;
}
