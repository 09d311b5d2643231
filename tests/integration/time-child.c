/* A program for the probe time tests to run: it does one thing whose resource
 * usage is known.
 *
 *   time-child spin MS     burn MS milliseconds of user CPU time, then exit 0
 *   time-child touch MIB   write to every page of MIB MiB of fresh memory, exit 0
 *   time-child raise SIG   raise signal number SIG; exit 0 if that returns
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t
cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Arithmetic between clock reads, so that nearly all of the time is user time. */
static int
spin(long ms)
{
    volatile uint64_t sink = 0;
    uint64_t until = cpu_ns() + (uint64_t)ms * 1000000u;

    while (cpu_ns() < until) {
        for (uint64_t i = 0; i < 200000; i++)
            sink = sink * 6364136223846793005u + i;
    }
    return 0;
}

static int
touch(long mib)
{
    size_t len = (size_t)mib << 20;
    long page = sysconf(_SC_PAGESIZE);
    volatile unsigned char *p = malloc(len);

    if (!p) {
        perror("time-child: malloc");
        return 1;
    }
    for (size_t i = 0; i < len; i += (size_t)page)
        p[i] = 1;
    free((void *)p);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fputs("usage: time-child spin MS | touch MIB | raise SIG\n", stderr);
        return 2;
    }

    long n = strtol(argv[2], NULL, 10);

    if (strcmp(argv[1], "spin") == 0)
        return spin(n);
    if (strcmp(argv[1], "touch") == 0)
        return touch(n);
    if (strcmp(argv[1], "raise") == 0) {
        raise((int)n);
        return 0;
    }
    fprintf(stderr, "time-child: unknown mode '%s'\n", argv[1]);
    return 2;
}
