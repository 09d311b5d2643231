/* What the benchmarks share: a clock, quantiles over rounds, the CPU's name. */
#ifndef BENCH_HARNESS_H
#define BENCH_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* The most rounds a benchmark runs: medians are over at most this many values. */
#define BENCH_MAX_ROUNDS 101

/* CLOCK_MONOTONIC in ns. */
uint64_t bench_now_ns(void);

/* The q-quantile (0..1) of v[0..n-1] (n <= BENCH_MAX_ROUNDS), by linear
 * interpolation; v is left unchanged. */
double bench_quantile(const double *v, unsigned n, double q);
double bench_median(const double *v, unsigned n);

/* The batch size that makes one call of @batch (which runs n iterations and returns
 * ns per iteration) take about @ms milliseconds; at least @min_n. */
uint64_t bench_calibrate(double (*batch)(void *arg, uint64_t n), void *arg, uint64_t min_n,
                         double ms);

/* The CPU's model name from /proc/cpuinfo, or "unknown CPU", in @buf. */
const char *bench_cpu_model(char *buf, size_t size);

#endif
