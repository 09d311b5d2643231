/* The worst case for the stream writer: one thread doing nothing but scopes, for
 * check_stream_long.py. stream-long PATH SECONDS
 * Streams with the default options to PATH while the main thread runs scopes for
 * SECONDS of wall time, then stops (the conversion writes PATH). Prints "scopes N"
 * (each two events), "run_ns", and "writer_wait_ns": how long the writer thread
 * waited for a CPU meanwhile (run_delay in /proc/self/task/TID/schedstat; -1 when
 * the kernel does not say). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>

static long long
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* The summed run_delay of every thread but this one (the writer is the only other). */
static long long
others_wait_ns(void)
{
    char path[300], self[32];
    long long sum = 0;
    int found = 0;
    DIR *d = opendir("/proc/self/task");

    if (!d)
        return -1;
    snprintf(self, sizeof(self), "%ld", (long)getpid());
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, self) == 0)
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long run, wait;
        if (f && fscanf(f, "%llu %llu", &run, &wait) == 2) {
            sum += (long long)wait;
            found = 1;
        }
        if (f)
            fclose(f);
    }
    closedir(d);
    return found ? sum : -1;
}

static void
scope(void)
{
    PROBE_SCOPE("long_scope");
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: stream-long PATH SECONDS\n");
        return 2;
    }
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;
    o.mode = PROBE_TRACE_STREAM;
    o.path = argv[1];
    int rc = probe_trace_start(&o);
    if (rc < 0) {
        printf("start %d %s\n", rc, probe_strerror(rc));
        return 3;
    }
    long long w0 = others_wait_ns();
    long long t0 = now_ns(), until = t0 + (long long)(atof(argv[2]) * 1e9), t1;
    long long scopes = 0;
    do {
        for (int i = 0; i < 4096; i++)
            scope();
        scopes += 4096;
    } while ((t1 = now_ns()) < until);
    long long w1 = others_wait_ns();
    rc = probe_trace_stop();
    if (rc < 0) {
        printf("stop %d %s\n", rc, probe_strerror(rc));
        return 5;
    }
    printf("scopes %lld\nrun_ns %lld\nwriter_wait_ns %lld\n", scopes, t1 - t0,
           w0 < 0 || w1 < 0 ? -1 : w1 - w0);
    return 0;
}
