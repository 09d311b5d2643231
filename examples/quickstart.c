/*
 * quickstart: the smallest useful libprobe program. Copy it, then build it with
 *
 *     cc -O2 quickstart.c $(pkg-config --cflags --libs probe) -o quickstart
 *     ./quickstart          # a text report on stdout
 *     ./quickstart json     # the same report as JSON (any format name works)
 *
 * Recording starts when the program loads: no init call. Each macro is one static
 * site; sites that never run are still reported, with 0 calls.
 */
#include <probe/probe.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* A leaf: timed as a scope named after the function. */
static unsigned long
parse_record(const char *text, size_t len)
{
    PROBE_FUNC();
    unsigned long hash = 5381;

    for (size_t i = 0; i < len; i++)
        hash = hash * 33 + (unsigned char)text[i];
    PROBE_COUNT("bytes_parsed", len);   /* a counter: adds len each time */
    return hash;
}

/* A parent scope with two kinds of children: a function scope and a block scope. */
static unsigned long
load_records(int n)
{
    PROBE_FUNC();
    unsigned long sum = 0;
    char line[64];

    for (int i = 0; i < n; i++) {
        snprintf(line, sizeof(line), "record %d: %d", i, i * i);
        sum ^= parse_record(line, strlen(line));
        {
            PROBE_SCOPE("checksum");    /* times this block only */
            for (int k = 0; k < 200; k++)
                sum = sum * 31 + (unsigned long)k;
        }
    }
    if (n < 0) {
        PROBE_LINE();                   /* never runs: reported with 0 hits */
        fprintf(stderr, "negative count\n");
    } else {
        PROBE_LINE();                   /* runs once per call */
    }
    return sum;
}

/* A named worker thread: its scopes appear under its name in the report. */
static void *
worker(void *arg)
{
    unsigned long *result = arg;

    probe_thread_name("worker");
    for (int batch = 0; batch < 20; batch++) {
        PROBE_SCOPE("worker_batch");
        *result += load_records(50);
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    const char *format = argc > 1 ? argv[1] : "text";
    unsigned long from_worker = 0, from_main = 0;
    pthread_t thread;

    if (pthread_create(&thread, NULL, worker, &from_worker) != 0) {
        fprintf(stderr, "quickstart: cannot start the worker thread\n");
        return 1;
    }
    for (int round = 0; round < 10; round++)
        from_main += load_records(100);
    pthread_join(thread, NULL);

    /* Everything recorded, every thread (the worker has exited: nothing is lost). */
    fflush(stdout);
    int err = probe_report_fd(1, format);
    if (err < 0) {
        fprintf(stderr, "quickstart: report: %s\n", probe_strerror(err));
        return 1;
    }
    fprintf(stderr, "quickstart: checksums %lx %lx\n", from_main, from_worker);
    return 0;
}
