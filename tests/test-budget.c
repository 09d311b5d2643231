/* Budgets: probe_budget_measure(), probe_budget_check() and <probe/check.h>.
 *
 * Run natively, the "native" cases run: no instruction source on a machine without
 * counters, CPU budgets, baselines that name the scope that regressed. Run under
 * `valgrind --tool=callgrind` (tests/budget/meson.build registers that run), the
 * "callgrind" cases run instead: exact, repeatable counts and soft limits.
 *
 * Failures of the Check macros are asserted on by running this program again with
 * BUDGET_TEST_INNER set: it then runs a suite of tests meant to fail and prints
 * their messages, which the outer test reads. */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <probe/check.h>

#include "common.h"

/* About 1 ns an iteration natively. */
__attribute__((noinline)) static void
spin_work(void *arg)
{
    unsigned n = *(const unsigned *)arg;
    volatile unsigned sink = 0;

    for (unsigned i = 0; i < n; i++)
        sink += i;
}

static unsigned spin_n = 200000;
/* About 1 ms: long enough for the minimum of 11 runs to be steady. */
static unsigned big_n = 2000000;

/* ---- instruction counts under callgrind -------------------------------------- */

#if defined(__x86_64__) || defined(__aarch64__)
#define HAVE_ASM_LOOP 1
/* Exactly two instructions an iteration, whatever the compiler does around it. */
__attribute__((noinline)) static void
asm_loop(void *arg)
{
    uint64_t n = *(const uint64_t *)arg;
#if defined(__x86_64__)
    __asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n) : : "cc");
#else
    __asm__ volatile("1: subs %0, %0, #1\n\tb.ne 1b" : "+r"(n) : : "cc");
#endif
}
#endif

static void
make_tmpdir(char *dir, size_t len)
{
    snprintf(dir, len, "%s/probe-budget-XXXXXX", P_tmpdir);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
}

static char *
read_text(const char *path)
{
    static char buf[65536];
    int fd = open(path, O_RDONLY);

    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    return buf;
}

START_TEST(callgrind_counts_are_identical)
{
    probe_budget_result a, b;

    ck_assert_int_eq(probe_budget_measure(spin_work, &spin_n, NULL, &a), 0);
    ck_assert_int_eq(probe_budget_measure(spin_work, &spin_n, NULL, &b), 0);
    ck_assert_msg(a.has_instructions, "no instructions: %s", a.instructions_note);
    ck_assert_int_eq(a.instructions_source, PROBE_BUDGET_SOURCE_CALLGRIND);
    ck_assert_str_eq(a.instructions_source_name, "callgrind");
    ck_assert_int_eq(a.instructions_exact, 1);
    ck_assert_uint_eq(a.runs, 3);
    ck_assert_uint_eq(a.instructions_min, a.instructions_max);
    ck_assert_uint_eq(a.instructions_min, b.instructions_min);
    ck_assert_uint_eq(b.instructions_min, b.instructions_max);
    /* At least one add and one compare an iteration. */
    ck_assert_uint_gt(a.instructions_min, 2 * (uint64_t)spin_n);
}
END_TEST

#ifdef HAVE_ASM_LOOP
START_TEST(callgrind_counts_a_known_loop)
{
    uint64_t n = 100000;
    probe_budget_result r;

    ck_assert_int_eq(probe_budget_measure(asm_loop, &n, NULL, &r), 0);
    ck_assert_msg(r.has_instructions, "no instructions: %s", r.instructions_note);
    /* 2n in the loop, plus the load of n; the return an empty function has too is
     * not counted. callgrind_annotate gives asm_loop 200,002 Ir for n = 100,000,
     * and this measures 200,001. */
    uint64_t want = 2 * n;
    uint64_t diff = r.instructions_min > want ? r.instructions_min - want
                                              : want - r.instructions_min;
    ck_assert_msg(diff * 100 <= want, "%llu instructions, expected %llu within 1 %%",
                  (unsigned long long)r.instructions_min, (unsigned long long)want);
}
END_TEST

