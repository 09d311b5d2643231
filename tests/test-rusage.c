/* Resource usage: error paths, units (ns and bytes), SELF/CHILDREN/THREAD, diff. */
#include <limits.h>
#include <pthread.h>
#include <sys/wait.h>

#include "common.h"

#define MIB (UINT64_C(1) << 20)
#define MS UINT64_C(1000000)

static const int whos[] = {PROBE_RUSAGE_SELF, PROBE_RUSAGE_CHILDREN,
                           PROBE_RUSAGE_THREAD};

static void
fill(probe_rusage *ru, unsigned char byte)
{
    memset(ru, byte, sizeof(*ru));
}

static int
all_bytes(const probe_rusage *ru, unsigned char byte)
{
    const unsigned char *p = (const unsigned char *)ru;

    for (size_t i = 0; i < sizeof(*ru); i++)
        if (p[i] != byte)
            return 0;
    return 1;
}

START_TEST(rusage_rejects_null)
{
    for (size_t i = 0; i < sizeof(whos) / sizeof(whos[0]); i++)
        ck_assert_int_eq(probe_getrusage(whos[i], NULL), PROBE_EINVAL);
}
END_TEST

START_TEST(rusage_rejects_bad_who)
{
    static const int bad[] = {-1, 3, 4, 42, INT_MAX, INT_MIN};
    probe_rusage ru;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fill(&ru, 0xab);
        ck_assert_int_eq(probe_getrusage(bad[i], &ru), PROBE_EINVAL);
        /* Output parameters are written only on success. */
        ck_assert_msg(all_bytes(&ru, 0xab), "who %d: out written on failure", bad[i]);
    }
}
END_TEST

START_TEST(rusage_every_who_works)
{
    probe_rusage ru;

    for (size_t i = 0; i < sizeof(whos) / sizeof(whos[0]); i++) {
        fill(&ru, 0xab);
        ck_assert_int_eq(probe_getrusage(whos[i], &ru), 0);
        for (size_t j = 0; j < sizeof(ru.reserved) / sizeof(ru.reserved[0]); j++)
            ck_assert_uint_eq(ru.reserved[j], 0);
    }
}
END_TEST

START_TEST(rusage_wall_is_monotonic_ns)
{
    probe_rusage ru;

    uint64_t t0 = test_now_ns();
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_SELF, &ru), 0);
    uint64_t t1 = test_now_ns();
    ck_assert_uint_le(t0, ru.wall_ns);
    ck_assert_uint_le(ru.wall_ns, t1);
}
END_TEST

START_TEST(rusage_cpu_time_grows_in_ns)
{
    probe_rusage a, b;

    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_SELF, &a), 0);
    uint64_t c0 = test_cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    test_spin_ns(100 * MS);
    uint64_t c1 = test_cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_SELF, &b), 0);

    ck_assert_uint_gt(b.user_ns, a.user_ns);
    ck_assert_uint_ge(b.system_ns, a.system_ns);
    /* About 100 ms of CPU: in microseconds or ticks it would be far too small, in
     * picoseconds far too large. */
    uint64_t used = (b.user_ns + b.system_ns) - (a.user_ns + a.system_ns);
    ck_assert_msg(used >= (c1 - c0) / 2, "used %llu ns for %llu ns of CPU",
                  (unsigned long long)used, (unsigned long long)(c1 - c0));
    ck_assert_msg(used <= 2 * (c1 - c0) + 50 * MS, "used %llu ns for %llu ns of CPU",
                  (unsigned long long)used, (unsigned long long)(c1 - c0));
}
END_TEST

