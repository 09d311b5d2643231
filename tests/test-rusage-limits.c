/* Resource usage, the rest of <probe/rusage.h>: limits (names, reading, setting, every
 * error), probe_rusage_format() (the block, units, truncation) and probe_current_rss().
 *
 * Tests that change a limit or drop privileges do it in a forked child, so the test
 * process keeps its limits even when Check runs without fork (CK_FORK=no). A child
 * reports a failed check through a pipe; the parent turns it into a Check failure. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "common.h"

#define MIB ((size_t)1 << 20)

#define N_RESOURCES 9
static const char *const rlimit_names[N_RESOURCES] = {
    "cpu", "as", "nofile", "core", "data", "stack", "fsize", "nproc", "memlock",
};
static const int rlimit_sys[N_RESOURCES] = {
    RLIMIT_CPU,   RLIMIT_AS,    RLIMIT_NOFILE, RLIMIT_CORE,    RLIMIT_DATA,
    RLIMIT_STACK, RLIMIT_FSIZE, RLIMIT_NPROC,  RLIMIT_MEMLOCK,
};
static const int bad_resources[] = {-1, N_RESOURCES, 10, 42, INT_MAX, INT_MIN};

#define N_BAD (sizeof(bad_resources) / sizeof(bad_resources[0]))

/* ---- running a check in a child ----------------------------------------------- */

/* The exit status of a child that could not set up what it needed (not a failure). */
#define CHILD_SKIP 77

static int child_fd = -1;

static void
child_say(const char *msg)
{
    if (child_fd >= 0)
        (void)!write(child_fd, msg, strlen(msg));
}

static _Noreturn void
child_fail(int line, const char *what)
{
    char msg[512];

    snprintf(msg, sizeof(msg), "child, line %d: %s", line, what);
    child_say(msg);
    _exit(1);
}

static _Noreturn void
child_skip(const char *why)
{
    child_say(why);
    _exit(CHILD_SKIP);
}

#define CHILD_CHECK(cond)                                                                \
    do {                                                                                 \
        if (!(cond))                                                                     \
            child_fail(__LINE__, #cond);                                                 \
    } while (0)

#define CHILD_CHECK_EQ(a, b)                                                             \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ != b_) {                                                                  \
            char what_[256];                                                             \
            snprintf(what_, sizeof(what_), "%s == %s: %lld != %lld", #a, #b, a_, b_);    \
            child_fail(__LINE__, what_);                                                 \
        }                                                                                \
    } while (0)

/* Run @fn in a forked child. Returns 1 when it passed, 0 when it skipped (the reason
 * is printed); a failure fails the test with the child's message. */
static int
run_in_child(const char *test, void (*fn)(void))
{
    int fds[2];
    char msg[512];
    ssize_t n, got = 0;
    int status;

    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        child_fd = fds[1];
        fn();
        _exit(0);
    }
    close(fds[1]);
    while (got < (ssize_t)sizeof(msg) - 1 &&
           ((n = read(fds[0], msg + got, sizeof(msg) - 1 - (size_t)got)) > 0 ||
            (n < 0 && errno == EINTR)))
        got += n > 0 ? n : 0;
    msg[got] = '\0';
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "%s: child died by signal %d", test,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    if (WEXITSTATUS(status) == CHILD_SKIP) {
        fprintf(stderr, "%s: SKIPPED: %s\n", test, msg);
        return 0;
    }
    ck_assert_msg(WEXITSTATUS(status) == 0, "%s: %s (exit %d)", test,
                  got ? msg : "no message", WEXITSTATUS(status));
    return 1;
}

static uint64_t
sys_to_u64(rlim_t v)
{
    return v == RLIM_INFINITY ? PROBE_RLIM_INFINITY : (uint64_t)v;
}

/* ---- names ------------------------------------------------------------------- */

START_TEST(rlimit_names_round_trip)
{
    for (int r = 0; r < N_RESOURCES; r++) {
        const char *name = probe_rlimit_name(r);
        ck_assert_ptr_nonnull(name);
        ck_assert_str_eq(name, rlimit_names[r]);
        ck_assert_int_eq(probe_rlimit_from_name(name), r);
    }
    ck_assert_int_eq(PROBE_RLIMIT_CPU, 0);
    ck_assert_int_eq(PROBE_RLIMIT_MEMLOCK, N_RESOURCES - 1);
}
END_TEST

