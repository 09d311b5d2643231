/* What the benchmarks share: see harness.h. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of v[0..n-1], by linear interpolation; v is left unchanged. */
double
bench_quantile(const double *v, unsigned n, double q)
{
    double s[BENCH_MAX_ROUNDS];

    memcpy(s, v, n * sizeof(*s));
    qsort(s, n, sizeof(*s), cmp_double);
    double pos = q * (n - 1);
    unsigned i = (unsigned)pos;
    if (i + 1 >= n)
        return s[n - 1];
    return s[i] + (pos - i) * (s[i + 1] - s[i]);
}

double
bench_median(const double *v, unsigned n)
{
    return bench_quantile(v, n, 0.5);
}

const char *
bench_cpu_model(char *buf, size_t size)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];

    snprintf(buf, size, "unknown CPU");
    if (!f)
        return buf;
    while (fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (colon && strncmp(line, "model name", 10) == 0) {
            snprintf(buf, size, "%s", colon + 2);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
    return buf;
}

uint64_t
bench_calibrate(double (*batch)(void *arg, uint64_t n), void *arg, uint64_t min_n, double ms)
{
    uint64_t n = min_n;
    double per = 0;

    for (;;) {
        per = batch(arg, n);
        if (per * (double)n >= 2e6 || n >= (UINT64_C(1) << 40))
            break;
        n *= 4;
    }
    double want = ms * 1e6 / (per > 0 ? per : 1e-3);
    return want < (double)min_n ? min_n : (uint64_t)want;
}
