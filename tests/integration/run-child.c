/* A program with no libprobe code for the `probe run` tests (test_run.py). Its
 * first argument picks what it does; "hot" reports, on stdout, the CPU time its
 * main thread spent in hot() and in all (its own clock), and its wall time. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t sink;

static uint64_t
thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Burn @p ns of this thread's CPU time in a function of its own (noipa, and a
 * constant of its own: identical functions would be folded into one). */
#define BURNER(name, k)                                                               \
    __attribute__((noipa)) static void name(uint64_t ns)                              \
    {                                                                                 \
        uint64_t end = thread_cpu_ns() + ns, x = sink;                                \
        while (thread_cpu_ns() < end) {                                               \
            for (int i = 0; i < 2000; i++)                                            \
                x = x * 6364136223846793005ull + (k);                                  \
        }                                                                             \
        sink = x;                                                                     \
    }

BURNER(spin, 12345ull)

/* CPU time that is sampled on a loaded machine too. A thread's CPU timer expires at
 * the kernel's tick while the thread runs: beside three busy processes, 20 ms of CPU
 * time drew no timer signal in 5 runs of 30, and a profiled run-child with nothing
 * sampled writes no report (the run-no-follow and run-follow-fork failures). */
#define SHORT_NS 120000000ull
#define LONG_NS 200000000ull

/* @p n rounds of arithmetic in a function of its own, with no system call: a
 * profiler's samples can land only here while it runs (a clock read per round would
 * draw them to its system call's return on a contended CPU). */
#define ROUNDS(name, k)                                                               \
    __attribute__((noipa)) static void name(uint64_t n)                               \
    {                                                                                 \
        uint64_t x = sink;                                                            \
        for (uint64_t i = 0; i < n; i++)                                              \
            x = x * 6364136223846793005ull + (k);                                      \
        sink = x;                                                                     \
    }

ROUNDS(hot, 1442695040888963407ull)
ROUNDS(warm, 1013904223ull)

/* Rounds of @fn per microsecond of this thread's CPU time. */
static double
rounds_per_us(void (*fn)(uint64_t))
{
    uint64_t n = 2000000, t0 = thread_cpu_ns();
    fn(n);
    uint64_t dt = thread_cpu_ns() - t0;
    return dt ? (double)n * 1000.0 / (double)dt : 1.0;
}

static uint64_t hot_ns, start_ns, start_wall_ns;

static uint64_t
wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Last of the program's own atexit handlers, close to when the report is taken. */
static void
print_truth(void)
{
    printf("{\"hot_ns\": %llu, \"total_ns\": %llu, \"wall_ns\": %llu}\n",
           (unsigned long long)hot_ns, (unsigned long long)(thread_cpu_ns() - start_ns),
           (unsigned long long)(wall_ns() - start_wall_ns));
    fflush(stdout);
}

static void *
exit_from_thread(void *arg)
{
    spin(LONG_NS);
    exit(*(int *)arg);
}

/* Print what a child inherited of libprobe: the variables and LD_PRELOAD. */
static int
show_env(void)
{
    extern char **environ;
    const char *pre = getenv("LD_PRELOAD");

    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "PROBE_", 6) == 0)
            printf("inherited %s\n", *e);
    }
    if (pre && strstr(pre, "libprobe"))
        printf("inherited LD_PRELOAD=%s\n", pre);
    printf("env checked\n");
    fflush(stdout);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "exit";

    start_ns = thread_cpu_ns();
    start_wall_ns = wall_ns();
    if (strcmp(what, "hot") == 0) {
        /* Batches of 100 calls of hot() (about 20 ms) then 100 of warm() (8 ms), by
         * counts calibrated in CPU time. The truth is hot's batches' CPU time as the
         * thread's clock measures it: a rate calibrated once drifts on a contended
         * CPU. Two clock reads per 28 ms draw no samples worth counting. */
        double hot_rate = rounds_per_us(hot), warm_rate = rounds_per_us(warm);
        uint64_t hot_n = (uint64_t)(200 * hot_rate), warm_n = (uint64_t)(80 * warm_rate);

        atexit(print_truth);
        start_ns = thread_cpu_ns();
        start_wall_ns = wall_ns();
        for (int batch = 0; batch < 180; batch++) {
            uint64_t t0 = thread_cpu_ns();
            for (int i = 0; i < 100; i++)
                hot(hot_n);
            hot_ns += thread_cpu_ns() - t0;
            for (int i = 0; i < 100; i++)
                warm(warm_n);
        }
        return 0;
    }
    if (strcmp(what, "exit") == 0) {
        spin(SHORT_NS);
        return argc > 2 ? atoi(argv[2]) : 0;
    }
    if (strcmp(what, "_exit") == 0) {
        spin(SHORT_NS);
        _exit(4);
    }
    if (strcmp(what, "segv") == 0) {
        spin(LONG_NS);
        *(volatile int *)0 = 1;
        return 0;
    }
    if (strcmp(what, "thread-exit") == 0) {
        static int status = 5;
        pthread_t t;

        pthread_create(&t, NULL, exit_from_thread, &status);
        for (;;)
            pause();
    }
    if (strcmp(what, "touch") == 0) {
        close(open(argv[2], O_WRONLY | O_CREAT, 0644));
        return 0;
    }
    if (strcmp(what, "env") == 0) {
        spin(LONG_NS); /* enough to be sampled when profiled */
        return show_env();
    }
    if (strcmp(what, "fork") == 0) {
        /* Twice: one child burns and exits, the other execs this program. */
        pid_t a = fork();

        if (a == 0) {
            spin(SHORT_NS);
            exit(0);
        }

        pid_t b = fork();

        if (b == 0) {
            execl("/proc/self/exe", argv[0], "env", (char *)NULL);
            _exit(127);
        }
        spin(SHORT_NS);

        int sa = -1, sb = -1;

        waitpid(a, &sa, 0);
        waitpid(b, &sb, 0);
        printf("children %d %d: %d %d\n", (int)a, (int)b, sa, sb);
        return sa == 0 && sb == 0 ? 0 : 1;
    }
    fprintf(stderr, "run-child: unknown mode %s\n", what);
    return 2;
}
