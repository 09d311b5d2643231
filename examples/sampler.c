/*
 * sampler: where the time goes in code nobody annotated. Copy it, then build it with
 *
 *     cc -O2 -g sampler.c $(pkg-config --cflags --libs probe) -o sampler
 *     ./sampler             # CPU time: a call tree per thread, like pyinstrument's
 *     ./sampler wall        # wall time: the time threads spend blocked shows too
 *     ./sampler cpu pprof > cpu.pb.gz    # any format: pprof, collapsed, json...
 *
 * The worker threads never call libprobe: the sampler finds every thread of the
 * process, and unwinds code built with or without frame pointers. One PROBE_SCOPE
 * shows where annotated code sits inside the native frames (in wall mode, where the
 * main thread's wait in it is sampled). GCC may name a specialised copy of a
 * function "hash_block.constprop.0": the names are the symbols as they are.
 */
#include <probe/probe.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile unsigned long sink;

/* noinline: each loop keeps a frame of its own at -O2. */
__attribute__((noinline)) static void
hash_block(unsigned long n)
{
    unsigned long x = sink;

    for (unsigned long i = 0; i < n; i++)
        x = x * 6364136223846793005u + i;
    sink = x;
}

__attribute__((noinline)) static void
sort_block(unsigned long n)
{
    unsigned long x = sink;

    for (unsigned long i = 0; i < n; i++)
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    sink = x;
}

__attribute__((noinline)) static void
wait_for_input(void)
{
    struct timespec ts = {0, 2000000}; /* 2 ms: time off the CPU */

    nanosleep(&ts, NULL);
}

/* Hashing takes about 3 times as long as sorting, then a short wait, each round. */
static void *
worker(void *arg)
{
    (void)arg;
    for (int round = 0; round < 150; round++) {
        hash_block(3000000);
        sort_block(350000);
        wait_for_input();
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    probe_sampler_options opts = PROBE_SAMPLER_OPTIONS_INIT;
    const char *format = argc > 2 ? argv[2] : "tree";
    pthread_t threads[2];
    int rc;

    if (argc > 1 && strcmp(argv[1], "wall") == 0)
        opts.mode = PROBE_SAMPLE_WALL;
    else if (argc > 1 && strcmp(argv[1], "cpu") != 0) {
        fprintf(stderr, "usage: %s [cpu|wall] [FORMAT]\n", argv[0]);
        return 2;
    }
    if ((rc = probe_sampler_start(&opts)) < 0) {
        fprintf(stderr, "sampler: %s\n", probe_strerror(rc));
        return 1;
    }
    {
        PROBE_SCOPE("run_workers"); /* shown inside main's frame in the tree */
        for (int i = 0; i < 2; i++)
            if (pthread_create(&threads[i], NULL, worker, NULL) != 0) {
                fprintf(stderr, "sampler: cannot start a worker thread\n");
                return 1;
            }
        for (int i = 0; i < 2; i++)
            pthread_join(threads[i], NULL);
    }
    probe_sampler_stop();
    if ((rc = probe_report_fd(1, format)) < 0) {
        fprintf(stderr, "sampler: report: %s\n", probe_strerror(rc));
        return 1;
    }
    return 0;
}
