/* A program of about 100 us of CPU with one scope, run by test_first_contact.py with
 * PROBE_OUTPUT, PROBE_FORMAT, PROBE_TRACE and PROBE_FAULT: its report's elapsed time,
 * its main thread's name everywhere, the messages at exit. "crash" as argument makes
 * it die by SIGSEGV inside its scope. */
#include <signal.h>
#include <stdint.h>
#include <string.h>
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

int
main(int argc, char **argv)
{
    PROBE_SCOPE("tiny_work");
    uint64_t end = cpu_ns() + 100000;

    while (cpu_ns() < end)
        sink = sink * 6364136223846793005ull + 1;
    if (argc > 1 && strcmp(argv[1], "crash") == 0)
        raise(SIGSEGV);
    return 0;
}
