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

    /* Backwards: never negative. */
    ck_assert_int_eq(probe_rusage_diff(&b, &a, &d), 0);
    ck_assert_uint_eq(d.wall_ns, 0);
    ck_assert_uint_eq(d.user_ns, 0);
    ck_assert_uint_le(d.system_ns, a.system_ns);
    ck_assert_uint_le(d.minor_faults, a.minor_faults);
}
END_TEST

START_TEST(diff_never_negative)
{
    probe_rusage a, b, d;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.wall_ns = 1000;        b.wall_ns = 400;
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
    ck_assert_uint_eq(d.wall_ns, 0);
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

    return s;
}

int
main(void)
{
    return test_run(rusage_suite());
}
