/* A program with samples and no scope: about 100 ms of CPU in burn_samples_only()
 * under the sampler, then its "callgrind" profile to argv[1]. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <probe/probe.h>

static volatile uint64_t sink;

static uint64_t
cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((noinline)) void burn_samples_only(void);

__attribute__((noinline)) void
burn_samples_only(void)
{
    uint64_t end = cpu_ns() + 100000000u, x = sink;

    while (cpu_ns() < end)
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005ull + 1;
    sink = x;
}

int
main(int argc, char **argv)
{
    int r;

    if (argc != 2)
        return 2;
    if ((r = probe_sampler_start(NULL)) < 0) {
        fprintf(stderr, "probe_sampler_start: %s\n", probe_strerror(r));
        return r == PROBE_ENOTSUP ? 77 : 1;
    }
    burn_samples_only();
    probe_sampler_stop();
    if ((r = probe_report_write(argv[1], "callgrind")) < 0) {
        fprintf(stderr, "probe_report_write: %s\n", probe_strerror(r));
        return 1;
    }
    return 0;
}
