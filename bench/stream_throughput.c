/*
 * stream_throughput: how many events per second the stream-mode trace writer puts
 * in the file, and what a traced scope costs while it runs.
 *
 *   meson test -C build --benchmark -v stream_throughput
 *   build/bench/stream_throughput [SCOPES_PER_THREAD [THREADS [WORK]]]
 *
 * Each thread runs SCOPES_PER_THREAD scopes (two events each) around WORK iterations
 * of a spin; the writer drains to a file in $TMPDIR. Reported: events emitted,
 * written and dropped, wall time, events written per second, and ns per scope.
 * WORK = 0 is the worst case (events come faster than any writer can format them);
 * the default WORK makes a scope cost a few hundred ns, as real code does.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>

#include "harness.h"

static long scopes_per_thread, work;

static void *
worker(void *arg)
{
    (void)arg;
    for (long i = 0; i < scopes_per_thread; i++) {
        PROBE_SCOPE("stream_bench");
        for (volatile long k = 0; k < work; k++)
            ;
    }
    return NULL;
}

static int
run(int threads, long w, const char *path)
{
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;
    pthread_t th[16];
    probe_rusage ru;

    work = w;
    o.mode = PROBE_TRACE_STREAM;
    o.path = path;
    probe_reset();
    int rc = probe_trace_start(&o);
    if (rc < 0) {
        fprintf(stderr, "stream_throughput: %s\n", probe_strerror(rc));
        return 1;
    }
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    uint64_t t1 = bench_now_ns();
    rc = probe_trace_stop();
    uint64_t t2 = bench_now_ns();
    if (rc < 0) {
        fprintf(stderr, "stream_throughput: stop: %s\n", probe_strerror(rc));
        return 1;
    }
    /* The file's footer has the dropped count; read it back. */
    FILE *f = fopen(path, "r");
    char tail[256] = "";
    unsigned long long dropped = 0;
    if (f && fseek(f, -200, SEEK_END) == 0) {
        size_t n = fread(tail, 1, sizeof(tail) - 1, f);
        tail[n] = '\0';
        const char *p = strstr(tail, "\"events_dropped\":");
        if (p)
            dropped = strtoull(p + 17, NULL, 10);
    }
    if (f)
        fclose(f);
    probe_getrusage(PROBE_RUSAGE_SELF, &ru);
    unsigned long long emitted = 2ull * (unsigned long long)scopes_per_thread * threads;
    unsigned long long written = emitted - dropped;
    double secs = (double)(t2 - t0) / 1e9;
    printf("| %d | %ld | %llu | %llu | %.1f%% | %.3f s | %.2f M/s | %.1f | %.1f MiB |\n",
           threads, w, emitted, written, 100.0 * (double)dropped / (double)emitted, secs,
           (double)written / secs / 1e6,
           (double)(t1 - t0) / (double)scopes_per_thread,
           (double)ru.max_rss_bytes / 1048576.0);
    return 0;
}

int
main(int argc, char **argv)
{
    char path[256];
    const char *tmp = getenv("TMPDIR");

    scopes_per_thread = argc > 1 ? atol(argv[1]) : 250000;
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    long w = argc > 3 ? atol(argv[3]) : -1;
    if (threads < 1 || threads > 16)
        threads = 4;
    snprintf(path, sizeof(path), "%s/probe-stream-bench-%ld.json", tmp ? tmp : "/tmp",
             (long)getpid());
    printf("| threads | work | events emitted | written | dropped | wall | written/s "
           "| ns per scope (per thread) | peak RSS |\n|---|---:|---:|---:|---:|---:|---:|"
           "---:|---:|\n");
    int rc = 0;
    if (w >= 0) {
        rc = run(threads, w, path);
    } else {
        rc |= run(threads, 0, path);
        rc |= run(threads, 200, path);
        rc |= run(threads, 2000, path);
    }
    unlink(path);
    return rc;
}
