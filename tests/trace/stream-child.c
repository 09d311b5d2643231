/* A program that records a known workload with the stream-mode timeline, for
 * check_stream.py: stream-child PATH THREADS SCOPES BUFFER_EVENTS [WORK]
 * Each thread (named "sw<i>") runs SCOPES outer scopes, each with one inner scope
 * and a counter update; WORK > 0 spins that many iterations inside each inner scope
 * so the writer keeps up. Prints "scopes N" and "max_rss BYTES" on success.
 * With PATH "-" it neither starts nor stops tracing: PROBE_TRACE does both.
 * SC_FORK=1: before stopping, fork a child that records and exits (it must leave
 * the parent's file alone). SC_RACE=1: the threads exit while the stream stops.
 * SC_RESET=1: probe_reset() before stopping. SC_FSIZE=BYTES: files cannot grow past
 * BYTES while the threads run (RLIMIT_FSIZE), so the writer's raw events hit the
 * limit; the limit is lifted before the stop, whose result is printed as "stop_rc". */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <probe/probe.h>

static long scopes, work;
static int race;
static pthread_barrier_t recorded;
static int release_threads;

static void
inner(void)
{
    PROBE_SCOPE("sc_inner");
    for (volatile long i = 0; i < work; i++)
        ;
}

static void *
worker(void *arg)
{
    char name[16];

    snprintf(name, sizeof(name), "sw%d", (int)(long)arg);
    probe_thread_name(name);
    for (long i = 0; i < scopes; i++) {
        PROBE_SCOPE("sc_outer");
        inner();
        PROBE_COUNT("sc_count", 1);
    }
    if (race) { /* wait for the stop to begin, then exit during it */
        pthread_barrier_wait(&recorded);
        while (!__atomic_load_n(&release_threads, __ATOMIC_ACQUIRE))
            ;
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: stream-child PATH THREADS SCOPES BUFFER_EVENTS [WORK]\n");
        return 2;
    }
    int nthreads = atoi(argv[2]);
    scopes = atol(argv[3]);
    work = argc > 5 ? atol(argv[5]) : 0;

    int from_env = strcmp(argv[1], "-") == 0;
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;
    o.mode = PROBE_TRACE_STREAM;
    o.path = argv[1];
    o.buffer_events = (size_t)atol(argv[4]);
    int rc = from_env ? 0 : probe_trace_start(&o);
    if (rc < 0) {
        printf("start %d %s\n", rc, probe_strerror(rc));
        return 3;
    }
    if (!from_env && probe_trace_start(&o) != PROBE_EBUSY) {
        printf("second start was not PROBE_EBUSY\n");
        return 4;
    }
    pthread_t th[64];
    struct rlimit fsize_was;
    const char *fsize = getenv("SC_FSIZE");
    if (fsize) {
        signal(SIGXFSZ, SIG_IGN);
        getrlimit(RLIMIT_FSIZE, &fsize_was);
        struct rlimit lim = {(rlim_t)atol(fsize), fsize_was.rlim_max};
        setrlimit(RLIMIT_FSIZE, &lim);
    }
    race = getenv("SC_RACE") != NULL;
    if (nthreads > 64)
        nthreads = 64;
    pthread_barrier_init(&recorded, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, worker, (void *)(long)i);
    if (race) {
        pthread_barrier_wait(&recorded);
        probe_trace_instant("sc_done");
        __atomic_store_n(&release_threads, 1, __ATOMIC_RELEASE);
        rc = probe_trace_stop();
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL); /* without SC_RACE they exit before the stop */
    if (!race) {
        if (getenv("SC_RESET"))
            probe_reset(); /* statistics only: the stream goes on */
        probe_trace_instant("sc_done");
        if (getenv("SC_FORK")) {
            pid_t pid = fork();
            if (pid == 0) {
                for (int i = 0; i < 100; i++)
                    inner();
                exit(0); /* atexit handlers run: they must not touch the file */
            }
            int status = 0;
            waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                printf("forked child failed: %#x\n", status);
                return 6;
            }
        }
        if (fsize)
            setrlimit(RLIMIT_FSIZE, &fsize_was);
        rc = from_env ? 0 : probe_trace_stop(); /* from PROBE_TRACE: stopped at exit */
        if (fsize) {
            printf("stop_rc %d\n", rc);
            rc = 0;
        }
    }
    if (rc < 0) {
        printf("stop %d %s\n", rc, probe_strerror(rc));
        return 5;
    }
    probe_rusage ru;
    probe_getrusage(PROBE_RUSAGE_SELF, &ru);
    printf("scopes %ld\nmax_rss %llu\n", scopes * nthreads,
           (unsigned long long)ru.max_rss_bytes);
    return 0;
}
