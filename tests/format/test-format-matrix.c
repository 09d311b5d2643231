/*
 * Every formatter over every mix of what a snapshot can hold, for check_matrix.py.
 *
 * usage: test-format-matrix PARTS DIR
 *
 * PARTS is "none" or a comma-separated subset of "scopes" (nested scopes ran),
 * "samples" (the sampler ran over a CPU loop outside any scope), "timeline" (tracing
 * was on) and "counters" (a counter was updated). Writes DIR/out.FORMAT for each
 * formatter of the registry. The names and values here are mirrored in
 * check_matrix.py. Exits 0 when every call succeeded, 1 with a message otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <probe/probe.h>
#include <probe/sampler.h>
#include <probe/trace.h>

static const char *const formats[] = {
    "text", "json", "collapsed", "callgrind", "chrome", "speedscope", "tree", "pprof",
    "html",
};

static volatile uint64_t sink;

/* Exported (not static) so that the sampler's frames name it. */
void mx_spin_loop(uint64_t cpu_ns);

static uint64_t
thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Burn @cpu_ns of this thread's CPU time: samples accrue however loaded the machine. */
__attribute__((noinline)) void
mx_spin_loop(uint64_t cpu_ns)
{
    uint64_t end = thread_cpu_ns() + cpu_ns, x = sink;

    do {
        for (int i = 0; i < 100000; i++)
            x = x * 6364136223846793005u + (uint64_t)i;
    } while (thread_cpu_ns() < end);
    sink = x;
}

__attribute__((noinline)) static void
mx_inner(void)
{
    PROBE_SCOPE("mx_inner");
    sink++;
}

__attribute__((noinline)) static void
mx_scopes(void)
{
    for (int i = 0; i < 4; i++) {
        PROBE_SCOPE("mx_outer");
        for (int j = 0; j < 3; j++)
            mx_inner();
    }
}

static int
has_part(const char *parts, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = parts; (p = strstr(p, name)) != NULL; p += n) {
        if ((p == parts || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    }
    return 0;
}

static int
fail(const char *what, int r)
{
    fprintf(stderr, "test-format-matrix: %s: %s\n", what, probe_strerror(r));
    return 1;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PARTS DIR\n", argv[0]);
        return 2;
    }

    const char *parts = argv[1];
    int r;

    probe_thread_name("mx-main");
    if (has_part(parts, "timeline") && (r = probe_trace_start(NULL)) < 0)
        return fail("probe_trace_start", r);
    if (has_part(parts, "scopes"))
        mx_scopes();
    if (has_part(parts, "counters")) {
        for (int i = 0; i < 3; i++)
            PROBE_COUNT("mx_counter", 5); /* 15 in all */
    }
    if (has_part(parts, "samples")) {
        probe_sampler_options opts = PROBE_SAMPLER_OPTIONS_INIT;

        opts.interval_ns = 1000000u;
        if ((r = probe_sampler_start(&opts)) < 0)
            return fail("probe_sampler_start", r);
        mx_spin_loop(50000000u); /* about 50 samples */
        probe_sampler_stop();
    }
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        char path[4096];

        snprintf(path, sizeof(path), "%s/out.%s", argv[2], formats[i]);
        if ((r = probe_report_write(path, formats[i])) < 0)
            return fail(formats[i], r);
    }
    if (has_part(parts, "timeline"))
        probe_trace_stop();
    return 0;
}
