/*
 * rusage_overhead: what reading resource usage costs, held against one PROBE_SCOPE
 * measured in the same process.
 *
 * Run it (BUILDDIR is your Meson build directory; the bench option is on by default):
 *
 *     meson test -C BUILDDIR --benchmark -v rusage_overhead
 *     BUILDDIR/bench/rusage_overhead [--rounds N] [--ms MS] [--cpu N]
 *
 * Variants, each a noinline loop whose body is the measured thing around a compiler
 * barrier standing for the user's code:
 *
 *   scope     PROBE_SCOPE("...") while recording: the unit of the ratios
 *   self      probe_getrusage(PROBE_RUSAGE_SELF, &ru)
 *   thread    probe_getrusage(PROBE_RUSAGE_THREAD, &ru)
 *   clock     clock_gettime(CLOCK_THREAD_CPUTIME_ID): the cheapest per-thread CPU
 *             reading, for reference
 *   rscope    PROBE_RUSAGE_SCOPE("...") while recording
 *
 * Method, as in scope_overhead (docs/bench.md): pinned to one CPU, every variant
 * calibrated to about --ms milliseconds per batch, then run in rounds, one batch each,
 * the order rotating from round to round. A figure in ns is the median over the
 * rounds; a ratio is the median of the ratios taken within each round, so slow drift
 * of the host cancels. It prints Markdown and always exits 0: it reports, it does not
 * gate. docs/rusage.md ("Cost") says how to read it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>

#include "harness.h"
#include <probe/report.h>

#define MAX_ROUNDS BENCH_MAX_ROUNDS

#define BARRIER() __asm__ __volatile__("" ::: "memory")

/* ---- the measured loops ----------------------------------------------------------- */

__attribute__((noinline)) static void
loop_scope(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        PROBE_SCOPE("rusage_overhead.scope");
        BARRIER();
    }
}

__attribute__((noinline)) static void
loop_self(uint64_t n)
{
    probe_rusage ru;

    for (uint64_t i = 0; i < n; i++) {
        (void)probe_getrusage(PROBE_RUSAGE_SELF, &ru);
        BARRIER();
    }
}

__attribute__((noinline)) static void
loop_thread(uint64_t n)
{
    probe_rusage ru;

    for (uint64_t i = 0; i < n; i++) {
        (void)probe_getrusage(PROBE_RUSAGE_THREAD, &ru);
        BARRIER();
    }
}

__attribute__((noinline)) static void
loop_clock(uint64_t n)
{
    struct timespec ts;

    for (uint64_t i = 0; i < n; i++) {
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        BARRIER();
    }
}

__attribute__((noinline)) static void
loop_rscope(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        PROBE_RUSAGE_SCOPE("rusage_overhead.rscope");
        BARRIER();
    }
}

struct variant {
    const char *label;
    void (*loop)(uint64_t n);
    uint64_t n;                 /* iterations per batch, from calibration */
    uint64_t ran;               /* iterations run in all, calibration included */
    double ns[MAX_ROUNDS];      /* ns per iteration, one per round */
    double x_scope[MAX_ROUNDS]; /* ns / PROBE_SCOPE's ns in the same round */
};

enum { V_SCOPE, V_SELF, V_THREAD, V_CLOCK, V_RSCOPE, V_COUNT };

static struct variant variants[V_COUNT] = {
    [V_SCOPE] = {.label = "PROBE_SCOPE, recording", .loop = loop_scope},
    [V_SELF] = {.label = "probe_getrusage(PROBE_RUSAGE_SELF)", .loop = loop_self},
    [V_THREAD] = {.label = "probe_getrusage(PROBE_RUSAGE_THREAD)", .loop = loop_thread},
    [V_CLOCK] = {.label = "clock_gettime(CLOCK_THREAD_CPUTIME_ID), for reference",
                 .loop = loop_clock},
    [V_RSCOPE] = {.label = "PROBE_RUSAGE_SCOPE, recording", .loop = loop_rscope},
};

struct options {
    unsigned rounds;
    double ms;
    int cpu; /* -1: choose */
};

/* ---- helpers --------------------------------------------------------------------- */

/* Pin the calling thread to @want, or to the last CPU it may use when @want < 0 (on
 * small VMs CPU 0 tends to take more of the interrupts). The CPU, or -1. */
static int
pin(int want)
{
    cpu_set_t allowed, one;
    int cpu = -1;

    if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
        return -1;
    for (int i = CPU_SETSIZE - 1; i >= 0 && cpu < 0; i--)
        if (CPU_ISSET(i, &allowed) && (want < 0 || want == i))
            cpu = i;
    if (cpu < 0)
        return -1;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return pthread_setaffinity_np(pthread_self(), sizeof(one), &one) == 0 ? cpu : -1;
}

/* ---- running ---------------------------------------------------------------------- */

static double
batch_ns(struct variant *v, uint64_t n)
{
    uint64_t t0 = bench_now_ns();
    v->loop(n);
    uint64_t t1 = bench_now_ns();
    v->ran += n;
    return (double)(t1 - t0) / (double)n;
}

/* Choose n so one batch takes about ms milliseconds. Called twice: once to warm up,
 * once to measure. */
static double
batch_thunk(void *v, uint64_t n)
{
    return batch_ns(v, n);
}

static void
calibrate(struct variant *v, double ms)
{
    v->n = bench_calibrate(batch_thunk, v, 100, ms);
}

/* The library must have recorded every scope the loops ran, or the scope rows do not
 * time what they claim. */
