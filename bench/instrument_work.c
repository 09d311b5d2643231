/* The program instrument_overhead compares (docs/bench.md, "instrument_overhead"),
 * built five ways from this one file: plain, with -finstrument-functions and empty
 * hooks, with -finstrument-functions and libprobe-instrument, with -pg (gprof), and
 * with PROBE_FUNC() in the called function (-DWORK_PROBE_FUNC).
 *
 * Usage: instrument_work CALLS
 * Calls leaf() CALLS times after a warm-up and prints the thread CPU time per call in
 * ns. It leaves with _exit(): no gmon.out, no report at exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#ifdef WORK_PROBE_FUNC
#include <probe/probe.h>
#endif

/* The instrumented function: a barrier standing for the user's code. */
__attribute__((noinline)) static void
leaf(void)
{
#ifdef WORK_PROBE_FUNC
    PROBE_FUNC();
#endif
    __asm__ __volatile__("" ::: "memory");
}

__attribute__((noinline)) static void
run(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        leaf();
}

static uint64_t
cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 0;

    if (!n) {
        fprintf(stderr, "usage: %s CALLS\n", argv[0]);
        return 2;
    }
    run(n / 10 + 1); /* warm: sites, pages, branch predictors */
    uint64_t t0 = cpu_ns();
    run(n);
    uint64_t t1 = cpu_ns();
    printf("%.4f\n", (double)(t1 - t0) / (double)n);
    fflush(stdout);
    _exit(0);
}
