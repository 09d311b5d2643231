/*
 * stream_throughput: what stream-mode tracing loses and costs, beside no tracing.
 *
 *   meson test -C build --benchmark -v stream_throughput
 *   build/bench/stream_throughput [SECONDS [THREADS [WORK]]]
 *
 * For each case (by default: one thread with WORK 0, the worst case: a thread doing
 * nothing but scopes; one thread with WORK 200; THREADS threads with WORK 0), the
 * same threads first run scopes for SECONDS (default 2) with tracing off, then for
 * SECONDS streaming to a file in $TMPDIR with the default options. Each scope wraps
 * WORK iterations of a spin. Printed side by side: ns per scope (the threads' CPU
 * time over their scopes, so a loaded machine slows both alike) off and streaming,
 * their ratio, events emitted, dropped (from the file's footer) and their share, the
 * stop's time (the conversion to a Chrome trace), the file's size and peak RSS.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>

#include "harness.h"

struct worker {
    pthread_t th;
    long long scopes;
    double cpu_ns;
};

static long work;
static int go, stop;

static double
thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *
worker(void *arg)
{
    struct worker *w = arg;

    while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
        ;
    double c0 = thread_cpu_ns();
    long long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        for (int i = 0; i < 1024; i++) {
            PROBE_SCOPE("stream_bench");
            for (volatile long k = 0; k < work; k++)
                ;
        }
        n += 1024;
    }
    w->cpu_ns = thread_cpu_ns() - c0;
    w->scopes = n;
    return NULL;
}

/* Run @threads workers for @secs; the total scopes, and CPU ns per scope. */
static long long
run_workers(int threads, double secs, double *ns_per_scope)
{
    struct worker w[16];
    long long scopes = 0;
    double cpu = 0;

    go = stop = 0;
    for (int i = 0; i < threads; i++)
        pthread_create(&w[i].th, NULL, worker, &w[i]);
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].th, NULL);
        scopes += w[i].scopes;
        cpu += w[i].cpu_ns;
    }
    *ns_per_scope = scopes ? cpu / (double)scopes : 0;
    return scopes;
}

static int
run(int threads, long wk, double secs, const char *path)
{
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;
    double off_ns, on_ns;
    probe_rusage ru;

    work = wk;
    probe_reset();
    (void)run_workers(threads, secs, &off_ns);
    o.mode = PROBE_TRACE_STREAM;
    o.path = path;
    int rc = probe_trace_start(&o);
    if (rc < 0) {
        fprintf(stderr, "stream_throughput: %s\n", probe_strerror(rc));
        return 1;
    }
    long long scopes = run_workers(threads, secs, &on_ns);
    uint64_t t0 = bench_now_ns();
    rc = probe_trace_stop();
    uint64_t t1 = bench_now_ns();
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
    struct stat sb = {0};
    stat(path, &sb);
    unlink(path);
    probe_getrusage(PROBE_RUSAGE_SELF, &ru);
    unsigned long long emitted = 2ull * (unsigned long long)scopes;
    printf("| %d | %ld | %.1f | %.1f | %.2fx | %llu | %llu | %.3f%% | %.1f s | %.0f MiB | %.0f MiB |\n",
           threads, wk, off_ns, on_ns, off_ns > 0 ? on_ns / off_ns : 0, emitted, dropped,
           100.0 * (double)dropped / (double)(emitted ? emitted : 1), (double)(t1 - t0) / 1e9,
           (double)sb.st_size / 1048576.0, (double)ru.max_rss_bytes / 1048576.0);
    fflush(stdout);
    return 0;
}

int
main(int argc, char **argv)
{
    char path[256], cpu[128];
    const char *tmp = getenv("TMPDIR");
    double load[3] = {0};

    double secs = argc > 1 ? atof(argv[1]) : 2;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    long w = argc > 3 ? atol(argv[3]) : -1;
    if (threads < 1 || threads > 16)
        threads = 2;
    if (secs <= 0)
        secs = 2;
    snprintf(path, sizeof(path), "%s/probe-stream-bench-%ld.json", tmp ? tmp : "/tmp",
             (long)getpid());
    getloadavg(load, 3);
    printf("%s, %ld CPUs, load average %.2f; %.1f s per run\n\n",
           bench_cpu_model(cpu, sizeof(cpu)), sysconf(_SC_NPROCESSORS_ONLN), load[0], secs);
    printf("| threads | work | ns/scope off | ns/scope stream | ratio | events | dropped "
           "| dropped %% | stop | file | peak RSS |\n"
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    int rc = 0;
    if (w >= 0) {
        rc = run(threads, w, secs, path);
    } else {
        rc |= run(1, 0, secs, path);
        rc |= run(1, 200, secs, path);
        rc |= run(threads, 0, secs, path);
    }
    return rc;
}
