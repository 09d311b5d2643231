/* The fault suite's child: one behaviour per mode (argv[1]), run by test_fault.py,
 * which checks what it writes and how it ends. Linked with -rdynamic so that the
 * native backtraces name its functions. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>

/* Not static: -rdynamic names only exported functions in backtraces. */
void do_crash(void);
void *worker(void *arg);
void *enabler(void *arg);
void *bystander(void *arg);
void *deaf(void *arg);
void *waiter(void *arg);
int crash_in_worker(int fd, int all_threads);
void sleep_s(double s);

#define CHECK(expr)                                                                    \
    do {                                                                               \
        if (!(expr)) {                                                                 \
            fprintf(stderr, "fault-child: check failed: %s (line %d)\n", #expr,       \
                    __LINE__);                                                         \
            exit(3);                                                                   \
        }                                                                              \
    } while (0)

void
sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* ---- crashes ---------------------------------------------------------------------- */

__attribute__((noinline)) void crash_here(int *volatile p);
__attribute__((noinline)) void
crash_here(int *volatile p)
{
    *p = 42;
}

__attribute__((noinline)) int divide_here(int a, int b);
__attribute__((noinline)) int
divide_here(int a, int b)
{
    volatile int x = a, y = b;
    return x / y;
}

static volatile int recursion_limit = 1 << 30; /* far beyond any stack */

__attribute__((noinline)) int recurse_here(int n);
__attribute__((noinline)) int
recurse_here(int n)
{
    volatile char pad[512];
    PROBE_SCOPE("recursion");
    pad[0] = (char)n;
    pad[511] = (char)(n < recursion_limit ? recurse_here(n + 1) + pad[0] : 0);
    return pad[511];
}

static const char *mode;

static sigjmp_buf recover_point;

static void
recover_handler(int signum)
{
    (void)signum;
    siglongjmp(recover_point, 1);
}

void
do_crash(void)
{
    if (strcmp(mode, "fpe") == 0) {
        PROBE_SCOPE("dividing");
        printf("%d\n", divide_here(1, 0));
    } else if (strcmp(mode, "abort") == 0) {
        PROBE_SCOPE("aborting");
        abort();
    } else if (strncmp(mode, "overflow", 8) == 0) {
        recurse_here(0);
    } else {
        PROBE_SCOPE("outer_scope");
        {
            PROBE_SCOPE("inner_scope");
            crash_here(NULL);
        }
    }
}

void *
worker(void *arg)
{
    probe_thread_name("worker");
    if (arg)
        CHECK(probe_fault_enable(STDERR_FILENO, 1) == 0);
    do_crash();
    return NULL;
}

void *
enabler(void *arg)
{
    (void)arg;
    CHECK(probe_fault_enable(STDERR_FILENO, 1) == 0);
    return NULL;
}

/* A thread that never uses libprobe. */
void *
bystander(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

/* A libprobe thread that blocks every signal and keeps running: it cannot answer
 * (a blocked one would be read without a signal). */
void *
deaf(void *arg)
{
    static volatile unsigned long spins;
    sigset_t all;
    (void)arg;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    probe_thread_name("deaf");
    PROBE_SCOPE("deaf_wait");
    for (;;)
        spins++;
    return NULL;
}

/* A libprobe thread waiting in two scopes. */
void *
waiter(void *arg)
{
    (void)arg;
    probe_thread_name("waiter");
    PROBE_SCOPE("waiter_outer");
    {
        PROBE_SCOPE("waiter_inner");
        for (;;)
            pause();
    }
    return NULL;
}

static void
spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, arg) == 0);
    pthread_detach(t);
}

/* Crash in a worker thread while main waits in a scope. */
int
crash_in_worker(int fd, int all_threads)
{
    pthread_t t;

    CHECK(probe_fault_enable(fd, all_threads) == 0);
    CHECK(probe_fault_is_enabled() == 1);
    spawn(bystander, NULL);
    sleep_s(0.05);
    PROBE_SCOPE("main_wait");
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
    pthread_join(t, NULL);
    return 0;
}

/* ---- user signals ------------------------------------------------------------------- */

static volatile sig_atomic_t previous_ran;

static void
previous_handler(int sig)
{
    (void)sig;
    previous_ran = 1;
}

/* ---- the watchdog ------------------------------------------------------------------- */