START_TEST(rusage_max_rss_in_bytes)
{
    probe_rusage a, b;
    size_t size = 64 * MIB;

    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_SELF, &a), 0);
    ck_assert_uint_gt(a.max_rss_bytes, 1 * MIB);
    ck_assert_uint_lt(a.max_rss_bytes, UINT64_C(1) << 40);

    /* Touch 64 MiB: the peak grows by about that many bytes (not KiB). */
    volatile char *mem = malloc(size);
    ck_assert(mem != NULL);
    for (size_t i = 0; i < size; i += 4096)
        mem[i] = (char)i;
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_SELF, &b), 0);
    free((void *)mem);
    ck_assert_uint_ge(b.max_rss_bytes, size);
    ck_assert_uint_ge(b.max_rss_bytes, a.max_rss_bytes);
    ck_assert_uint_gt(b.minor_faults, a.minor_faults);
}
END_TEST

START_TEST(rusage_children)
{
    probe_rusage a, b;

    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_CHILDREN, &a), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        test_spin_ns(100 * MS);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_CHILDREN, &b), 0);
    uint64_t used = (b.user_ns + b.system_ns) - (a.user_ns + a.system_ns);
    ck_assert_msg(used >= 50 * MS && used <= 10000 * MS, "children used %llu ns",
                  (unsigned long long)used);
}
END_TEST

struct thread_reading {
    int rc_thread;
    int rc_self;
    probe_rusage thread;
    probe_rusage self;
};

static void *
read_in_thread(void *p)
{
    struct thread_reading *r = p;

    test_spin_ns(10 * MS);
    r->rc_thread = probe_getrusage(PROBE_RUSAGE_THREAD, &r->thread);
    r->rc_self = probe_getrusage(PROBE_RUSAGE_SELF, &r->self);
    return NULL;
}

START_TEST(rusage_thread_is_per_thread)
{
    struct thread_reading r;
    pthread_t th;

    /* The process has used 200 ms more than the new thread will. */
    test_spin_ns(200 * MS);
    ck_assert_int_eq(pthread_create(&th, NULL, read_in_thread, &r), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(r.rc_thread, 0);
    ck_assert_int_eq(r.rc_self, 0);

    uint64_t thread_cpu = r.thread.user_ns + r.thread.system_ns;
    uint64_t self_cpu = r.self.user_ns + r.self.system_ns;
    ck_assert_msg(thread_cpu >= 5 * MS, "thread used %llu ns",
                  (unsigned long long)thread_cpu);
    ck_assert_msg(thread_cpu + 100 * MS <= self_cpu, "thread %llu ns, process %llu ns",
                  (unsigned long long)thread_cpu, (unsigned long long)self_cpu);
}
END_TEST

START_TEST(diff_of_readings)
{
    probe_rusage a, b, d;

    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_SELF, &a), 0);
    test_spin_ns(20 * MS);
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_SELF, &b), 0);
    ck_assert_int_eq(probe_rusage_diff(&a, &b, &d), 0);
    ck_assert_uint_eq(d.wall_ns, b.wall_ns - a.wall_ns);
    ck_assert_uint_eq(d.user_ns, b.user_ns - a.user_ns);
    ck_assert_uint_eq(d.system_ns, b.system_ns - a.system_ns);
    ck_assert_uint_eq(d.minor_faults, b.minor_faults - a.minor_faults);
    ck_assert_uint_eq(d.voluntary_switches, b.voluntary_switches - a.voluntary_switches);
    ck_assert_uint_gt(d.wall_ns, 0);

    /* Swapped (the later reading first): an error, not zeros; @d is not written. */
    probe_rusage kept = d;
    ck_assert_int_eq(probe_rusage_diff(&b, &a, &d), PROBE_ERANGE);
    ck_assert_mem_eq(&d, &kept, sizeof(d));
}
END_TEST