START_TEST(rlimit_from_name_ignores_case)
{
    ck_assert_int_eq(probe_rlimit_from_name("CPU"), PROBE_RLIMIT_CPU);
    ck_assert_int_eq(probe_rlimit_from_name("NoFile"), PROBE_RLIMIT_NOFILE);
    ck_assert_int_eq(probe_rlimit_from_name("memLOCK"), PROBE_RLIMIT_MEMLOCK);
    ck_assert_int_eq(probe_rlimit_from_name("As"), PROBE_RLIMIT_AS);
}
END_TEST

START_TEST(rlimit_name_errors)
{
    static const char *const bad[] = {
        "",       "c",          "cp",         "cpux",    "cpu ",
        " cpu",   "rlimit_cpu", "RLIMIT_CPU", "no file", "nofile\n",
        "stacks", "memlock2",   "\xc3\xa7pu",
    };

    ck_assert_int_eq(probe_rlimit_from_name(NULL), PROBE_EINVAL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(probe_rlimit_from_name(bad[i]) == PROBE_EINVAL,
                      "\"%s\" is not a resource", bad[i]);
    for (size_t i = 0; i < N_BAD; i++)
        ck_assert_ptr_null(probe_rlimit_name(bad_resources[i]));
}
END_TEST

/* ---- reading ------------------------------------------------------------------ */

START_TEST(getrlimit_matches_the_system)
{
    for (int r = 0; r < N_RESOURCES; r++) {
        probe_rlimit lim;
        struct rlimit sys;

        memset(&lim, 0xab, sizeof(lim));
        ck_assert_int_eq(probe_getrlimit(r, &lim), 0);
        ck_assert_int_eq(getrlimit(rlimit_sys[r], &sys), 0);
        ck_assert_msg(lim.soft == sys_to_u64(sys.rlim_cur), "%s soft: %llu",
                      rlimit_names[r], (unsigned long long)lim.soft);
        ck_assert_msg(lim.hard == sys_to_u64(sys.rlim_max), "%s hard: %llu",
                      rlimit_names[r], (unsigned long long)lim.hard);
        ck_assert_uint_le(lim.soft, lim.hard);
    }
}
END_TEST

START_TEST(getrlimit_errors)
{
    probe_rlimit lim;

    for (int r = 0; r < N_RESOURCES; r++)
        ck_assert_int_eq(probe_getrlimit(r, NULL), PROBE_EINVAL);
    for (size_t i = 0; i < N_BAD; i++) {
        memset(&lim, 0xab, sizeof(lim));
        ck_assert_int_eq(probe_getrlimit(bad_resources[i], &lim), PROBE_EINVAL);
        ck_assert_uint_eq(lim.soft, UINT64_C(0xabababababababab));
        ck_assert_uint_eq(lim.hard, UINT64_C(0xabababababababab));
    }
}
END_TEST

/* ---- setting -------------------------------------------------------------------- */

static void
child_set_and_read_back(void)
{
    probe_rlimit lim, now;
    struct rlimit sys;

    /* Lower nofile's soft limit: always allowed. */
    CHILD_CHECK_EQ(probe_getrlimit(PROBE_RLIMIT_NOFILE, &lim), 0);
    CHILD_CHECK(lim.hard >= 64);
    lim.soft = 64;
    CHILD_CHECK_EQ(probe_setrlimit(PROBE_RLIMIT_NOFILE, &lim), 0);
    CHILD_CHECK_EQ(getrlimit(RLIMIT_NOFILE, &sys), 0);
    CHILD_CHECK_EQ(sys.rlim_cur, 64);
    CHILD_CHECK(sys_to_u64(sys.rlim_max) == lim.hard);
    CHILD_CHECK_EQ(probe_getrlimit(PROBE_RLIMIT_NOFILE, &now), 0);
    CHILD_CHECK(now.soft == 64 && now.hard == lim.hard);

    /* The largest finite value: with a 64-bit rlim_t it fits and stays finite (it
     * must not turn into "no limit" or PROBE_ERANGE). Lowering a hard limit from
     * infinity to it is allowed to anyone. */
    CHILD_CHECK_EQ(probe_getrlimit(PROBE_RLIMIT_CORE, &lim), 0);
    if (sizeof(rlim_t) == sizeof(uint64_t) && RLIM_INFINITY == (rlim_t)-1 &&
        lim.hard == PROBE_RLIM_INFINITY) {
        probe_rlimit big = {UINT64_MAX - 1, UINT64_MAX - 1};
        CHILD_CHECK_EQ(probe_setrlimit(PROBE_RLIMIT_CORE, &big), 0);
        CHILD_CHECK_EQ(probe_getrlimit(PROBE_RLIMIT_CORE, &now), 0);
        CHILD_CHECK(now.soft == UINT64_MAX - 1 && now.hard == UINT64_MAX - 1);
        CHILD_CHECK_EQ(getrlimit(RLIMIT_CORE, &sys), 0);
        CHILD_CHECK(sys.rlim_cur != RLIM_INFINITY && sys.rlim_max != RLIM_INFINITY);
    }

    /* PROBE_RLIM_INFINITY is RLIM_INFINITY: a soft limit raised to an infinite hard
     * one. */
    for (int r = 0; r < N_RESOURCES; r++) {
        CHILD_CHECK_EQ(probe_getrlimit(r, &lim), 0);
        if (lim.hard != PROBE_RLIM_INFINITY)
            continue;
        probe_rlimit inf = {PROBE_RLIM_INFINITY, PROBE_RLIM_INFINITY};
        CHILD_CHECK_EQ(probe_setrlimit(r, &inf), 0);
        CHILD_CHECK_EQ(getrlimit(rlimit_sys[r], &sys), 0);
        CHILD_CHECK(sys.rlim_cur == RLIM_INFINITY && sys.rlim_max == RLIM_INFINITY);
        return;
    }
    child_skip("no resource with an infinite hard limit to test PROBE_RLIM_INFINITY");
}

START_TEST(setrlimit_sets_and_reads_back)
{
    run_in_child("setrlimit_sets_and_reads_back", child_set_and_read_back);
}
END_TEST

static void
child_setrlimit_errors(void)
{
    probe_rlimit lim, now;
    struct rlimit before, after;

    for (int r = 0; r < N_RESOURCES; r++)
        CHILD_CHECK_EQ(probe_setrlimit(r, NULL), PROBE_EINVAL);
    lim.soft = lim.hard = 1024;
    for (size_t i = 0; i < N_BAD; i++)
        CHILD_CHECK_EQ(probe_setrlimit(bad_resources[i], &lim), PROBE_EINVAL);

    /* soft > hard, finite or with an infinite soft limit: nothing changes. */
    CHILD_CHECK_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
    lim.soft = 32;
    lim.hard = 16;
    CHILD_CHECK_EQ(probe_setrlimit(PROBE_RLIMIT_NOFILE, &lim), PROBE_EINVAL);
    lim.soft = PROBE_RLIM_INFINITY;
    lim.hard = 16;
    CHILD_CHECK_EQ(probe_setrlimit(PROBE_RLIMIT_NOFILE, &lim), PROBE_EINVAL);
    CHILD_CHECK_EQ(getrlimit(RLIMIT_NOFILE, &after), 0);
    CHILD_CHECK(before.rlim_cur == after.rlim_cur && before.rlim_max == after.rlim_max);

    /* A value the system's type cannot hold. With a 64-bit unsigned rlim_t there is
     * none (every finite uint64_t fits; see child_set_and_read_back). */
    if ((uint64_t)RLIM_INFINITY < UINT64_MAX) {
        lim.soft = (uint64_t)RLIM_INFINITY; /* would read back as "no limit" */
        lim.hard = PROBE_RLIM_INFINITY;
        CHILD_CHECK_EQ(probe_setrlimit(PROBE_RLIMIT_AS, &lim), PROBE_ERANGE);
        lim.soft = lim.hard = (uint64_t)RLIM_INFINITY + 1;
        CHILD_CHECK_EQ(probe_setrlimit(PROBE_RLIMIT_AS, &lim), PROBE_ERANGE);
    }

    /* errno is the caller's on the failure paths too. */
    errno = 4242;
    CHILD_CHECK_EQ(probe_setrlimit(-1, &lim), PROBE_EINVAL);
    CHILD_CHECK_EQ(probe_getrlimit(PROBE_RLIMIT_CPU, &now), 0);
    CHILD_CHECK_EQ(errno, 4242);
}

START_TEST(setrlimit_errors)
{
    run_in_child("setrlimit_errors", child_setrlimit_errors);
}
END_TEST

/* Without privilege: when root, become nobody (65534) for good; 0 on success. */
static int
drop_privileges(void)
{
    if (geteuid() != 0)
        return 0;
    if (setgroups(0, NULL) == 0 && setgid(65534) == 0 && setuid(65534) == 0)
        return geteuid() == 65534 && setuid(0) < 0 ? 0 : -1;
    return -1;
}

static void
child_raise_hard_is_eperm(void)
{
    probe_rlimit lim, now;

    if (drop_privileges() < 0)
        child_skip("running as root and cannot drop privileges (setuid to 65534 "
                   "failed), so raising a hard limit would succeed");

    /* Lower cpu's hard limit (allowed to anyone), then try to raise it back. */
    CHILD_CHECK_EQ(probe_getrlimit(PROBE_RLIMIT_CPU, &lim), 0);
    probe_rlimit low = {1000, 1000};
    if (lim.hard < 1000) {
        low.soft = low.hard = lim.hard;
    }
    CHILD_CHECK(low.hard > 0);
    CHILD_CHECK_EQ(probe_setrlimit(PROBE_RLIMIT_CPU, &low), 0);

    probe_rlimit up = {low.soft, low.hard + 1};
    CHILD_CHECK_EQ(probe_setrlimit(PROBE_RLIMIT_CPU, &up), PROBE_EPERM);
    up.hard = PROBE_RLIM_INFINITY;
    CHILD_CHECK_EQ(probe_setrlimit(PROBE_RLIMIT_CPU, &up), PROBE_EPERM);
    up.soft = PROBE_RLIM_INFINITY;
    CHILD_CHECK_EQ(probe_setrlimit(PROBE_RLIMIT_CPU, &up), PROBE_EPERM);

    /* Nothing changed; the soft limit may still move up to the hard one. */
    CHILD_CHECK_EQ(probe_getrlimit(PROBE_RLIMIT_CPU, &now), 0);
    CHILD_CHECK(now.soft == low.soft && now.hard == low.hard);
    CHILD_CHECK_EQ(strcmp(probe_strerror(PROBE_EPERM), "operation not permitted"), 0);
}

START_TEST(setrlimit_raise_hard_is_eperm)
{
    run_in_child("setrlimit_raise_hard_is_eperm", child_raise_hard_is_eperm);
}
END_TEST

/* ---- probe_rusage_format ---------------------------------------------------------- */

static const char expected_block[] =
    "Wall clock time: 1.234567 s\n"
    "User time: 0.000001 s\n"
    "System time: 12.000000 s\n"
    "Maximum resident set size: 12345678 bytes (11.8 MiB)\n"
    "Minor page faults: 4321\n"
    "Major page faults: 0\n"
    "Voluntary context switches: 17\n"
    "Involuntary context switches: 3\n"
    "Block input operations: 8\n"
    "Block output operations: 1000000\n";

static probe_rusage
sample_reading(void)
{
    probe_rusage ru;

    memset(&ru, 0, sizeof(ru));
    ru.wall_ns = UINT64_C(1234567890);
    ru.user_ns = 1999; /* truncated to the microsecond, as time(1) does */
    ru.system_ns = UINT64_C(12000000000);
    ru.max_rss_bytes = 12345678;
    ru.minor_faults = 4321;
    ru.major_faults = 0;
    ru.voluntary_switches = 17;
    ru.involuntary_switches = 3;
    ru.block_in = 8;
    ru.block_out = 1000000;
    return ru;
}

START_TEST(format_block)
{
    probe_rusage ru = sample_reading();
    char buf[1024];

    memset(buf, 'x', sizeof(buf));
    int n = probe_rusage_format(&ru, buf, sizeof(buf));
    ck_assert_str_eq(buf, expected_block);
    ck_assert_int_eq(n, (int)strlen(expected_block));
    ck_assert_int_eq(buf[n + 1], 'x'); /* nothing written past the NUL */
}
END_TEST

/* The line "Maximum resident set size: ..." for @bytes, without its newline. */
static const char *
rss_line(uint64_t bytes, char *buf, size_t size)
{
    probe_rusage ru;

    memset(&ru, 0, sizeof(ru));
    ru.max_rss_bytes = bytes;
    ck_assert_int_lt(probe_rusage_format(&ru, buf, size), (int)size);
    char *line = strstr(buf, "Maximum resident set size: ");
    ck_assert_ptr_nonnull(line);
    line += strlen("Maximum resident set size: ");
    line[strcspn(line, "\n")] = '\0';
    return line;
}

START_TEST(format_units)
{
    static const struct {
        uint64_t bytes;
        const char *text;
    } cases[] = {
        {0, "0 bytes"},
        {1023, "1023 bytes"},
        {1024, "1024 bytes (1.0 KiB)"},
        {1536, "1536 bytes (1.5 KiB)"},
        {1048524, "1048524 bytes (1023.9 KiB)"},
        {1048575, "1048575 bytes (1.0 MiB)"}, /* 1023.999 KiB rounds up a unit */
        {1048576, "1048576 bytes (1.0 MiB)"},
        {67108864, "67108864 bytes (64.0 MiB)"},
        {UINT64_C(1073741824), "1073741824 bytes (1.0 GiB)"},
        {UINT64_C(5368709120), "5368709120 bytes (5.0 GiB)"},
        {UINT64_MAX, "18446744073709551615 bytes (17179869184.0 GiB)"},
    };
    char buf[1024];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_str_eq(rss_line(cases[i].bytes, buf, sizeof(buf)), cases[i].text);
}
END_TEST

START_TEST(format_extremes)
{
    probe_rusage ru;
    char buf[2048];

    /* Every field at its largest: no overflow, every digit there. */
    memset(&ru, 0xff, sizeof(ru));
    int n = probe_rusage_format(&ru, buf, sizeof(buf));
    ck_assert_int_eq(n, (int)strlen(buf));
    ck_assert_ptr_nonnull(strstr(buf, "Wall clock time: 18446744073.709551 s\n"));
    ck_assert_ptr_nonnull(strstr(buf, "Minor page faults: 18446744073709551615\n"));
    ck_assert_ptr_nonnull(strstr(buf, "Block output operations: 18446744073709551615\n"));
    ck_assert_int_lt(n, 512); /* docs/rusage.md: a 512-byte buffer always holds it */

    /* And at zero. */
    memset(&ru, 0, sizeof(ru));
    n = probe_rusage_format(&ru, buf, sizeof(buf));
    ck_assert_int_eq(n, (int)strlen(buf));
    ck_assert_ptr_nonnull(strstr(buf, "User time: 0.000000 s\n"));
    ck_assert_ptr_nonnull(strstr(buf, "Maximum resident set size: 0 bytes\n"));
    ck_assert_ptr_nonnull(strstr(buf, "Major page faults: 0\n"));
}
END_TEST

START_TEST(format_truncates_like_snprintf)
{
    probe_rusage ru = sample_reading();
    int full = (int)strlen(expected_block);
    char buf[1024];

    /* Measure with no buffer. */
    ck_assert_int_eq(probe_rusage_format(&ru, NULL, 0), full);

    /* len 0 with a buffer: nothing is written. */
    buf[0] = 'x';
    ck_assert_int_eq(probe_rusage_format(&ru, buf, 0), full);
    ck_assert_int_eq(buf[0], 'x');

    /* len 1: just the NUL. */
    memset(buf, 'x', sizeof(buf));
    ck_assert_int_eq(probe_rusage_format(&ru, buf, 1), full);
    ck_assert_int_eq(buf[0], '\0');
    ck_assert_int_eq(buf[1], 'x');

    /* Every length up to and past the whole block: a NUL-terminated prefix of
     * len - 1 bytes, nothing written after it, and always the full length back. */
    for (size_t len = 1; len <= (size_t)full + 2; len++) {
        size_t keep = len - 1 < (size_t)full ? len - 1 : (size_t)full;

        memset(buf, 'x', sizeof(buf));
        ck_assert_int_eq(probe_rusage_format(&ru, buf, len), full);
        ck_assert_uint_eq(strlen(buf), keep);
        ck_assert_int_eq(memcmp(buf, expected_block, keep), 0);
        ck_assert_msg(buf[keep + 1] == 'x', "len %zu: wrote past the NUL", len);
    }
}
END_TEST

START_TEST(format_errors)
{
    probe_rusage ru = sample_reading();
    char buf[64];

    memset(buf, 'x', sizeof(buf));
    ck_assert_int_eq(probe_rusage_format(NULL, buf, sizeof(buf)), PROBE_EINVAL);
    ck_assert_int_eq(probe_rusage_format(NULL, NULL, 0), PROBE_EINVAL);
    ck_assert_int_eq(probe_rusage_format(&ru, NULL, 1), PROBE_EINVAL);
    ck_assert_int_eq(probe_rusage_format(&ru, NULL, sizeof(buf)), PROBE_EINVAL);
    ck_assert_int_eq(buf[0], 'x'); /* not written on failure */
}
END_TEST

START_TEST(format_a_real_reading)
{
    probe_rusage ru;
    char buf[1024];

    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_SELF, &ru), 0);
    int n = probe_rusage_format(&ru, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(n, (int)strlen(buf));

    /* Ten lines, each "label: value", in time -v's order. */
    static const char *const labels[] = {
        "Wall clock time: ",
        "User time: ",
        "System time: ",
        "Maximum resident set size: ",
        "Minor page faults: ",
        "Major page faults: ",
        "Voluntary context switches: ",
        "Involuntary context switches: ",
        "Block input operations: ",
        "Block output operations: ",
    };
    const char *p = buf;
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
        ck_assert_msg(strncmp(p, labels[i], strlen(labels[i])) == 0,
                      "line %zu is \"%.40s\"", i, p);
        p = strchr(p, '\n');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    ck_assert_str_eq(p, "");

    char rss[64];
    snprintf(rss, sizeof(rss), "Maximum resident set size: %llu bytes (",
             (unsigned long long)ru.max_rss_bytes);
    ck_assert_ptr_nonnull(strstr(buf, rss));
}
END_TEST

