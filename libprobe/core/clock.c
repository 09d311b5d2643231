#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

/* The TSC's frequency where the kernel or the CPU publishes it, in ticks per second;
 * 0 when neither does. Read once. */
static double
tsc_published_hz(void)
{
    static double hz = -1;

    if (hz >= 0)
        return hz;
    hz = 0;
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/tsc_freq_khz", "re");
    if (f) {
        unsigned long long khz;

        if (fscanf(f, "%llu", &khz) == 1 && khz > 0)
            hz = (double)khz * 1e3;
        fclose(f);
    }
#if defined(CLOCK_HAVE_TSC)
    unsigned a, b, c, d;

    /* Leaf 0x15: TSC = crystal (ECX, Hz) * EBX / EAX; ECX is 0 where not given. */
    if (hz == 0 && __get_cpuid(0x15, &a, &b, &c, &d) && a && b && c)
        hz = (double)c * b / a;
    /* Hypervisors (KVM, VMware) give the guest's TSC rate in kHz at 0x40000010. */
    if (hz == 0 && __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 31))) {
        __cpuid(0x40000000u, a, b, c, d);
        if (a >= 0x40000010u) {
            __cpuid(0x40000010u, a, b, c, d);
            hz = (double)a * 1e3;
        }
    }
#endif
    return hz;
}

double
clock_ns_per_tick(void)
{
    if (!clock_tsc)
        return 1.0;
    /* No waiting: a reading's jitter j makes every figure off by at most j / interval
     * of itself, and no figure is longer than the interval, so each is off by about j
     * (tens of ns) whatever the interval. Below 5 ms a published frequency, where
     * there is one, does better still. */
    uint64_t t0 = clock_ticks();
    uint64_t ns = clock_monotonic_ns();
    uint64_t t1 = clock_ticks();
    uint64_t ticks = t0 + (t1 - t0) / 2;
    double npt, hz;

    if (ticks <= origin_ticks || ns <= origin_ns)
        return 1.0;
    if (ns - origin_ns < 5000000u && (hz = tsc_published_hz()) > 0)
        npt = 1e9 / hz;
    else
        npt = (double)(ns - origin_ns) / (double)(ticks - origin_ticks);
    uint64_t bits;
    memcpy(&bits, &npt, sizeof(bits));
    __atomic_store_n(&cached_npt_bits, bits, __ATOMIC_RELAXED);
    return npt;
}

/* The process's age: CLOCK_BOOTTIME now less its start time in /proc/self/stat (in
 * clock ticks, 10 ms), but never less than the time since the library loaded, which
 * is finer when it loaded with the program. */
uint64_t
clock_process_age_ns(void)
{
    uint64_t since_load = clock_monotonic_ns() - origin_ns, age = 0;
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    struct timespec now;
    long hz = sysconf(_SC_CLK_TCK);

    if (f)
        fclose(f);
    buf[n] = '\0';
    /* Field 22; the name (field 2) may hold spaces and ')', so count from the last ')'. */
    char *p = strrchr(buf, ')');
    unsigned long long start;
    if (p && hz > 0 && clock_gettime(CLOCK_BOOTTIME, &now) == 0 &&
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
                      "%*d %*d %*d %llu", &start) == 1) {
        uint64_t boot = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
        uint64_t at = (uint64_t)start * (1000000000u / (uint64_t)hz);
        age = boot > at ? boot - at : 0;
    }
    return age > since_load ? age : since_load;
}
