/* Dumps that must name static functions, complete while the loader or malloc is
 * locked, and leave the program's own calls alone. Built as users build: -O2, no
 * -rdynamic (test_stack.py runs one mode per test and checks the output). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>

#define CHECK(x)                                                                  \
    do {                                                                          \
        if (!(x)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
            exit(70);                                                             \
        }                                                                         \
    } while (0)

static volatile int *volatile null_ptr;
static volatile unsigned long sink;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, arg) == 0);
    CHECK(pthread_detach(t) == 0);
}

/* ---- a crash in a static function called from another --------------------------- */

static __attribute__((noinline)) void
crash_static(int n)
{
    sink += (unsigned long)n;
    *null_ptr = n; /* MARK: crash line */
    sink++;
}

static __attribute__((noinline)) void
outer_static(int n)
{
    crash_static(n + 1); /* MARK: call line */
    sink++;
}

static void *
static_worker(void *arg)
{
    (void)arg;
    probe_thread_name("crasher");
    outer_static(41);
    return NULL;
}

/* ---- a crash while the main thread sleeps --------------------------------------- */

static void *
crash_soon(void *arg)
{
    (void)arg;
    probe_thread_name("crasher");
    usleep(50000);
    outer_static(1);
    return NULL;
}

static void *
nap_forever(void *arg)
{
    (void)arg;
    for (;;)
        sleep(100);
    return NULL;
}

/* ---- a crash while another thread is inside dlopen() ---------------------------- */

static void *
load_slow(void *arg)
{
    CHECK(dlopen((const char *)arg, RTLD_NOW) != NULL);
    return NULL;
}

/* ---- calls that must not be disturbed by a dump -------------------------------- */

struct nap {
    double want, slept;
    int rc, err;
};

static void *
nap_thread(void *arg)
{
    struct nap *n = arg;
    struct timespec ts = {(time_t)n->want, (long)((n->want - (double)(time_t)n->want) * 1e9)};
    double t0 = now_s();
    n->rc = nanosleep(&ts, NULL);
    n->err = errno;
    n->slept = now_s() - t0;
    return NULL;
}

struct piped {
    int fd;
    ssize_t got;
    int err;
};

static void *
read_thread(void *arg)
{
    struct piped *p = arg;
    char c;
    p->got = read(p->fd, &c, 1);
    p->err = errno;
    return NULL;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cv_ready, cv_wakeups;

static void *
cond_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!cv_ready) {
        pthread_cond_wait(&cv, &mu);
        cv_wakeups++;
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void
block_usr1(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &s, NULL) == 0);
}

int
main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";

    probe_thread_name("main");
    if (strcmp(mode, "static-crash") == 0) {
        CHECK(probe_fault_enable(STDERR_FILENO, 1) == 0);
        spawn(static_worker, NULL);
        for (;;)
            pause();
    }
    if (strcmp(mode, "crash-while-sleeping") == 0) {
        /* The main thread sleeps, others nap: the crash must end the process by
         * its signal, with every thread dumped, not by main returning 0. */
        CHECK(probe_fault_enable(STDERR_FILENO, 1) == 0);
        for (int i = 0; i < 3; i++)
            spawn(nap_forever, NULL);
        spawn(crash_soon, NULL);
        PROBE_SCOPE("main_sleeps");
        sleep(3);
        printf("main returned\n");
        return 0;
    }
    if (strcmp(mode, "loader-crash") == 0 && argc > 2) {
        /* The library's constructor writes to this pipe, then sleeps 20 s. */
        int p[2];
        char c;
        char fdnum[16];
        CHECK(pipe(p) == 0);
        snprintf(fdnum, sizeof(fdnum), "%d", p[1]);
        CHECK(setenv("SLOW_CTOR_FD", fdnum, 1) == 0);
        CHECK(probe_fault_enable(STDERR_FILENO, 1) == 0);
        spawn(load_slow, argv[2]);
        CHECK(read(p[0], &c, 1) == 1); /* the loader lock is held from here */
        usleep(100000);                /* and the constructor sleeps */
        outer_static(2);
        return 0;
    }
    if (strcmp(mode, "malloc-crash") == 0) {
        /* glibc aborts inside free(), its arena lock held: the dump must not need
         * malloc. */
        CHECK(probe_fault_enable(STDERR_FILENO, 1) == 0);
        spawn(nap_forever, NULL);
        char *a = malloc(4096), *b = malloc(4096);
        CHECK(a && b);
        sink += (unsigned long)(uintptr_t)b;
        void *volatile again = a; /* hides the double free from the compiler */
        free(a);
        free(again); /* double free: abort() from malloc_printerr() */
        return 0;
    }
    if (strcmp(mode, "watchdog-sleep") == 0) {
        /* One long usleep under a 0.3 s repeating watchdog: dumps, and the sleep is
         * not cut short. */
        CHECK(probe_fault_dump_later(0.3, 1, STDOUT_FILENO, 0) == 0);
        double t0 = now_s();
        int rc;
        {
            PROBE_SCOPE("long_nap");
            rc = usleep(1100000);
        }
        double slept = now_s() - t0;
        probe_fault_cancel_dump_later();
        printf("usleep rc %d errno %d slept %.3f\n", rc, rc ? errno : 0, slept);
        return 0;
    }
    if (strcmp(mode, "watchdog-exit-sleep") == 0) {
        CHECK(probe_fault_dump_later(0.2, 0, STDOUT_FILENO, 1) == 0);
        PROBE_SCOPE("asleep");
        sleep(5);
        printf("main returned\n");
        return 0;
    }
    if (strcmp(mode, "usr1-undisturbed") == 0) {
        /* Threads in nanosleep, read and pthread_cond_wait while SIGUSR1 dumps (they
         * block SIGUSR1, as programs do, so that the dump runs on the main thread). */
        struct nap nap = {.want = 1.0};
        struct piped piped;
        int p[2];
        pthread_t t1, t2, t3;
        CHECK(pipe(p) == 0);
        piped.fd = p[0];
        CHECK(probe_fault_register(SIGUSR1, STDOUT_FILENO, 1, 0) == 0);
        block_usr1();
        CHECK(pthread_create(&t1, NULL, nap_thread, &nap) == 0);
        CHECK(pthread_create(&t2, NULL, read_thread, &piped) == 0);
        CHECK(pthread_create(&t3, NULL, cond_thread, NULL) == 0);
        {
            sigset_t s;
            sigemptyset(&s);
            sigaddset(&s, SIGUSR1);
            CHECK(pthread_sigmask(SIG_UNBLOCK, &s, NULL) == 0);
        }
        usleep(200000); /* all three are blocked in the kernel by now */
        for (int i = 0; i < 3; i++)
            CHECK(kill(getpid(), SIGUSR1) == 0);
        usleep(1200000);
        CHECK(write(p[1], "x", 1) == 1);
        pthread_mutex_lock(&mu);
        cv_ready = 1;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        pthread_join(t3, NULL);
        printf("nanosleep rc %d errno %d slept %.3f\n", nap.rc, nap.rc ? nap.err : 0,
               nap.slept);
        printf("read got %zd errno %d\n", piped.got, piped.got < 0 ? piped.err : 0);
        printf("cond wakeups %d\n", cv_wakeups);
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