START_TEST(diff_never_negative)
{
    probe_rusage a, b, d;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.wall_ns = 400;         b.wall_ns = 1000; /* in order; other fields went down */
    a.user_ns = 100;         b.user_ns = 50;
    a.system_ns = 7;         b.system_ns = 9;
    a.max_rss_bytes = 200;   b.max_rss_bytes = 100;
    a.minor_faults = 5;      b.minor_faults = 5;
    a.major_faults = 1;      b.major_faults = 0;
    a.voluntary_switches = 3;    b.voluntary_switches = 10;
    a.involuntary_switches = 10; b.involuntary_switches = 3;
    a.block_in = 1;          b.block_in = 2;
    a.block_out = 2;         b.block_out = 1;

    ck_assert_int_eq(probe_rusage_diff(&a, &b, &d), 0);
    ck_assert_uint_eq(d.wall_ns, 600);
    ck_assert_uint_eq(d.user_ns, 0);
    ck_assert_uint_eq(d.system_ns, 2);
    /* A peak, not a sum: the later value. */
    ck_assert_uint_eq(d.max_rss_bytes, 100);
    ck_assert_uint_eq(d.minor_faults, 0);
    ck_assert_uint_eq(d.major_faults, 0);
    ck_assert_uint_eq(d.voluntary_switches, 7);
    ck_assert_uint_eq(d.involuntary_switches, 0);
    ck_assert_uint_eq(d.block_in, 1);
    ck_assert_uint_eq(d.block_out, 0);

    /* The peak grew: still the later value. */
    b.max_rss_bytes = 300;
    ck_assert_int_eq(probe_rusage_diff(&a, &b, &d), 0);
    ck_assert_uint_eq(d.max_rss_bytes, 300);
}
END_TEST

START_TEST(diff_may_alias)
{
    probe_rusage a, b, d;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.user_ns = 100;
    b.user_ns = 350;
    a.wall_ns = 10;
    b.wall_ns = 20;

    d = a;
    ck_assert_int_eq(probe_rusage_diff(&d, &b, &d), 0);
    ck_assert_uint_eq(d.user_ns, 250);
    ck_assert_uint_eq(d.wall_ns, 10);

    d = b;
    ck_assert_int_eq(probe_rusage_diff(&a, &d, &d), 0);
    ck_assert_uint_eq(d.user_ns, 250);
    ck_assert_uint_eq(d.wall_ns, 10);
}
END_TEST

START_TEST(diff_rejects_null)
{
    probe_rusage a, d;

    memset(&a, 0, sizeof(a));
    fill(&d, 0xab);
    ck_assert_int_eq(probe_rusage_diff(NULL, &a, &d), PROBE_EINVAL);
    ck_assert_int_eq(probe_rusage_diff(&a, NULL, &d), PROBE_EINVAL);
    ck_assert_int_eq(probe_rusage_diff(&a, &a, NULL), PROBE_EINVAL);
    ck_assert_int_eq(probe_rusage_diff(NULL, NULL, NULL), PROBE_EINVAL);
    ck_assert(all_bytes(&d, 0xab));
}
END_TEST

/* ---- issue 3, "Must show" ------------------------------------------------------ */

#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>

#define ATTEMPTS 10

/* Burn CPU in user mode for @ns of wall time (no system call: clock_gettime is the
 * vDSO), so a thread that keeps its CPU uses about all of that time. */
static void
spin_wall_ns(uint64_t ns)
{
    volatile uint64_t x = 0;
    uint64_t end = test_now_ns() + ns;

    while (test_now_ns() < end)
        for (int i = 0; i < 1000; i++)
            x += (uint64_t)i;
}

/* Burn about @ns of the thread's CPU time, in user mode: test_spin_ns() reads the
 * thread's CPU clock all the time, which is a system call, so it is mostly system
 * time. */
static void
spin_user_ns(uint64_t ns)
{
    volatile uint64_t x = 0;
    uint64_t end = test_cpu_ns(CLOCK_THREAD_CPUTIME_ID) + ns;

    while (test_cpu_ns(CLOCK_THREAD_CPUTIME_ID) < end)
        for (int i = 0; i < 100000; i++)
            x += (uint64_t)i;
}