/* ---- probe_current_rss ----------------------------------------------------------- */

START_TEST(current_rss_errors)
{
    ck_assert_int_eq(probe_current_rss(NULL), PROBE_EINVAL);
}
END_TEST

START_TEST(current_rss_is_now_not_the_peak)
{
    size_t now = 0;
    probe_rusage ru;

    errno = 4242;
    ck_assert_int_eq(probe_current_rss(&now), 0);
    ck_assert_int_eq(errno, 4242);
    ck_assert_int_eq(probe_getrusage(PROBE_RUSAGE_SELF, &ru), 0);
    /* In bytes: more than a MiB (in pages or KiB it would be far less), and no more
     * than the peak read after it (plus the kernel's per-CPU counter slack). */
    ck_assert_uint_gt(now, 1 * MIB);
    ck_assert_uint_le(now, ru.max_rss_bytes + 4 * MIB);
}
END_TEST

START_TEST(current_rss_follows_memory)
{
    const size_t size = 32 * MIB;
    size_t before, touched, after;

    /* Fresh pages from mmap (malloc might hand back memory already resident). */
    ck_assert_int_eq(probe_current_rss(&before), 0);
    unsigned char *mem =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(mem != MAP_FAILED);
    memset(mem, 0x5a, size);
    ck_assert_int_eq(probe_current_rss(&touched), 0);
    ck_assert_int_eq(munmap(mem, size), 0);
    ck_assert_int_eq(probe_current_rss(&after), 0);

    /* It grows by the 32 MiB (less a margin for the kernel's counter batching) and,
     * being the current size and not the peak, falls back when they are unmapped. */
    ck_assert_msg(touched >= before + size - 4 * MIB, "before %zu, after touching %zu",
                  before, touched);
    ck_assert_msg(after + size - 4 * MIB <= touched, "touched %zu, after munmap %zu",
                  touched, after);
}
END_TEST

