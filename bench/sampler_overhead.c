/*
 * sampler_overhead: what the statistical sampler costs a CPU-bound program, and
 * whether the CPU time it reports is true.
 *
 *   meson test -C build --benchmark -v sampler_overhead
 *   build/bench/sampler_overhead [ROUNDS [MS_PER_RUN]]
 *
 * One workload (an integer hash loop, no memory traffic) runs for a fixed number of
 * iterations with the sampler off and on (1 ms, CPU mode), alternating, ROUNDS times;
 * the medians of the thread CPU time per run give the overhead as a ratio. With the
 * sampler on, the CPU time it reports (sampled weight x interval) is compared with
 * the CPU time the thread measured (CLOCK_THREAD_CPUTIME_ID).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <probe/probe.h>

#include "harness.h"

static volatile uint64_t sink;

__attribute__((noinline)) static void
workload(uint64_t n)
{
    uint64_t x = sink;
    for (uint64_t i = 0; i < n; i++)
        x = x * 6364136223846793005u + i;
    sink = x;
}

static uint64_t
thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
sampled_cpu_ns(void)
{
    probe_snapshot *snap = probe_snapshot_take();
    uint64_t ns = 0;

    for (size_t i = 0; snap && i < probe_snapshot_sample_count(snap); i++)
        ns += probe_snapshot_sample(snap, i)->cpu_ns;
    probe_snapshot_free(snap);
    return ns;
}

int
main(int argc, char **argv)
{
    unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 9;
    double ms = argc > 2 ? atof(argv[2]) : 300;
    double off[BENCH_MAX_ROUNDS], on[BENCH_MAX_ROUNDS], ratio[BENCH_MAX_ROUNDS];
    double truth[BENCH_MAX_ROUNDS];
    char cpu[128];

    if (rounds < 1 || rounds > BENCH_MAX_ROUNDS)
        rounds = 9;
    /* Calibrate: iterations for about @ms of CPU. */
    uint64_t n = 1000000, t0 = thread_cpu_ns();
    workload(n);
    uint64_t per = thread_cpu_ns() - t0;
    n = (uint64_t)((double)n * ms * 1e6 / (double)(per ? per : 1));

    for (unsigned r = 0; r < rounds; r++) {
        t0 = thread_cpu_ns();
        workload(n);
        off[r] = (double)(thread_cpu_ns() - t0);

        probe_reset();
        if (probe_sampler_start(NULL) < 0) {
            fprintf(stderr, "sampler_overhead: probe_sampler_start failed\n");
            return 1;
        }
        t0 = thread_cpu_ns();
        workload(n);
        on[r] = (double)(thread_cpu_ns() - t0);
        probe_sampler_stop();
        ratio[r] = on[r] / off[r];
        truth[r] = (double)sampled_cpu_ns() / on[r];
    }
    printf("CPU: %s; %u rounds of %.0f ms, sampler at 1 ms (CPU mode); medians.\n\n",
           bench_cpu_model(cpu, sizeof(cpu)), rounds, ms);
    printf("| what | value |\n|---|---:|\n");
    printf("| workload, sampler off | %.1f ms CPU |\n", bench_median(off, rounds) / 1e6);
    printf("| workload, sampler on | %.1f ms CPU |\n", bench_median(on, rounds) / 1e6);
    printf("| overhead (on ÷ off, per round) | %.4f× |\n", bench_median(ratio, rounds));
    printf("| reported CPU ÷ measured CPU | %.3f (min %.3f, max %.3f) |\n",
           bench_median(truth, rounds), bench_quantile(truth, rounds, 0),
           bench_quantile(truth, rounds, 1));
    return 0;
}
