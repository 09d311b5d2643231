/*
 * snapshot_threads: what statistics cost in memory, and what probe_snapshot_take()
 * costs in time, with many threads that each touched many sites.
 *
 *   meson test -C build --benchmark -v snapshot_threads
 *   build/bench/snapshot_threads [THREADS [SITES [ROUNDS]]]   (default 100 10000 5)
 *
 * THREADS threads each enter SITES distinct scope sites (bench/loops_sites.c) a few
 * times, then wait, alive. Reported:
 *   - resident memory added per (thread, site) pair: the growth of RSS from before
 *     the threads started to when all of them had recorded, over THREADS x SITES
 *     (it includes each thread's stack and state, a few hundred KB per thread);
 *   - probe_snapshot_take(), median and max ms over ROUNDS snapshots (target: under
 *     100 ms for 100 x 10,000);
 *   - while the snapshots run, another thread creates and joins short-lived threads
 *     (each runs one scope) in a loop: how many it got through during the snapshots.
 *     A snapshot that holds the registry lock across its copy stalls them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>
#include <probe/report.h>

#include "harness.h"
#include "loops.h"

#define TARGET_SNAPSHOT_MS 100.0
#define TOUCHES 4 /* calls of each site per thread */

static unsigned nsites;
static pthread_barrier_t recorded, quit;

static void *
worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < TOUCHES; i++)
        loops_first_touch(nsites);
    pthread_barrier_wait(&recorded);
    pthread_barrier_wait(&quit);
    return NULL;
}

static double
thread_cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long
rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int churn_stop;
static unsigned long churned;

static void *
short_lived(void *arg)
{
    (void)arg;
    PROBE_SCOPE("snapshot_churn");
    return NULL;
}

/* Threads started and joined one after another until told to stop. */
static void *
churn(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&churn_stop, __ATOMIC_ACQUIRE)) {
        pthread_t t;
        if (pthread_create(&t, NULL, short_lived, NULL) != 0)
            break;
        pthread_join(t, NULL);
        __atomic_add_fetch(&churned, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    unsigned nthreads = argc > 1 ? (unsigned)atoi(argv[1]) : 100;
    unsigned rounds = argc > 3 ? (unsigned)atoi(argv[3]) : 5;
    char cpu[128];

    nsites = argc > 2 ? (unsigned)atoi(argv[2]) : 10000;
    if (nsites > LOOPS_SITES)
        nsites = LOOPS_SITES;
    if (!nthreads || !rounds || rounds > BENCH_MAX_ROUNDS) {
        fprintf(stderr, "usage: snapshot_threads [THREADS [SITES [ROUNDS<=%d]]]\n",
                BENCH_MAX_ROUNDS);
        return 2;
    }
    probe_start();
    pthread_t *th = calloc(nthreads, sizeof(*th));
    if (!th)
        return 1;
    pthread_barrier_init(&recorded, NULL, nthreads + 1);
    pthread_barrier_init(&quit, NULL, nthreads + 1);
    long rss0 = rss_kb();
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&th[i], NULL, worker, NULL) != 0) {
            fprintf(stderr, "snapshot_threads: pthread_create failed at %u\n", i);
            return 1;
        }
    }
    pthread_barrier_wait(&recorded);
    long rss1 = rss_kb();

    pthread_t churner;
    pthread_create(&churner, NULL, churn, NULL);
    double ms[BENCH_MAX_ROUNDS], cpu_ms[BENCH_MAX_ROUNDS];
    unsigned long during = 0;
    uint64_t calls = 0;
    for (unsigned r = 0; r < rounds; r++) {
        unsigned long c0 = __atomic_load_n(&churned, __ATOMIC_RELAXED);
        double c0_ms = thread_cpu_ms();
        uint64_t t0 = bench_now_ns();
        probe_snapshot *s = probe_snapshot_take();
        uint64_t t1 = bench_now_ns();
        cpu_ms[r] = thread_cpu_ms() - c0_ms;
        during += __atomic_load_n(&churned, __ATOMIC_RELAXED) - c0;
        if (!s) {
            fprintf(stderr, "snapshot_threads: probe_snapshot_take failed\n");
            return 1;
        }
        ms[r] = (double)(t1 - t0) / 1e6;
        calls = 0;
        for (size_t i = 0; i < probe_snapshot_site_count(s); i++) {
            const probe_site_info *si = probe_snapshot_site(s, i);
            if (strncmp(si->name, "site", 4) == 0)
                calls += si->calls;
        }
        probe_snapshot_free(s);
    }
    __atomic_store_n(&churn_stop, 1, __ATOMIC_RELEASE);
    pthread_join(churner, NULL);
    pthread_barrier_wait(&quit);
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);

    double med = bench_median(ms, rounds), max = bench_quantile(ms, rounds, 1.0), sum = 0;
    for (unsigned r = 0; r < rounds; r++)
        sum += ms[r];
    double pairs = (double)nthreads * nsites;
    printf("snapshot_threads: %u threads x %u sites, %d calls each, %s\n\n", nthreads,
           nsites, TOUCHES, bench_cpu_model(cpu, sizeof(cpu)));
    printf("| measure | value | target | met? |\n|---|---:|---|---|\n");
    if (rss0 >= 0 && rss1 >= 0)
        printf("| RSS added per (thread, site) | %.0f B | <= 256 B + thread overhead | — |\n",
               (double)(rss1 - rss0) * 1024.0 / pairs);
    printf("| probe_snapshot_take, median of %u | %.1f ms | < %.0f ms | %s |\n", rounds, med,
           TARGET_SNAPSHOT_MS, med < TARGET_SNAPSHOT_MS ? "yes" : "MISSED");
    printf("| probe_snapshot_take, max | %.1f ms | — | — |\n", max);
    printf("| probe_snapshot_take, CPU time of the calling thread, median | %.1f ms | — | — |\n",
           bench_median(cpu_ms, rounds));
    printf("| per (thread, site) pair | %.0f ns | — | — |\n", med * 1e6 / pairs);
    printf("| threads started and joined during the snapshots | %lu in %.0f ms | — | — |\n",
           during, sum);
    printf("\nCheck: the last snapshot counted %llu calls of the sites, expected %llu%s\n",
           (unsigned long long)calls, (unsigned long long)nthreads * nsites * TOUCHES,
           calls == (uint64_t)nthreads * nsites * TOUCHES ? "" : "  WARNING");
    free(th);
    return 0;
}
