/* A program with PROBE_SCOPEs of its own for the `probe run` tests: its scopes and
 * the sampler's samples must land in one report. */
#include <stdint.h>
#include <time.h>

#include <probe/probe.h>

static volatile uint64_t sink;

static uint64_t
thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((noinline)) static void
crunch(void)
{
    PROBE_SCOPE("crunch");
    uint64_t end = thread_cpu_ns() + 10000000, x = sink;

    while (thread_cpu_ns() < end) {
        for (int i = 0; i < 2000; i++)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
    }
    sink = x;
}

int
main(void)
{
    for (int i = 0; i < 20; i++) {
        PROBE_SCOPE("round");
        crunch();
    }
    return 0;
}