static void
print_recorded_check(void)
{
    static const int which[] = {V_SCOPE, V_RSCOPE};
    static const char *const names[] = {"rusage_overhead.scope",
                                        "rusage_overhead.rscope"};
    probe_snapshot *snap = probe_snapshot_take();

    for (int i = 0; i < 2; i++) {
        const probe_site_info *si = snap ? probe_snapshot_find(snap, names[i]) : NULL;
        uint64_t calls = si ? si->calls : 0;
        uint64_t ran = variants[which[i]].ran;

        if (calls == ran)
            printf("Check: site \"%s\" recorded all %llu scopes.\n", names[i],
                   (unsigned long long)ran);
        else
            printf("WARNING: site \"%s\" recorded %llu calls for %llu scopes run.\n",
                   names[i], (unsigned long long)calls, (unsigned long long)ran);
        if (which[i] == V_RSCOPE && si && (!si->has_usage || si->usage_calls != ran))
            printf("WARNING: site \"%s\" has usage for %llu of %llu calls%s.\n", names[i],
                   (unsigned long long)si->usage_calls, (unsigned long long)ran,
                   si->has_usage ? "" : " (has_usage is 0)");
    }
    probe_snapshot_free(snap);
}

static void
print_report(const struct options *o, int cpu, const double *extra_x_thread)
{
    unsigned r = o->rounds;
    char model[128];
    struct variant *v = variants;

    printf("## rusage_overhead\n\n");
    printf("libprobe %d.%d.%d, %s, built %s; %s.\n", PROBE_VERSION_MAJOR,
           PROBE_VERSION_MINOR, PROBE_VERSION_PATCH, bench_cpu_model(model, sizeof(model)),
#ifdef __OPTIMIZE__
           "optimized",
#else
           "WITHOUT optimization (the figures mean little)",
#endif
           "gcc/clang " __VERSION__);
    if (cpu >= 0)
        printf("Pinned to CPU %d", cpu);
    else
        printf("NOT pinned (sched_setaffinity failed)");
    printf(". %u rounds, ~%.0f ms per variant per round; medians.\n\n", r, o->ms);

    printf("| what | ns/call (median) | × PROBE_SCOPE |\n");
    printf("|---|---:|---:|\n");
    for (int i = 0; i < V_COUNT; i++)
        printf("| %s | %.1f | %.2f |\n", v[i].label, bench_median(v[i].ns, r),
               i == V_SCOPE ? 1.0 : bench_median(v[i].x_scope, r));
    printf(
        "\nPROBE_RUSAGE_SCOPE minus PROBE_SCOPE is %.2f × probe_getrusage(THREAD) "
        "(median of the rounds' ratios; 2.00 is the two readings and nothing else).\n\n",
        bench_median(extra_x_thread, r));
    print_recorded_check();

    printf(
        "\nSpread over the %u rounds, ns per call (min / p25 / median / p75 / max):\n\n",
        r);
    printf("| what | min | p25 | median | p75 | max |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < V_COUNT; i++)
        printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f |\n", v[i].label,
               bench_quantile(v[i].ns, r, 0), bench_quantile(v[i].ns, r, 0.25), bench_median(v[i].ns, r),
               bench_quantile(v[i].ns, r, 0.75), bench_quantile(v[i].ns, r, 1));
}

static int
run(const struct options *o)
{
    static double extra_x_thread[MAX_ROUNDS];
    int cpu = pin(o->cpu);
    int err;

    if (o->cpu >= 0 && cpu != o->cpu) {
        fprintf(stderr, "rusage_overhead: cannot run on CPU %d\n", o->cpu);
        return 2;
    }
    if ((err = probe_start()) < 0) {
        fprintf(stderr, "rusage_overhead: probe_start: %s\n", probe_strerror(err));
        return 1;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < V_COUNT; i++)
            calibrate(&variants[i], o->ms);

    for (unsigned r = 0; r < o->rounds; r++) {
        double ns[V_COUNT];

        for (int k = 0; k < V_COUNT; k++) {
            int i = (int)((r + (unsigned)k) % V_COUNT);
            ns[i] = batch_ns(&variants[i], variants[i].n);
        }
        for (int i = 0; i < V_COUNT; i++) {
            variants[i].ns[r] = ns[i];
            variants[i].x_scope[r] = ns[i] / ns[V_SCOPE];
        }
        extra_x_thread[r] = (ns[V_RSCOPE] - ns[V_SCOPE]) / ns[V_THREAD];
    }
    print_report(o, cpu, extra_x_thread);
    return 0;
}

/* ---- options ---------------------------------------------------------------------- */

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: rusage_overhead [--rounds N] [--ms MS] [--cpu N]\n"
            "  --rounds N  rounds of interleaved runs (default 15, at most %d)\n"
            "  --ms MS     milliseconds per variant per round (default 30)\n"
            "  --cpu N     pin to CPU N (default: the last allowed)\n",
            MAX_ROUNDS);
}

static int
parse_u64(const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    unsigned long long v = strtoull(s ? s : "", &end, 10);
    if (!s || errno || end == s || *end || s[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

int
main(int argc, char **argv)
{
    struct options o = {15, 30.0, -1};
    uint64_t v;

    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--rounds") == 0 && parse_u64(arg, &v) == 0 && v >= 1 &&
                   v <= MAX_ROUNDS) {
            o.rounds = (unsigned)v;
        } else if (strcmp(a, "--ms") == 0 && parse_u64(arg, &v) == 0 && v >= 1 &&
                   v <= 10000) {
            o.ms = (double)v;
        } else if (strcmp(a, "--cpu") == 0 && parse_u64(arg, &v) == 0 &&
                   v < CPU_SETSIZE) {
            o.cpu = (int)v;
        } else {
            usage(stderr);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    return run(&o);
}