static int
count_in_file(int fd, const char *needle)
{
    static char buf[1 << 20];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    int count = 0;

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    for (char *p = buf; (p = strstr(p, needle)); p++)
        count++;
    return count;
}

static int
watchdog_repeat(const char *path, int times)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

    CHECK(fd >= 0);
    PROBE_SCOPE("busy_loop");
    CHECK(probe_fault_dump_later(0.05, 1, fd, 0) == 0);
    for (int i = 0; i < 200 && count_in_file(fd, "Timeout:") < times; i++)
        sleep_s(0.02);
    probe_fault_cancel_dump_later();
    int seen = count_in_file(fd, "Timeout:");
    sleep_s(0.2); /* nothing more after the cancel */
    CHECK(count_in_file(fd, "Timeout:") == seen);
    printf("dumps: %d\n", seen);
    return 0;
}

static double
mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Arm the watchdog for @timeout s, and note (on stdout, for test_fault.py) when the
 * arming before, taken at *@armed_at, was not followed by this call within its
 * timeout: its dump was then due, the child having been stalled (a loaded machine)
 * rather than the watchdog wrong. @timeout 0 cancels instead. */
static void
watchdog_next(double timeout, double *armed_at, double *prev_timeout)
{
    double start = mono_s();

    if (timeout > 0)
        CHECK(probe_fault_dump_later(timeout, 0, STDOUT_FILENO, 0) == 0);
    else
        probe_fault_cancel_dump_later();
    double done = mono_s();
    if (*prev_timeout > 0 && done - *armed_at >= *prev_timeout)
        printf("stalled %.3f s past an arming of %.3f s\n", done - *armed_at,
               *prev_timeout);
    *armed_at = start;
    *prev_timeout = timeout;
}

/* Cancel twice, re-arm faster than the timeout (for longer than one timeout), cancel
 * and wait past the timeout: no dump at all. Dumps go to stdout without exiting,
 * so that a dump after a stall is seen together with the stall. */
