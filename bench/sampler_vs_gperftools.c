/*
 * sampler_vs_gperftools: libprobe's statistical sampler and gperftools' CPU profiler
 * side by side, at the same requested rate (1 kHz), on the same CPU-bound workload.
 *
 *   meson test -C build --benchmark -v sampler_vs_gperftools
 *   build/bench/sampler_vs_gperftools [ROUNDS [MS_PER_RUN]]
 *
 * gperftools reads its environment when it is loaded, so every run is a fresh child:
 * the bench re-executes itself as `--child VARIANT THREADS ITERATIONS`, with
 * CPUPROFILE_FREQUENCY=1000 and CPUPROFILE_PER_THREAD_TIMERS=1 in the environment of
 * the gperftools variant. Three variants (unprofiled, libprobe, gperftools) on 1 and
 * on 2 worker threads run once per round, the order rotating from round to round;
 * figures are medians over rounds.
 *
 * Each child measures the workload's CPU time (the sum of the workers' thread CPU
 * time around workload(): the profilers' signal handlers run on those threads, so it
 * includes their per-sample cost), and the process CPU time and the wall time from
 * just before the profiler starts to the workers' join (so they include the start).
 * Its profiler reports a CPU time for that window:
 *   - libprobe: the sum of cpu_ns over the snapshot's samples (weight x interval,
 *     where a sample's weight is 1 + the timer overruns merged into its signal);
 *   - gperftools: sum(count) x period from its profile file (one count per signal).
 * Overhead is the variant's median over the unprofiled median, as a ratio;
 * "reported / measured" divides the reported CPU time by the window's process CPU.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gperftools/profiler.h>

#include <probe/probe.h>

#include "harness.h"

extern char **environ;

enum variant { V_NONE, V_PROBE, V_GPERF, V_COUNT };

static const char *const variant_names[V_COUNT] = {"none", "libprobe", "gperftools"};
static const char *const variant_labels[V_COUNT] = {
    "unprofiled", "libprobe sampler, 1 ms CPU", "gperftools, CPUPROFILE_FREQUENCY=1000"};

#define MAX_THREADS 2

/* What one child run measured and what its profiler reported. */
struct run {
    double work_ns;     /* the workers' CPU time in workload(), summed */
    double cpu_ns;      /* process CPU time over the window */
    double wall_ns;     /* wall time over the window */
    double reported_ns; /* CPU time the profiler reports (0 when unprofiled) */
    double signals;     /* timer signals the profiler handled */
};

static volatile uint64_t sink;

/* The workload of sampler_overhead.c: an integer hash loop, no memory traffic. */
__attribute__((noinline)) static void
workload(uint64_t n)
{
    uint64_t x = sink;
    for (uint64_t i = 0; i < n; i++)
        x = x * 6364136223846793005u + i;
    sink = x;
}

static uint64_t
cpu_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the child: one run of one variant ------------------------------------------ */

struct worker {
    pthread_t thread;
    enum variant v;
    uint64_t n;
    uint64_t cpu_ns; /* out: this thread's CPU time in workload() */
};

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    if (w->v == V_PROBE)
        probe_thread_name("worker"); /* known to libprobe: it arms this thread's timer */
    else if (w->v == V_GPERF)
        ProfilerRegisterThread(); /* per-thread timers: this thread's own timer */
    uint64_t t0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    workload(w->n);
    w->cpu_ns = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
    return NULL;
}

/* The CPU time in a gperftools profile: sum(count) x period. The legacy format is
 * uintptr_t words: a header 0, 3, 0, period_us, 0; records count, npcs, pcs...; a
 * trailer 0, 1, 0; then /proc/self/maps as text. Returns 0 or -1 (malformed). */
static int
gperf_parse(const char *path, double *ret_ns, double *ret_signals)
{
    FILE *f = fopen(path, "rb");
    uintptr_t hdr[5], rec[2], pc, sum = 0;
    int rc = -1;

    if (!f)
        return -1;
    if (fread(hdr, sizeof(uintptr_t), 5, f) != 5 || hdr[0] != 0 || hdr[1] != 3 ||
        hdr[2] != 0 || hdr[3] == 0 || hdr[4] != 0)
        goto out;
    for (;;) {
        if (fread(rec, sizeof(uintptr_t), 2, f) != 2)
            goto out;
        if (rec[0] == 0) { /* the trailer: 0, 1, 0 */
            if (rec[1] == 1 && fread(&pc, sizeof(pc), 1, f) == 1 && pc == 0)
                break;
            goto out;
        }
        sum += rec[0];
        for (uintptr_t i = 0; i < rec[1]; i++)
            if (fread(&pc, sizeof(pc), 1, f) != 1)
                goto out;
    }
    *ret_ns = (double)sum * (double)hdr[3] * 1e3;
    *ret_signals = (double)sum;
    rc = 0;
out:
    fclose(f);
    return rc;
}