START_TEST(must_cpu_loop_is_user_time)
{
    double best = 0;

    /* Bounds from the thread's own CPU clock, not from wall time: beside other work
     * the loop gets only a share of each wall second (47% with three busy processes
     * on two CPUs). The kernel splits that CPU time into user and system by where
     * its ticks land, a statistical split: pass if any of several attempts, a little
     * apart, sees the loop as user time. */
    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        probe_rusage a, b, d;
        uint64_t c0, cpu;

        ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_THREAD, &a), 0);
        c0 = test_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
        do
            spin_wall_ns(MS); /* one system call per ms of wall time: user time */
        while ((cpu = test_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - c0) < 200 * MS);
        ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_THREAD, &b), 0);
        ck_assert_int_eq(probe_rusage_diff(&a, &b, &d), 0);

        ck_assert_uint_ge(d.wall_ns, cpu);
        /* Never more CPU than wall time on one thread (units: both in ns). */
        ck_assert_msg(d.user_ns <= d.wall_ns + 5 * MS, "user %llu ns in %llu ns of wall",
                      (unsigned long long)d.user_ns, (unsigned long long)d.wall_ns);
        /* User plus system is the thread's CPU time (getrusage rounds to us). */
        uint64_t used = d.user_ns + d.system_ns;
        ck_assert_msg(used >= cpu * 9 / 10 && used <= cpu * 11 / 10 + 5 * MS,
                      "user %llu + system %llu ns for %llu ns of thread CPU time",
                      (unsigned long long)d.user_ns, (unsigned long long)d.system_ns,
                      (unsigned long long)cpu);
        double ratio = (double)d.user_ns / (double)cpu;
        fprintf(stderr, "cpu loop: user %.1f%% of %.1f ms of CPU, in %.1f ms of wall\n",
                ratio * 100, cpu / 1e6, d.wall_ns / 1e6);
        if (ratio >= 0.9)
            return;
        best = ratio > best ? ratio : best;
        usleep(100 * 1000);
    }
    ck_abort_msg("a CPU loop got at most %.1f%% of its CPU time as user time in %d "
                 "attempts (want >= 90%%)",
                 best * 100, ATTEMPTS);
}
END_TEST

START_TEST(must_children_max_rss_after_reaping)
{
    const size_t size = 64 * MIB;
    probe_rusage before, exited, reaped;
    siginfo_t si;
    int status;

    /* In Check's fork mode (the default) this process has reaped no child yet. */
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_CHILDREN, &before), 0);
    ck_assert_msg(before.max_rss_bytes < size,
                  "a child of %llu bytes was reaped before: run in Check's fork mode",
                  (unsigned long long)before.max_rss_bytes);

    size_t parent_rss = 0;
    ck_assert_int_eq(probe_current_rss(&parent_rss), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *p = malloc(size);
        if (!p)
            _exit(2);
        memset(p, 1, size);
        __asm__ __volatile__("" : : "r"(p) : "memory"); /* keep the memset */
        _exit(p[size - 1] == 1 ? 0 : 3);
    }

    /* Exited but not reaped (WNOWAIT): not counted yet. */
    memset(&si, 0, sizeof(si));
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    ck_assert_int_eq(si.si_pid, pid);
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_CHILDREN, &exited), 0);
    ck_assert_msg(exited.max_rss_bytes < size,
                  "CHILDREN counts a child that is not reaped: %llu bytes",
                  (unsigned long long)exited.max_rss_bytes);

    /* Reaped: its peak is the children's peak, in bytes. */
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x",
                  status);
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_CHILDREN, &reaped), 0);
    ck_assert_msg(reaped.max_rss_bytes >= size, "reaped child's peak: %llu bytes",
                  (unsigned long long)reaped.max_rss_bytes);
    /* Not wildly more (a unit error would be 1024x). The child started with this
     * process's resident pages, and under ThreadSanitizer every byte it touches also
     * touches about 5 bytes of shadow memory. */
    ck_assert_uint_lt(reaped.max_rss_bytes, parent_rss + 16 * size);
}
END_TEST

struct busy_worker {
    int rc_a, rc_b;
    probe_rusage a, b;
};

static void *
busy_worker_main(void *p)
{
    struct busy_worker *w = p;

    w->rc_a = probe_getrusage(PROBE_RUSAGE_THREAD, &w->a);
    spin_user_ns(200 * MS);
    w->rc_b = probe_getrusage(PROBE_RUSAGE_THREAD, &w->b);
    return NULL;
}