static int
watchdog_cancel(void)
{
    double armed_at = 0, prev = 0;

    watchdog_next(0.2, &armed_at, &prev);
    watchdog_next(0, &armed_at, &prev);
    probe_fault_cancel_dump_later();
    /* Progress: re-arming keeps pushing the deadline back. */
    for (int i = 0; i < 8; i++) {
        watchdog_next(0.2, &armed_at, &prev);
        sleep_s(0.05);
    }
    watchdog_next(0, &armed_at, &prev);
    sleep_s(0.3);
    printf("no dump\n");
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fault-child MODE [ARG]\n");
        return 2;
    }
    mode = argv[1];
    probe_thread_name("main");
    setvbuf(stdout, NULL, _IONBF, 0);

    if (strcmp(mode, "segv-thread") == 0)
        return crash_in_worker(STDERR_FILENO, 1);
    if (strcmp(mode, "one-thread") == 0)
        return crash_in_worker(STDERR_FILENO, 0);
    if (strcmp(mode, "file") == 0) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        CHECK(fd >= 0);
        return crash_in_worker(fd, 1);
    }
    if (strcmp(mode, "closed-fd") == 0) {
        int fds[2];
        CHECK(pipe(fds) == 0);
        CHECK(probe_fault_enable(fds[1], 1) == 0);
        close(fds[1]);
        close(fds[0]);
        do_crash();
        return 0;
    }
    if (strcmp(mode, "closed-pipe") == 0) {
        /* The reader is gone: writes fail with EPIPE, SIGPIPE must not kill us. */
        int fds[2];
        CHECK(pipe(fds) == 0);
        close(fds[0]);
        CHECK(probe_fault_enable(fds[1], 1) == 0);
        do_crash();
        return 0;
    }
    if (strcmp(mode, "disabled") == 0) {
        CHECK(probe_fault_enable(STDERR_FILENO, 1) == 0);
        CHECK(probe_fault_disable() == 0);
        CHECK(probe_fault_is_enabled() == 0);
        CHECK(probe_fault_disable() == 0);
        do_crash();
        return 0;
    }
    if (strcmp(mode, "fpe") == 0 || strcmp(mode, "abort") == 0 ||
        strcmp(mode, "overflow") == 0) {
        CHECK(probe_fault_enable(STDERR_FILENO, 1) == 0);
        do_crash();
        return 0;
    }
    if (strcmp(mode, "overflow-thread") == 0) {
        /* The thread that enables overflows its stack. */
        pthread_t t;
        CHECK(pthread_create(&t, NULL, worker, (void *)1) == 0);
        pthread_join(t, NULL);
        return 0;
    }
    if (strcmp(mode, "overflow-late") == 0) {
        /* Enabled first; a thread that starts using libprobe later overflows. */
        pthread_t t;
        CHECK(probe_fault_enable(STDERR_FILENO, 1) == 0);
        CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
        pthread_join(t, NULL);
        return 0;
    }
    if (strcmp(mode, "overflow-main") == 0) {
        /* Enabled from another thread; the main thread overflows its stack. */
        pthread_t t;
        CHECK(pthread_create(&t, NULL, enabler, NULL) == 0);
        pthread_join(t, NULL);
        do_crash();
        return 0;
    }
    if (strcmp(mode, "recover") == 0) {
        /* The application's own handlers recover with siglongjmp: each fault is
         * dumped once, then handed to them, and the process goes on. */
        struct sigaction sa = {.sa_handler = recover_handler};
        sigemptyset(&sa.sa_mask);
        CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
        CHECK(sigaction(SIGFPE, &sa, NULL) == 0);
        CHECK(probe_fault_enable(STDERR_FILENO, 0) == 0);
        if (sigsetjmp(recover_point, 1) == 0)
            crash_here(NULL);
        printf("recovered 1\n");
        if (sigsetjmp(recover_point, 1) == 0)
            printf("%d\n", divide_here(1, 0));
        printf("recovered 2\n");
        return 0;
    }
    if (strcmp(mode, "traced") == 0) {
        /* A flight-recorder timeline: the dump shows the last events before the
         * crash. */
        CHECK(probe_fault_enable(STDERR_FILENO, 0) == 0);
        CHECK(probe_trace_start(NULL) == 0);
        for (int i = 0; i < 3; i++) {
            PROBE_SCOPE("traced_step");
        }
        probe_trace_instant("about_to_crash");
        do_crash();
        return 0;
    }
    if (strcmp(mode, "double-fault") == 0) {
        /* A scope whose name points nowhere: the dumper itself faults on it. */
        static struct probe__site bad = {PROBE__SITE_MAGIC, PROBE_KIND_SCOPE, 1, 0,
                                         "bad_site", "main", "fault-child.c"};
        CHECK(probe_fault_enable(STDERR_FILENO, 1) == 0);
        probe__token token = probe__scope_enter(&bad);
        CHECK(token != 0);
        bad.name = (const char *)16;
        crash_here(NULL);
        probe__scope_exit(token);
        return 0;
    }
    if (strcmp(mode, "env") == 0) {
        /* PROBE_FAULT=1 enabled the dumper when the library loaded. */
        CHECK(probe_fault_is_enabled() == 1);
        do_crash();
        return 0;
    }
    if (strcmp(mode, "dump") == 0) {
        spawn(waiter, NULL);
        spawn(bystander, NULL);
        spawn(deaf, NULL);
        sleep_s(0.05);
        PROBE_SCOPE("dumping");
        CHECK(probe_fault_dump(STDOUT_FILENO, 1) == 0);
        printf("after dump\n");
        return 0;
    }
    if (strcmp(mode, "usr1") == 0 || strcmp(mode, "usr1-chain") == 0 ||
        strcmp(mode, "usr1-chain-default") == 0) {
        int chain = strcmp(mode, "usr1") != 0;
        if (strcmp(mode, "usr1-chain") == 0 || strcmp(mode, "usr1") == 0)
            signal(SIGUSR1, previous_handler);
        spawn(waiter, NULL);
        sleep_s(0.05);
        CHECK(probe_fault_register(SIGUSR1, STDOUT_FILENO, 1, chain) == 0);
        PROBE_SCOPE("before_kill");
        CHECK(kill(getpid(), SIGUSR1) == 0);
        sleep_s(0.3); /* the signal may be handled by any thread */
        printf("still running; previous handler ran: %s\n", previous_ran ? "yes" : "no");
        CHECK(probe_fault_unregister(SIGUSR1) == 0);
        CHECK(probe_fault_unregister(SIGUSR1) == PROBE_ENOENT);
        return 0;
    }
    if (strcmp(mode, "rt-chain") == 0) {
        /* The program used libprobe's reserved signal before: it still gets it. */
        signal(SIGRTMAX - 2, previous_handler);
        CHECK(probe_fault_enable(STDERR_FILENO, 1) == 0);
        spawn(waiter, NULL);
        sleep_s(0.05);
        CHECK(probe_fault_dump(STDOUT_FILENO, 1) == 0); /* its own requests are not chained */
        printf("previous handler ran before: %s\n", previous_ran ? "yes" : "no");
        CHECK(raise(SIGRTMAX - 2) == 0);
        printf("previous handler ran after: %s\n", previous_ran ? "yes" : "no");
        return 0;
    }
    if (strcmp(mode, "watchdog") == 0) {
        PROBE_SCOPE("stuck_here");
        CHECK(probe_fault_dump_later(0.2, 0, STDOUT_FILENO, 0) == 0);
        sleep_s(0.6);
        printf("done\n");
        return 0;
    }
    if (strcmp(mode, "watchdog-repeat") == 0)
        return watchdog_repeat(argv[2], atoi(argv[3]));
    if (strcmp(mode, "watchdog-exit") == 0) {
        PROBE_SCOPE("stuck_forever");
        CHECK(probe_fault_dump_later(0.1, 0, STDOUT_FILENO, 1) == 0);
        sleep_s(5);
        printf("not reached\n");
        return 0;
    }
    if (strcmp(mode, "watchdog-cancel") == 0)
        return watchdog_cancel();
    if (strcmp(mode, "errors") == 0) {
        CHECK(probe_fault_enable(-1, 1) == PROBE_EBADF);
        CHECK(probe_fault_enable(1000, 1) == PROBE_EBADF);
        CHECK(probe_fault_dump(-1, 1) == PROBE_EBADF);
        CHECK(probe_fault_dump_later(0, 0, 1, 0) == PROBE_EINVAL);
        CHECK(probe_fault_dump_later(-1, 0, 1, 0) == PROBE_EINVAL);
        CHECK(probe_fault_dump_later(0.0 / 0.0, 0, 1, 0) == PROBE_EINVAL);
        CHECK(probe_fault_dump_later(1.0 / 0.0, 0, 1, 0) == PROBE_EINVAL);
        CHECK(probe_fault_dump_later(1, 0, -1, 0) == PROBE_EBADF);
        /* A repeating watchdog faster than PROBE_FAULT_MIN_REPEAT_S would only dump. */
        CHECK(probe_fault_dump_later(1e-12, 1, 1, 0) == PROBE_EINVAL);
        CHECK(probe_fault_dump_later(PROBE_FAULT_MIN_REPEAT_S / 2, 1, 1, 0) == PROBE_EINVAL);
        /* SIGPROF belongs to a running sampler; a stopped one takes it back and
         * hands it the SIGPROFs that are not samples. */
        CHECK(probe_sampler_start(NULL) == 0);
        CHECK(probe_fault_register(SIGPROF, 1, 1, 0) == PROBE_EBUSY);
        CHECK(probe_sampler_stop() == 0);
        int null_fd = open("/dev/null", O_WRONLY);
        CHECK(null_fd >= 0);
        CHECK(probe_fault_register(SIGPROF, null_fd, 0, 0) == 0);
        CHECK(probe_sampler_start(NULL) == 0);
        CHECK(probe_sampler_stop() == 0);
        CHECK(probe_fault_unregister(SIGPROF) == 0);
        CHECK(probe_fault_register(SIGSEGV, 1, 1, 0) == PROBE_EINVAL);
        CHECK(probe_fault_register(SIGKILL, 1, 1, 0) == PROBE_EINVAL);
        CHECK(probe_fault_register(SIGSTOP, 1, 1, 0) == PROBE_EINVAL);
        CHECK(probe_fault_register(SIGABRT, 1, 1, 0) == PROBE_EINVAL);
        CHECK(probe_fault_register(0, 1, 1, 0) == PROBE_EINVAL);
        CHECK(probe_fault_register(1000, 1, 1, 0) == PROBE_EINVAL);
        CHECK(probe_fault_register(SIGUSR2, -1, 1, 0) == PROBE_EBADF);
        CHECK(probe_fault_unregister(SIGUSR2) == PROBE_ENOENT);
        CHECK(probe_fault_unregister(-5) == PROBE_EINVAL);
        CHECK(probe_fault_is_enabled() == 0);
        CHECK(probe_fault_disable() == 0);
        CHECK(probe_fault_dump(1000, 0) == PROBE_EIO);
        printf("errors ok\n");
        return 0;
    }
    fprintf(stderr, "fault-child: unknown mode %s\n", mode);
    return 2;
}