static volatile sig_atomic_t handler_rc = 1;
static volatile size_t handler_bytes;

static void
rss_in_handler(int sig)
{
    size_t bytes = 0;

    (void)sig;
    handler_rc = probe_current_rss(&bytes);
    handler_bytes = bytes;
}

START_TEST(current_rss_in_a_signal_handler)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = rss_in_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    errno = 4242;
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(errno, 4242);
    ck_assert_int_eq(handler_rc, 0);
    ck_assert_uint_gt(handler_bytes, 1 * MIB);
}
END_TEST

/* Open fails: with no descriptor left, the error comes back as -errno (EMFILE) and
 * errno is the caller's. */
static void
child_rss_open_fails(void)
{
    size_t bytes = 12345;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    CHILD_CHECK(fd >= 0);
    close(fd);
    /* The lowest free descriptor is fd; allow only those below it. */
    probe_rlimit lim;
    CHILD_CHECK_EQ(probe_getrlimit(PROBE_RLIMIT_NOFILE, &lim), 0);
    lim.soft = (uint64_t)fd;
    CHILD_CHECK_EQ(probe_setrlimit(PROBE_RLIMIT_NOFILE, &lim), 0);
    errno = 4242;
    CHILD_CHECK_EQ(probe_current_rss(&bytes), -EMFILE);
    CHILD_CHECK_EQ(errno, 4242);
    CHILD_CHECK_EQ(bytes, 12345); /* not written on failure */
}

