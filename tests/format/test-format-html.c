/*
 * Writes an "html" report to argv[1] for check_html.py, which checks the page in a
 * real browser. A short sampler run (frame pointers, exported symbols, as the tree
 * test) with a hot and a cold loop, each in a scope; the hot one gets about 9 times
 * the CPU time, measured, so the order in the page does not hang on timing.
 * A name with "</script>" in it checks the page's escaping. With "--env" instead of
 * a path it writes nothing itself: PROBE_OUTPUT and PROBE_FORMAT=html do, at exit.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <probe/probe.h>
#include <probe/sampler.h>

static volatile uint64_t sink;

/* Exported (not static) so that dladdr() names them. */
void html_test_hot(uint64_t ns);
void html_test_cold(uint64_t ns);

static uint64_t
cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spin until @ns of this thread's CPU time has passed. */
static void
spin(uint64_t ns)
{
    uint64_t end = cpu_ns() + ns;
    uint64_t x = sink;

    while (cpu_ns() < end)
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005u + (uint64_t)i;
    sink = x;
}

__attribute__((noinline)) void
html_test_hot(uint64_t ns)
{
    PROBE_SCOPE("html_hot");
    spin(ns);
}

__attribute__((noinline)) void
html_test_cold(uint64_t ns)
{
    PROBE_SCOPE("html_cold");
    spin(ns);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT.html\n", argv[0]);
        return 2;
    }
    probe_thread_name("html-main");
    if (probe_sampler_start(NULL) != 0)
        return 1;
    {
        PROBE_SCOPE("html_main");
        /* Rounds, so that both loops are sampled across the whole run. */
        for (int i = 0; i < 20; i++) {
            html_test_hot(9000000);
            html_test_cold(1000000);
        }
        PROBE_SCOPE("</script><b>x</b>");
    }
    if (probe_sampler_stop() != 0)
        return 1;
    if (strcmp(argv[1], "--env") == 0)
        return 0;

    int r = probe_report_write(argv[1], "html");

    if (r < 0) {
        fprintf(stderr, "probe_report_write: %s\n", probe_strerror(r));
        return 1;
    }
    return 0;
}