static int
child_run(enum variant v, unsigned nthreads, uint64_t n)
{
    struct worker w[MAX_THREADS];
    struct run r = {0};
    char path[] = "/tmp/sampler_vs_gperftools.XXXXXX";

    if (v == V_GPERF) {
        int fd = mkstemp(path);
        if (fd < 0) {
            perror("sampler_vs_gperftools: mkstemp");
            return 1;
        }
        close(fd);
    }

    uint64_t c0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID), t0 = bench_now_ns();
    if (v == V_PROBE) {
        probe_sampler_options o = PROBE_SAMPLER_OPTIONS_INIT;
        o.interval_ns = 1000000; /* 1 ms, CPU mode */
        int rc = probe_sampler_start(&o);
        if (rc < 0) {
            fprintf(stderr, "sampler_vs_gperftools: probe_sampler_start: %s\n",
                    probe_strerror(rc));
            return 1;
        }
    } else if (v == V_GPERF && !ProfilerStart(path)) {
        fprintf(stderr, "sampler_vs_gperftools: ProfilerStart(%s) failed\n", path);
        unlink(path);
        return 1;
    }
    for (unsigned i = 0; i < nthreads; i++) {
        w[i].v = v;
        w[i].n = n;
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "sampler_vs_gperftools: pthread_create failed\n");
            return 1;
        }
    }
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_join(w[i].thread, NULL);
        r.work_ns += (double)w[i].cpu_ns;
    }
    r.cpu_ns = (double)(cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - c0);
    r.wall_ns = (double)(bench_now_ns() - t0);

    if (v == V_PROBE) {
        probe_sampler_stop();
        probe_snapshot *snap = probe_snapshot_take();
        if (!snap) {
            fprintf(stderr, "sampler_vs_gperftools: probe_snapshot_take failed\n");
            return 1;
        }
        for (size_t i = 0; i < probe_snapshot_sample_count(snap); i++)
            r.reported_ns += (double)probe_snapshot_sample(snap, i)->cpu_ns;
        r.signals = (double)probe_snapshot_sampler_info(snap)->signals;
        probe_snapshot_free(snap);
    } else if (v == V_GPERF) {
        /* ProfilerStop() writes the profile, and a "PROFILE: interrupts/..." line to
         * stderr that would interleave with the table: send that to /dev/null. */
        int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);
        if (saved >= 0 && null >= 0)
            dup2(null, STDERR_FILENO);
        ProfilerStop();
        if (saved >= 0 && null >= 0)
            dup2(saved, STDERR_FILENO);
        if (null >= 0)
            close(null);
        if (saved >= 0)
            close(saved);
        int rc = gperf_parse(path, &r.reported_ns, &r.signals);
        unlink(path);
        if (rc < 0) {
            fprintf(stderr, "sampler_vs_gperftools: cannot parse the gperftools profile\n");
            return 1;
        }
    }
    printf("%.0f %.0f %.0f %.0f %.0f\n", r.work_ns, r.cpu_ns, r.wall_ns, r.reported_ns,
           r.signals);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- the parent: spawn the children, collect, print ------------------------------ */

/* The environment of a child: ours without CPUPROFILE* (a CPUPROFILE would start
 * gperftools at load, in every variant), plus gperftools' settings for V_GPERF. */
static char **
child_env(enum variant v)
{
    static char freq[] = "CPUPROFILE_FREQUENCY=1000";
    static char per_thread[] = "CPUPROFILE_PER_THREAD_TIMERS=1";
    size_t n = 0, k = 0;

    while (environ[n])
        n++;
    char **env = calloc(n + 3, sizeof(*env));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "CPUPROFILE", 10) != 0)
            env[k++] = environ[i];
    if (v == V_GPERF) {
        env[k++] = freq;
        env[k++] = per_thread;
    }
    env[k] = NULL;
    return env;
}