START_TEST(current_rss_open_fails)
{
    run_in_child("current_rss_open_fails", child_rss_open_fails);
}
END_TEST

/* No /proc: PROBE_ENOTSUP. A private mount namespace with an empty tmpfs over /proc
 * (a user namespace too, when not root); skipped where neither is allowed. */
static void
child_rss_without_proc(void)
{
    size_t bytes = 12345;

    if (unshare(CLONE_NEWNS) < 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        child_skip("cannot make a mount namespace (unshare) to hide /proc");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("none", "/proc", "tmpfs", 0, "size=64k") < 0)
        child_skip("cannot mount a tmpfs over /proc in a mount namespace");
    CHILD_CHECK(access("/proc/self/statm", F_OK) < 0 && errno == ENOENT);
    errno = 4242;
    CHILD_CHECK_EQ(probe_current_rss(&bytes), PROBE_ENOTSUP);
    CHILD_CHECK_EQ(errno, 4242);
    CHILD_CHECK_EQ(bytes, 12345);
}

START_TEST(current_rss_without_proc)
{
    run_in_child("current_rss_without_proc", child_rss_without_proc);
}
END_TEST

static Suite *
rusage_limits_suite(void)
{
    Suite *s = suite_create("rusage-limits");
    TCase *tc;

    tc = tcase_create("names");
    tcase_add_test(tc, rlimit_names_round_trip);
    tcase_add_test(tc, rlimit_from_name_ignores_case);
    tcase_add_test(tc, rlimit_name_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, getrlimit_matches_the_system);
    tcase_add_test(tc, getrlimit_errors);
    tcase_add_test(tc, setrlimit_sets_and_reads_back);
    tcase_add_test(tc, setrlimit_errors);
    tcase_add_test(tc, setrlimit_raise_hard_is_eperm);
    suite_add_tcase(s, tc);

    tc = tcase_create("format");
    tcase_add_test(tc, format_block);
    tcase_add_test(tc, format_units);
    tcase_add_test(tc, format_extremes);
    tcase_add_test(tc, format_truncates_like_snprintf);
    tcase_add_test(tc, format_errors);
    tcase_add_test(tc, format_a_real_reading);
    suite_add_tcase(s, tc);

    tc = tcase_create("current_rss");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, current_rss_errors);
    tcase_add_test(tc, current_rss_is_now_not_the_peak);
    tcase_add_test(tc, current_rss_follows_memory);
    tcase_add_test(tc, current_rss_in_a_signal_handler);
    tcase_add_test(tc, current_rss_open_fails);
    tcase_add_test(tc, current_rss_without_proc);
    suite_add_tcase(s, tc);

    return s;
}

int
main(void)
{
    return test_run(rusage_limits_suite());
}