START_TEST(callgrind_soft_limit_catches_five_percent)
{
    char dir[256], path[300], msg[PROBE_BUDGET_MSG_MAX];
    uint64_t n = 100000;
    probe_budget_options opts = {.soft_limit_pct = 2};

    make_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/baseline.txt", dir);
    opts.baseline = path;
    int rc = probe_budget_check("asm_loop", PROBE_BUDGET_INSTRUCTIONS, asm_loop, &n, 0, &opts,
                                msg, sizeof(msg));
    ck_assert_msg(rc == PROBE_BUDGET_PASS, "rc %d: %s", rc, msg);
    ck_assert_msg(strstr(msg, "baseline recorded"), "%s", msg);
    ck_assert_msg(strstr(read_text(path), "asm_loop\tinstructions/callgrind\t-\t"), "%s",
                  read_text(path));

    n = 105000;     /* +5 % instructions */
    rc = probe_budget_check("asm_loop", PROBE_BUDGET_INSTRUCTIONS, asm_loop, &n, 0, &opts,
                            msg, sizeof(msg));
    ck_assert_msg(rc == PROBE_BUDGET_OVER, "rc %d: %s", rc, msg);
    ck_assert_msg(strstr(msg, "asm_loop: 210,00") && strstr(msg, "instructions > baseline 200,00") &&
                      strstr(msg, "+ 2 % (+5.0 %, callgrind, exact, 3 runs; baseline "),
                  "%s", msg);

    opts.soft_limit_pct = 10;
    rc = probe_budget_check("asm_loop", PROBE_BUDGET_INSTRUCTIONS, asm_loop, &n, 0, &opts,
                            msg, sizeof(msg));
    ck_assert_msg(rc == PROBE_BUDGET_PASS, "rc %d: %s", rc, msg);
    ck_assert_msg(strstr(msg, "within baseline"), "%s", msg);

    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(callgrind_hard_limit_message)
{
    char msg[PROBE_BUDGET_MSG_MAX];
    uint64_t n = 100000;
    probe_budget_options opts = {.baseline = ""};

    int rc = probe_budget_check("asm_loop", PROBE_BUDGET_INSTRUCTIONS, asm_loop, &n, 160000,
                                &opts, msg, sizeof(msg));
    ck_assert_msg(rc == PROBE_BUDGET_OVER, "rc %d: %s", rc, msg);
    ck_assert_msg(strncmp(msg, "asm_loop: 200,00", 16) == 0 &&
                      strstr(msg, " instructions > budget 160,000 (+25 %, callgrind, exact, 3 runs)"),
                  "%s", msg);
}
END_TEST
#endif

START_TEST(callgrind_dump_not_found_is_unavailable)
{
    char dir[256], pattern[300];
    const char *was = getenv("PROBE_CALLGRIND_OUT_FILE");
    char *saved = was ? strdup(was) : NULL;
    probe_budget_result r;

    /* Dumps go where callgrind was told, not where libprobe looks: no count. */
    make_tmpdir(dir, sizeof(dir));
    snprintf(pattern, sizeof(pattern), "%s/elsewhere.%%p", dir);
    setenv("PROBE_CALLGRIND_OUT_FILE", pattern, 1);
    ck_assert_int_eq(probe_budget_measure(spin_work, &spin_n, NULL, &r), 0);
    if (saved)
        setenv("PROBE_CALLGRIND_OUT_FILE", saved, 1);
    else
        unsetenv("PROBE_CALLGRIND_OUT_FILE");
    free(saved);
    rmdir(dir);
    ck_assert_int_eq(r.has_instructions, 0);
    ck_assert_int_eq(r.instructions_source, PROBE_BUDGET_SOURCE_NONE);
    ck_assert_uint_eq(r.instructions_min, 0);
    ck_assert_msg(strstr(r.instructions_note, "no callgrind dump was found"), "%s",
                  r.instructions_note);
    /* The same process counts again once it looks in the right place. */
    ck_assert_int_eq(probe_budget_measure(spin_work, &spin_n, NULL, &r), 0);
    ck_assert_msg(r.has_instructions, "%s", r.instructions_note);
}
END_TEST

START_TEST(callgrind_skips_cpu_budgets)
{
    char msg[256];

    ck_assert_int_eq(probe_budget_check("spin_work", PROBE_BUDGET_CPU, spin_work, &spin_n, 1,
                                        NULL, msg, sizeof(msg)),
                     PROBE_BUDGET_UNMEASURED);
    ck_assert_str_eq(msg, "spin_work: CPU time not checked under Valgrind");
    /* The macros pass, the instruction budget is checked. */
    ck_assert_probe_cpu_below(spin_work, &spin_n, 1);
    ck_assert_probe_instructions_below(spin_work, &spin_n, 100 * (uint64_t)spin_n);
}
END_TEST

/* ---- natively ----------------------------------------------------------------- */

START_TEST(measure_rejects_bad_arguments)
{
    probe_budget_result r;
    probe_budget_options opts = {.runs = 1001};

    ck_assert_int_eq(probe_budget_measure(NULL, NULL, NULL, &r), PROBE_EINVAL);
    ck_assert_int_eq(probe_budget_measure(spin_work, &spin_n, NULL, NULL), PROBE_EINVAL);
    ck_assert_int_eq(probe_budget_measure(spin_work, &spin_n, &opts, &r), PROBE_EINVAL);
    ck_assert_int_eq(probe_budget_check(NULL, PROBE_BUDGET_CPU, spin_work, NULL, 0, NULL,
                                        NULL, 0),
                     PROBE_EINVAL);
    ck_assert_int_eq(probe_budget_check("x", (probe_budget_kind)7, spin_work, NULL, 0, NULL,
                                        NULL, 0),
                     PROBE_EINVAL);
}
END_TEST

START_TEST(measure_reports_runs_and_spread)
{
    probe_budget_result r;
    probe_budget_options opts = {.runs = 7, .warmup = 1};

    ck_assert_int_eq(probe_budget_measure(spin_work, &spin_n, &opts, &r), 0);
    ck_assert_uint_eq(r.runs, 7);
    ck_assert_uint_eq(r.warmup, 1);
    ck_assert_uint_gt(r.cpu_min_ns, 0);
    ck_assert_uint_le(r.cpu_min_ns, r.cpu_median_ns);
    ck_assert_uint_le(r.cpu_median_ns, r.cpu_max_ns);
    ck_assert_uint_le(r.wall_min_ns, r.wall_median_ns);
    ck_assert_uint_le(r.wall_median_ns, r.wall_max_ns);
    double spread = 100.0 * (double)(r.cpu_max_ns - r.cpu_min_ns) / (double)r.cpu_min_ns;
    ck_assert_double_eq_tol(r.cpu_spread_pct, spread, 1e-9);
    ck_assert_int_eq(r.on_valgrind, 0);

    /* The time cap stops after the first run. */
    opts.max_wall_ns = 1;
    ck_assert_int_eq(probe_budget_measure(spin_work, &spin_n, &opts, &r), 0);
    ck_assert_uint_eq(r.runs, 1);
}
END_TEST

static int
perf_counter_exists(void)
{
    struct perf_event_attr attr;

    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_HARDWARE;
    attr.config = PERF_COUNT_HW_INSTRUCTIONS;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    if (fd < 0)
        return 0;
    close((int)fd);
    return 1;
}

START_TEST(instructions_unavailable_without_a_source)
{
    probe_budget_result r;
    char msg[512];

    ck_assert_int_eq(probe_budget_measure(spin_work, &spin_n, NULL, &r), 0);
    if (perf_counter_exists()) {
        /* A machine with counters: they are used, and named. */
        ck_assert_int_eq(r.instructions_source, PROBE_BUDGET_SOURCE_PERF);
        ck_assert_str_eq(r.instructions_source_name, "perf_event_open");
        return;
    }
    ck_assert_int_eq(r.has_instructions, 0);
    ck_assert_int_eq(r.instructions_source, PROBE_BUDGET_SOURCE_NONE);
    ck_assert_str_eq(r.instructions_source_name, "none");
    ck_assert_uint_eq(r.instructions_min, 0);
    ck_assert_msg(strstr(r.instructions_note, "perf_event_open: "), "%s", r.instructions_note);
    ck_assert_int_eq(probe_budget_check("spin_work", PROBE_BUDGET_INSTRUCTIONS, spin_work,
                                        &spin_n, 1, NULL, msg, sizeof(msg)),
                     PROBE_BUDGET_UNMEASURED);
    ck_assert_msg(strncmp(msg, "spin_work: instructions not measured: perf_event_open: ", 55) == 0,
                  "%s", msg);
    /* Not measurable is not a failure: a budget of 1 instruction passes. */
    ck_assert_probe_instructions_below(spin_work, &spin_n, 1);
}
END_TEST

START_TEST(generous_cpu_budget_passes_20_times)
{
    probe_budget_result r;

    ck_assert_int_eq(probe_budget_measure(spin_work, &spin_n, NULL, &r), 0);
    /* Four times the median CPU time: CPU time, unlike wall time, does not grow
     * when other processes take the CPU. */
    uint64_t budget = 4 * r.cpu_median_ns;
    for (int i = 0; i < 20; i++)
        ck_assert_probe_cpu_below(spin_work, &spin_n, budget);
}
END_TEST

/* Runs this program's inner suite (BUDGET_TEST_INNER) with CK_FORK=@fork and
 * returns its output: each failure's message, then "\n--\n". */
static char *
run_inner(const char *fork_mode, uint64_t budget_ns)
{
    static char out[16384];
    int fds[2];
    char budget[32];

    snprintf(budget, sizeof(budget), "%llu", (unsigned long long)budget_ns);
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv("BUDGET_TEST_INNER", budget, 1);
        setenv("CK_FORK", fork_mode, 1);
        execl("/proc/self/exe", "test-budget", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "inner run: status %d", status);
    return out;
}

static void
assert_half_budget_fails(const char *fork_mode)
{
    probe_budget_result r;

    ck_assert_int_eq(probe_budget_measure(spin_work, &big_n, NULL, &r), 0);
    char *out = run_inner(fork_mode, r.cpu_min_ns / 2);
    /* "spin_work: 212.3 µs CPU > budget 105.1 µs (+102 %, thread CPU time, min of
     * 11 runs, median 215.0 µs, spread 4.1 %)" */
    char *m = strstr(out, "spin_work: ");
    ck_assert_msg(m != NULL, "no budget failure in: %s", out);
    ck_assert_msg(strstr(m, " CPU > budget ") && strstr(m, ", thread CPU time, min of 11 runs, median ") &&
                      strstr(m, ", spread "),
                  "%s", m);
    char *pct = strstr(m, "(+");
    ck_assert_msg(pct && atoi(pct + 2) > 0, "no margin: %s", m);
    /* The scope assertion's failure, too. */
    ck_assert_msg(strstr(out, "scope inner_scope: 3 calls, expected == 4"), "%s", out);
    ck_assert_msg(strstr(out, "scope inner_p99: p99 ") && strstr(out, " over 3 calls >= budget 1 ns"),
                  "%s", out);
}

START_TEST(half_budget_fails_with_message_fork)
{
    assert_half_budget_fails("yes");
}
END_TEST

START_TEST(half_budget_fails_with_message_nofork)
{
    assert_half_budget_fails("no");
}
END_TEST

struct pipeline {
    unsigned lex, parse, emit;
};

static void
run_pipeline(void *arg)
{
    const struct pipeline *p = arg;

    PROBE_SCOPE("pipeline");
    {
        PROBE_SCOPE("lex");
        spin_work((void *)&p->lex);
    }
    {
        PROBE_SCOPE("parse_tree");
        spin_work((void *)&p->parse);
    }
    {
        PROBE_SCOPE("emit");
        spin_work((void *)&p->emit);
    }
}

START_TEST(baseline_names_the_scope_that_grew)
{
    char dir[256], path[300], msg[PROBE_BUDGET_MSG_MAX];
    /* Thread CPU time of the same run varies up to 2x on a loaded 2-CPU VM: lex
     * grows 20x, the whole call about 3x. */
    struct pipeline p = {spin_n / 4, spin_n, spin_n};
    probe_budget_options opts = {.baseline = path};

    make_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/baseline.txt", dir);
    int rc = probe_budget_check("pipeline", PROBE_BUDGET_CPU, run_pipeline, &p, 0, &opts, msg,
                                sizeof(msg));
    ck_assert_msg(rc == PROBE_BUDGET_PASS, "rc %d: %s", rc, msg);
    ck_assert_msg(strstr(msg, "baseline recorded"), "%s", msg);
    const char *text = read_text(path);
    ck_assert_msg(strncmp(text, "# libprobe budget baseline", 26) == 0, "%s", text);
    const char *want[] = {"\npipeline\tcpu_ns\t-\t", "\npipeline\tself_ns\tlex\t",
                          "\npipeline\tself_ns\tparse_tree\t", "\npipeline\tself_ns\temit\t",
                          "\npipeline\tself_ns\tpipeline\t"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(text, want[i]), "no \"%s\" in:\n%s", want[i] + 1, text);

    /* lex does twenty times the work: the failure names it first. */
    p.lex = 5 * spin_n;
    rc = probe_budget_check("pipeline", PROBE_BUDGET_CPU, run_pipeline, &p, 0, &opts, msg,
                            sizeof(msg));
    ck_assert_msg(rc == PROBE_BUDGET_OVER, "rc %d: %s", rc, msg);
    ck_assert_msg(strncmp(msg, "pipeline: ", 10) == 0 && strstr(msg, " CPU > baseline "), "%s",
                  msg);
    const char *rows = strstr(msg, "(self time per run: baseline | now | change):\n");
    ck_assert_msg(rows, "%s", msg);
    rows = strchr(rows, '\n') + 1;
    ck_assert_msg(strncmp(rows, "    lex: ", 9) == 0, "lex not first:\n%s", msg);
    /* The baseline is kept, not overwritten by the failing run. */
    ck_assert_str_eq(read_text(path), text);

    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(baseline_keeps_other_lines_and_refuses_symlinks)
{
    char dir[256], path[300], link_path[300], msg[PROBE_BUDGET_MSG_MAX];
    probe_budget_options opts = {.baseline = path, .runs = 3};

    make_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/baseline.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("# reviewed by hand\nsomething else entirely\nother\tcpu_ns\t-\t5\t1\n", f);
    fclose(f);
    int rc = probe_budget_check("spin_work", PROBE_BUDGET_CPU, spin_work, &spin_n, 0, &opts,
                                msg, sizeof(msg));
    ck_assert_msg(rc == PROBE_BUDGET_PASS, "rc %d: %s", rc, msg);
    const char *text = read_text(path);
    ck_assert_msg(strstr(text, "\n# reviewed by hand\nsomething else entirely\n"
                               "other\tcpu_ns\t-\t5\t1\nspin_work\tcpu_ns\t-\t"),
                  "%s", text);

    snprintf(link_path, sizeof(link_path), "%s/link.txt", dir);
    ck_assert_int_eq(symlink(path, link_path), 0);
    opts.baseline = link_path;
    ck_assert_int_eq(probe_budget_check("spin_work", PROBE_BUDGET_CPU, spin_work, &spin_n, 0,
                                        &opts, msg, sizeof(msg)),
                     PROBE_ELOOP);
    unlink(link_path);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(scope_macros_pass)
{
    struct pipeline p = {1000, 1000, 1000};

    probe_reset();
    for (int i = 0; i < 3; i++)
        run_pipeline(&p);
    ck_assert_probe_scope_calls("lex", ==, 3);
    ck_assert_probe_scope_calls("pipeline", >=, 3);
    ck_assert_probe_scope_calls("emit", <, 4);
    /* Generous budgets: a second a call. */
    ck_assert_probe_scope_mean_below("pipeline", 1000000000);
    ck_assert_probe_scope_self_mean_below("lex", 1000000000);
    ck_assert_probe_scope_p99_below("pipeline", 1000000000);
}
END_TEST

/* ---- the inner suite: tests meant to fail ------------------------------------- */

static uint64_t inner_budget;

START_TEST(inner_cpu_half)
{
    ck_assert_probe_cpu_below(spin_work, &big_n, inner_budget);
}
END_TEST

START_TEST(inner_scope_calls)
{
    probe_reset();
    for (int i = 0; i < 3; i++) {
        PROBE_SCOPE("inner_scope");
    }
    ck_assert_probe_scope_calls("inner_scope", ==, 4);
}
END_TEST

/* A p99 budget of 1 ns for a scope that spins: fails with its figures. */
START_TEST(inner_scope_p99)
{
    probe_reset();
    for (int i = 0; i < 3; i++) {
        PROBE_SCOPE("inner_p99");
        spin_work(&big_n);
    }
    ck_assert_probe_scope_p99_below("inner_p99", 1);
}
END_TEST

static int
run_inner_suite(const char *budget)
{
    Suite *s = suite_create("budget-inner");
    TCase *tc = tcase_create("fail");

    inner_budget = strtoull(budget, NULL, 10);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, inner_cpu_half);
    tcase_add_test(tc, inner_scope_calls);
    tcase_add_test(tc, inner_scope_p99);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_SILENT);
    TestResult **failures = srunner_failures(sr);
    for (int i = 0; i < srunner_ntests_failed(sr); i++)
        printf("%s\n--\n", tr_msg(failures[i]));
    free(failures);
    srunner_free(sr);
    fflush(stdout);
    return 0;
}

int
main(void)
{
    const char *inner = getenv("BUDGET_TEST_INNER");
    if (inner)
        return run_inner_suite(inner);
    /* The tests name their baselines; the environment's must not interfere. */
    unsetenv("PROBE_BUDGET_BASELINE");
    unsetenv("PROBE_BUDGET_SOFT_LIMIT");

    Suite *s = suite_create("budget");
    TCase *tc;
    if (probe_budget_on_valgrind()) {
        /* Under callgrind everything runs some 50 times slower. */
        tc = tcase_create("callgrind");
        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, callgrind_counts_are_identical);
#ifdef HAVE_ASM_LOOP
        tcase_add_test(tc, callgrind_counts_a_known_loop);
        tcase_add_test(tc, callgrind_soft_limit_catches_five_percent);
        tcase_add_test(tc, callgrind_hard_limit_message);
#endif
        tcase_add_test(tc, callgrind_dump_not_found_is_unavailable);
        tcase_add_test(tc, callgrind_skips_cpu_budgets);
    } else {
        tc = tcase_create("native");
        tcase_set_timeout(tc, TEST_TIMEOUT);
        tcase_add_test(tc, measure_rejects_bad_arguments);
        tcase_add_test(tc, measure_reports_runs_and_spread);
        tcase_add_test(tc, instructions_unavailable_without_a_source);
        tcase_add_test(tc, generous_cpu_budget_passes_20_times);
        tcase_add_test(tc, half_budget_fails_with_message_fork);
        tcase_add_test(tc, half_budget_fails_with_message_nofork);
        tcase_add_test(tc, baseline_names_the_scope_that_grew);
        tcase_add_test(tc, baseline_keeps_other_lines_and_refuses_symlinks);
        tcase_add_test(tc, scope_macros_pass);
    }
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