static int
spawn_run(const char *self, enum variant v, unsigned nthreads, uint64_t n, struct run *out)
{
    char threads_arg[16], n_arg[32];
    char *argv[] = {(char *)self, (char *)"--child", (char *)variant_names[v], threads_arg,
                    n_arg, NULL};
    posix_spawn_file_actions_t fa;
    int fds[2], status = 0;
    pid_t pid;
    struct run r;

    snprintf(threads_arg, sizeof(threads_arg), "%u", nthreads);
    snprintf(n_arg, sizeof(n_arg), "%llu", (unsigned long long)n);
    char **env = child_env(v);
    if (!env || pipe(fds) < 0) {
        free(env);
        return -1;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    int rc = posix_spawn(&pid, self, &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        errno = rc;
        return -1;
    }
    FILE *f = fdopen(fds[0], "r");
    int got = f ? fscanf(f, "%lf %lf %lf %lf %lf", &r.work_ns, &r.cpu_ns, &r.wall_ns,
                         &r.reported_ns, &r.signals)
                : 0;
    if (f)
        fclose(f);
    else
        close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got != 5 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    *out = r;
    return 0;
}

/* Iterations for about @ms of one thread's CPU. */
static uint64_t
calibrate(double ms)
{
    uint64_t n = 1000000, per = 0;

    for (int pass = 0; pass < 2; pass++) { /* the first pass warms up */
        uint64_t t0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
        workload(n);
        per = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
        if (per < 20000000 && pass == 0)
            n = (uint64_t)((double)n * 20e6 / (double)(per ? per : 1));
    }
    return (uint64_t)((double)n * ms * 1e6 / (double)(per ? per : 1));
}

int
main(int argc, char **argv)
{
    /* gperftools' profile handler can arm a process-wide ITIMER_PROF when the library
     * is loaded (its signal ignored until ProfilerStart; 2.10 on Debian does not).
     * Make sure no process but the gperftools child has a gperftools timer. */
    if (!(argc == 5 && strcmp(argv[1], "--child") == 0 &&
          strcmp(argv[2], variant_names[V_GPERF]) == 0)) {
        struct itimerval off;
        memset(&off, 0, sizeof(off));
        setitimer(ITIMER_PROF, &off, NULL);
    }
    if (argc == 5 && strcmp(argv[1], "--child") == 0) {
        unsigned nthreads = (unsigned)atoi(argv[3]);
        uint64_t n = strtoull(argv[4], NULL, 10);
        for (int v = 0; v < V_COUNT; v++)
            if (strcmp(argv[2], variant_names[v]) == 0 && nthreads >= 1 &&
                nthreads <= MAX_THREADS)
                return child_run((enum variant)v, nthreads, n);
        fprintf(stderr, "sampler_vs_gperftools: bad child arguments\n");
        return 2;
    }

    unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 7;
    double ms = argc > 2 ? atof(argv[2]) : 400;
    static double work[MAX_THREADS][V_COUNT][BENCH_MAX_ROUNDS];
    static double cpu[MAX_THREADS][V_COUNT][BENCH_MAX_ROUNDS];
    static double wall[MAX_THREADS][V_COUNT][BENCH_MAX_ROUNDS];
    static double truth[MAX_THREADS][V_COUNT][BENCH_MAX_ROUNDS];
    static double rate[MAX_THREADS][V_COUNT][BENCH_MAX_ROUNDS];
    char self[4096], model[128];

    if (rounds < 1 || rounds > BENCH_MAX_ROUNDS)
        rounds = 7;
    if (!(ms > 0))
        ms = 400;
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0) {
        perror("sampler_vs_gperftools: readlink /proc/self/exe");
        return 1;
    }
    self[len] = '\0';
    uint64_t n = calibrate(ms);

    for (unsigned r = 0; r < rounds; r++) {
        for (unsigned t = 0; t < MAX_THREADS; t++) {
            for (unsigned k = 0; k < V_COUNT; k++) {
                enum variant v = (enum variant)((r + k) % V_COUNT);
                struct run run;
                if (spawn_run(self, v, t + 1, n, &run) < 0) {
                    fprintf(stderr, "sampler_vs_gperftools: the %s run on %u thread(s) "
                            "failed\n", variant_names[v], t + 1);
                    return 1;
                }
                work[t][v][r] = run.work_ns;
                cpu[t][v][r] = run.cpu_ns;
                wall[t][v][r] = run.wall_ns;
                truth[t][v][r] = run.reported_ns / run.cpu_ns;
                rate[t][v][r] = run.signals / (run.cpu_ns / 1e9);
            }
        }
    }

    printf("CPU: %s; %u rounds, %.0f ms of CPU per worker thread per run; every run a "
           "fresh process; medians.\n\n", bench_cpu_model(model, sizeof(model)), rounds,
           ms);
    printf("| variant | threads | workload CPU ms (median) | overhead (workload CPU) | "
           "overhead (process CPU, start incl.) | overhead (wall) | "
           "reported ÷ measured CPU | signals / CPU s |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (unsigned t = 0; t < MAX_THREADS; t++) {
        double work0 = bench_median(work[t][V_NONE], rounds);
        double cpu0 = bench_median(cpu[t][V_NONE], rounds);
        double wall0 = bench_median(wall[t][V_NONE], rounds);
        for (unsigned v = 0; v < V_COUNT; v++) {
            double k = bench_median(work[t][v], rounds);
            printf("| %s | %u | %.1f | %.4f× | %.4f× | %.4f× | ", variant_labels[v], t + 1,
                   k / 1e6, k / work0, bench_median(cpu[t][v], rounds) / cpu0,
                   bench_median(wall[t][v], rounds) / wall0);
            if (v == V_NONE)
                printf("— | — |\n");
            else
                printf("%.3f | %.0f |\n", bench_median(truth[t][v], rounds),
                       bench_median(rate[t][v], rounds));
        }
    }
    printf("\nreported ÷ measured CPU, min–max over rounds:");
    for (unsigned t = 0; t < MAX_THREADS; t++)
        for (unsigned v = V_PROBE; v < V_COUNT; v++)
            printf("%s %s %uT %.3f–%.3f", v == V_PROBE && t == 0 ? "" : ";",
                   variant_names[v], t + 1, bench_quantile(truth[t][v], rounds, 0),
                   bench_quantile(truth[t][v], rounds, 1));
    printf(".\nBoth ask for 1000 signals per CPU second; a profiler that counts each "
           "signal as one period\nreports signals/s ÷ 1000 of the CPU time it saw.\n");
    return 0;
}