START_TEST(must_thread_time_excludes_idle_main)
{
    struct busy_worker w;
    probe_rusage m0, m1, self0, self1;
    pthread_t th;

    memset(&w, 0, sizeof(w));
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_THREAD, &m0), 0);
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_SELF, &self0), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, busy_worker_main, &w), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0); /* main idles, blocked here */
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_SELF, &self1), 0);
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_THREAD, &m1), 0);
    ck_assert_int_eq(w.rc_a, 0);
    ck_assert_int_eq(w.rc_b, 0);

    uint64_t worker_user = w.b.user_ns - w.a.user_ns;
    uint64_t main_user = m1.user_ns - m0.user_ns;
    uint64_t main_cpu = main_user + (m1.system_ns - m0.system_ns);
    ck_assert_msg(worker_user >= 100 * MS, "worker user time %llu ns",
                  (unsigned long long)worker_user);
    ck_assert_msg(main_user * 10 <= worker_user && main_cpu * 10 <= worker_user,
                  "main thread %llu ns user, %llu ns CPU; worker %llu ns user",
                  (unsigned long long)main_user, (unsigned long long)main_cpu,
                  (unsigned long long)worker_user);
    /* The process as a whole did see the worker's time. */
    uint64_t self_cpu =
        (self1.user_ns + self1.system_ns) - (self0.user_ns + self0.system_ns);
    ck_assert_msg(self_cpu + 10 * MS >= worker_user, "process %llu ns, worker %llu ns",
                  (unsigned long long)self_cpu, (unsigned long long)worker_user);
}
END_TEST

/* The fields that count up, as offsets into probe_rusage (max_rss_bytes is a peak). */
static const struct {
    const char *name;
    size_t off;
} counted[] = {
    {"wall_ns", offsetof(probe_rusage, wall_ns)},
    {"user_ns", offsetof(probe_rusage, user_ns)},
    {"system_ns", offsetof(probe_rusage, system_ns)},
    {"minor_faults", offsetof(probe_rusage, minor_faults)},
    {"major_faults", offsetof(probe_rusage, major_faults)},
    {"voluntary_switches", offsetof(probe_rusage, voluntary_switches)},
    {"involuntary_switches", offsetof(probe_rusage, involuntary_switches)},
    {"block_in", offsetof(probe_rusage, block_in)},
    {"block_out", offsetof(probe_rusage, block_out)},
};

static uint64_t
field(const probe_rusage *ru, size_t off)
{
    uint64_t v;

    memcpy(&v, (const char *)ru + off, sizeof(v));
    return v;
}

START_TEST(must_diff_of_readings_never_negative)
{
    for (size_t w = 0; w < sizeof(whos) / sizeof(whos[0]); w++) {
        for (int i = 0; i < 200; i++) {
            probe_rusage a, b, d, back;

            ck_assert_int_eq(probe_getrusage(whos[w], &a), 0);
            if (i % 2) {
                test_spin_ns(100000); /* some CPU, and now and then a tick */
            } else {
                char *p = malloc(1 << 16); /* some faults */
                ck_assert(p != NULL);
                memset(p, i, 1 << 16);
                free(p);
                sched_yield();
            }
            ck_assert_int_eq(probe_getrusage(whos[w], &b), 0);

            /* Later minus earlier: the difference, which is at most the later value
             * (a wrapped-around subtraction would be near 2^64). */
            ck_assert_int_eq(probe_rusage_diff(&a, &b, &d), 0);
            /* Earlier minus later: the arguments are swapped, an error. */
            memset(&back, 0, sizeof(back));
            ck_assert_int_eq(probe_rusage_diff(&b, &a, &back), PROBE_ERANGE);
            for (size_t f = 0; f < sizeof(counted) / sizeof(counted[0]); f++) {
                uint64_t va = field(&a, counted[f].off), vb = field(&b, counted[f].off);
                uint64_t vd = field(&d, counted[f].off);

                ck_assert_msg(vd == (vb >= va ? vb - va : 0) && vd <= vb,
                              "who %d, %s: %llu then %llu, diff %llu", whos[w],
                              counted[f].name, (unsigned long long)va,
                              (unsigned long long)vb, (unsigned long long)vd);
                ck_assert_uint_eq(field(&back, counted[f].off), 0); /* not written */
            }
            ck_assert_uint_eq(d.max_rss_bytes, b.max_rss_bytes);
            ck_assert_uint_le(a.max_rss_bytes, b.max_rss_bytes);
            for (size_t r = 0; r < sizeof(d.reserved) / sizeof(d.reserved[0]); r++) {
                ck_assert_uint_eq(d.reserved[r], 0);
                ck_assert_uint_eq(back.reserved[r], 0);
            }
        }
    }
}
END_TEST

START_TEST(must_rlimit_cpu_kills_child_by_sigxcpu)
{
    probe_rusage before, after;
    int status;

    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_CHILDREN, &before), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        probe_rlimit core = {0, 0};
        probe_rlimit cpu = {1, 2}; /* SIGXCPU at 1 s of CPU, SIGKILL at 2 s */
        volatile uint64_t x = 0;

        /* SIGXCPU dumps core by default: not here. */
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        if (probe_setrlimit(PROBE_RLIMIT_CORE, &core) < 0)
            _exit(10);
        if (probe_setrlimit(PROBE_RLIMIT_CPU, &cpu) < 0)
            _exit(11);
        uint64_t end = test_now_ns() + 45000 * MS; /* a bound, should the limit fail */
        while (test_now_ns() < end)
            x++;
        _exit(12);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status), "child exited with %d, not by a signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    ck_assert_msg(WTERMSIG(status) == SIGXCPU, "child died by signal %d, not SIGXCPU",
                  WTERMSIG(status));

    /* It died at the soft limit, about 1 s of CPU, before the hard one. The limit is
     * enforced on the scheduler's clock; getrusage's user + system can read lower
     * (0.83 to 1.0 s on a 2-vCPU VM), hence the wide lower bound. */
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_CHILDREN, &after), 0);
    uint64_t cpu =
        (after.user_ns + after.system_ns) - (before.user_ns + before.system_ns);
    ck_assert_msg(cpu >= 500 * MS && cpu < 2000 * MS, "child used %llu ns of CPU",
                  (unsigned long long)cpu);
}
END_TEST

static Suite *
rusage_suite(void)
{
    Suite *s = suite_create("rusage");
    TCase *tc;

    tc = tcase_create("errors");
    tcase_add_test(tc, rusage_rejects_null);
    tcase_add_test(tc, rusage_rejects_bad_who);
    tcase_add_test(tc, diff_rejects_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("readings");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, rusage_every_who_works);
    tcase_add_test(tc, rusage_wall_is_monotonic_ns);
    tcase_add_test(tc, rusage_cpu_time_grows_in_ns);
    tcase_add_test(tc, rusage_max_rss_in_bytes);
    tcase_add_test(tc, rusage_children);
    tcase_add_test(tc, rusage_thread_is_per_thread);
    suite_add_tcase(s, tc);

    tc = tcase_create("diff");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, diff_of_readings);
    tcase_add_test(tc, diff_never_negative);
    tcase_add_test(tc, diff_may_alias);
    suite_add_tcase(s, tc);

    tc = tcase_create("must-show");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, must_cpu_loop_is_user_time);
    tcase_add_test(tc, must_children_max_rss_after_reaping);
    tcase_add_test(tc, must_thread_time_excludes_idle_main);
    tcase_add_test(tc, must_diff_of_readings_never_negative);
    tcase_add_test(tc, must_rlimit_cpu_kills_child_by_sigxcpu);
    suite_add_tcase(s, tc);

    return s;
}

int
main(void)
{
    return test_run(rusage_suite());
}
