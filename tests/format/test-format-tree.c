/* The "tree" formatter: the sampled stacks of a real, short sampler run as a call
 * tree. Built with frame pointers and exported symbols so that the samples name the
 * loops below. */
#include <inttypes.h>

#include "../common.h"

#include <probe/sampler.h>

/* Check caps the size of a failure message: a report goes to stderr instead. */
#define assert_report(cond, report, ...)                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "Assertion '%s' failed; the report:\n%s\n", #cond,           \
                    (report));                                                           \
            ck_abort_msg(__VA_ARGS__);                                                   \
        }                                                                                \
    } while (0)

/* ---- the sampled workload -------------------------------------------------------- */

static volatile uint64_t sink;

/* Exported (not static) so that dladdr() names them. */
void tree_test_heavy(uint64_t n);
void tree_test_light(uint64_t n);
void tree_test_outer(uint64_t iters);

__attribute__((noinline)) void
tree_test_heavy(uint64_t n)
{
    uint64_t x = sink;
    for (uint64_t i = 0; i < n; i++)
        x = x * 6364136223846793005u + i;
    sink = x;
}

__attribute__((noinline)) void
tree_test_light(uint64_t n)
{
    uint64_t x = sink;
    for (uint64_t i = 0; i < n; i++)
        x = x * 2862933555777941757u + i;
    sink = x;
}

/* About 300 ms of CPU: 70% in heavy, 30% in light, all inside a scope. */
__attribute__((noinline)) void
tree_test_outer(uint64_t iters)
{
    PROBE_SCOPE("tree_work");
    uint64_t start = test_cpu_ns(CLOCK_THREAD_CPUTIME_ID);

    uint64_t rnd = 88172645463325252u;

    /* Rounds of random length: a fixed one can beat with the kernel's tick and put
     * every sample in the same loop. */
    while (test_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - start < 300000000u) {
        rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
        uint64_t round = iters / 4 + rnd % (iters + 1);
        tree_test_heavy(round * 7 / 10);
        tree_test_light(round * 3 / 10);
    }
}

/* Iterations of the heavy loop in about 1 ms of CPU. */
static uint64_t
calibrate(void)
{
    uint64_t n = 100000, t0 = test_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    tree_test_heavy(n);
    uint64_t dt = test_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
    return dt ? n * 1000000u / dt : n;
}

static void
sample_workload(void)
{
    probe_reset();
    probe_thread_name("tree-main"); /* known to libprobe: sampled */

    uint64_t iters = calibrate();

    ck_assert_int_eq(probe_sampler_start(NULL), 0);
    tree_test_outer(iters);
    ck_assert_int_eq(probe_sampler_stop(), 0);
}

/* ---- helpers ------------------------------------------------------------------ */

static char *
report(const char *format)
{
    probe_snapshot *snap = test_snap();
    char *buf = NULL;
    size_t len = 0;
    int r = probe_snapshot_format(snap, format, &buf, &len);

    probe_snapshot_free(snap);
    ck_assert_msg(r == 0, "probe_snapshot_format(\"%s\") = %d (%s)", format, r,
                  probe_strerror(r));
    ck_assert_uint_eq(strlen(buf), len);
    return buf;
}

/* One line of the tree: "total% self% samples time unit  <indent>name". */
struct tree_line {
    double total, self;
    unsigned long samples;
    unsigned indent; /* depth: two spaces a level */
    char name[256];
};

/* Parse @line; 0 if it is not a node line (headers, blank lines). */
static int
parse_line(const char *line, struct tree_line *out)
{
    char unit[16];
    double time;
    int end = 0;

    if (sscanf(line, " %lf%% %lf%% %lu %lf %15s%n", &out->total, &out->self,
               &out->samples, &time, unit, &end) != 5)
        return 0;

    const char *p = line + end;
    size_t spaces = strspn(p, " ");

    ck_assert_msg(spaces >= 2 && spaces % 2 == 0, "bad indentation: %s", line);
    out->indent = (unsigned)(spaces - 2) / 2;
    p += spaces;

    size_t n = strcspn(p, "\n");

    if (n >= sizeof(out->name))
        n = sizeof(out->name) - 1;
    memcpy(out->name, p, n);
    out->name[n] = '\0';
    return 1;
}

/* Node lines of @buf, at most @max, into @lines. @return how many. */
static size_t
parse_lines(const char *buf, struct tree_line *lines, size_t max)
{
    size_t n = 0;

    for (const char *p = buf; *p && n < max;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char line[512];

        if (len >= sizeof(line))
            len = sizeof(line) - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        if (parse_line(line, &lines[n]))
            n++;
        p += len + (nl ? 1 : 0);
    }
    return n;
}

#define MAX_LINES 4000

static long
find_line(const struct tree_line *lines, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(lines[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

/* ---- tests -------------------------------------------------------------------- */

START_TEST(tree_shows_sampled_threads)
{
    sample_workload();

    char *buf = report("tree:threshold=0");
    char header[128];
    struct tree_line *lines = calloc(MAX_LINES, sizeof(*lines));

    ck_assert_ptr_nonnull(lines);
    snprintf(header, sizeof(header),
             "\nThread tree-main (tid %" PRIu64 "): ", test_gettid());
    assert_report(strstr(buf, "Sampled call tree (CPU time, 1.000 ms interval)"), buf,
                  "no report header");
    assert_report(strstr(buf, header), buf, "no thread header");
    assert_report(strstr(buf, " samples, "), buf, "no sample count in the header");

    size_t n = parse_lines(buf, lines, MAX_LINES);

    assert_report(n > 0, buf, "no node lines");
    for (size_t i = 0; i < n; i++) {
        assert_report(lines[i].total >= 0 && lines[i].total <= 100, buf, "total %.1f",
                      lines[i].total);
        assert_report(lines[i].self >= 0 && lines[i].self <= lines[i].total, buf,
                      "self %.1f", lines[i].self);
        /* A child is one level under the line before it, or shallower. */
        if (i > 0)
            assert_report(lines[i].indent <= lines[i - 1].indent + 1, buf,
                          "line %zu jumps in depth", i);
        else
            assert_report(lines[i].indent == 0, buf, "first line not a root");
    }

    long heavy = find_line(lines, n, "tree_test_heavy");
    long light = find_line(lines, n, "tree_test_light");
    long outer = find_line(lines, n, "tree_test_outer");
    long scope = find_line(lines, n, "[scope tree_work]");

    /* tree_test_outer itself may be missing: it spends little time of its own, and
     * the frame-pointer walk may not see the caller of the interrupted function. */
    assert_report(heavy >= 0 && light >= 0, buf, "a loop is missing");
    assert_report(lines[heavy].total >= lines[light].total, buf,
                  "heavy %.1f < light %.1f", lines[heavy].total, lines[light].total);
    assert_report(lines[heavy].total > 40, buf, "heavy only %.1f%%", lines[heavy].total);
    /* Children sit one level under their parent, and have no more time. */
    for (size_t i = 0; i < n; i++) {
        long parent = (long)i - 1;

        if (lines[i].indent == 0)
            continue;
        while (parent >= 0 && lines[parent].indent >= lines[i].indent)
            parent--;
        assert_report(parent >= 0 && lines[parent].indent + 1 == lines[i].indent, buf,
                      "line %zu has no parent", i);
        assert_report(lines[parent].total + 0.05 >= lines[i].total, buf,
                      "%s has more time than its parent %s", lines[i].name,
                      lines[parent].name);
    }
    /* The scope is shown inside the frame that opened it (tree_test_outer), or, when
     * the sample lacks that frame, under the deepest frame (the loop). */
    assert_report(scope >= 0, buf, "no [scope tree_work] line");
    assert_report(
        (outer >= 0 && scope == outer + 1 &&
         lines[scope].indent == lines[outer].indent + 1) ||
            (scope == heavy + 1 && lines[scope].indent == lines[heavy].indent + 1),
        buf, "the scope is not inside a native frame");
    if (lines[heavy].indent == lines[light].indent)
        assert_report(heavy < light, buf, "siblings not sorted by time");
    free(lines);
    free(buf);
}
END_TEST

START_TEST(tree_threshold_collapses)
{
    sample_workload();

    char *all = report("tree:threshold=0");
    char *some = report("tree");
    char *roots = report("tree:threshold=100");
    struct tree_line *lines = calloc(MAX_LINES, sizeof(*lines));

    ck_assert_ptr_nonnull(lines);

    size_t nall = parse_lines(all, lines, MAX_LINES);
    size_t nsome = parse_lines(some, lines, MAX_LINES);
    size_t nroots = parse_lines(roots, lines, MAX_LINES);

    assert_report(nall >= nsome && nsome > nroots, roots, "%zu, %zu, %zu lines", nall,
                  nsome, nroots);
    assert_report(strstr(roots, "\xe2\x80\xa6 "), roots, "no collapsed line");
    for (size_t i = 0; i < nroots; i++) {
        int collapsed = strncmp(lines[i].name, "\xe2\x80\xa6 ", 4) == 0;

        assert_report(lines[i].indent == (collapsed ? 1u : 0u), roots,
                      "line %zu: %s at depth %u", i, lines[i].name, lines[i].indent);
        if (collapsed)
            assert_report(strstr(lines[i].name, "at or below 100.0%"), roots, "%s",
                          lines[i].name);
    }
    assert_report(!strstr(roots, "tree_test_heavy"), roots, "heavy not collapsed");
    free(lines);
    free(all);
    free(some);
    free(roots);
}
END_TEST

START_TEST(tree_hide_libs)
{
    sample_workload();

    char *buf = report("tree:hide_libs=1,threshold=0");
    struct tree_line *lines = calloc(MAX_LINES, sizeof(*lines));

    ck_assert_ptr_nonnull(lines);

    size_t n = parse_lines(buf, lines, MAX_LINES);

    assert_report(find_line(lines, n, "tree_test_heavy") >= 0, buf, "heavy missing");
    /* Only a sample with no symbol at all keeps one unsymbolized frame, as a root. */
    for (size_t i = 0; i < n; i++) {
        if (strstr(lines[i].name, "+0x"))
            assert_report(lines[i].indent == 0, buf, "unsymbolized frame %s",
                          lines[i].name);
    }
    free(lines);
    free(buf);
}
END_TEST

START_TEST(tree_rejects_unknown_options)
{
    static const char *const bad[] = {
        "tree:bogus=1",         "tree:threshold",    "tree:threshold=",
        "tree:threshold=101",   "tree:threshold=-1", "tree:threshold=abc",
        "tree:threshold=nan",   "tree:hide_libs=2",  "tree:hide_libs=1,",
        "tree:threshold=1,x=y",
    };
    probe_reset();

    probe_snapshot *snap = test_snap();
    char *buf = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(probe_snapshot_format(snap, bad[i], &buf, NULL) == PROBE_EINVAL,
                      "%s accepted", bad[i]);
    ck_assert_ptr_null(buf);
    /* Checked before a snapshot is taken: EINVAL, not ENODATA. */
    ck_assert_int_eq(probe_report_fd(1, "tree:bogus=1"), PROBE_EINVAL);
    ck_assert_int_eq(
        probe_snapshot_format(snap, "tree:threshold=2.5,hide_libs=0", &buf, NULL), 0);
    free(buf);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(tree_without_samples)
{
    probe_reset();
    {
        PROBE_SCOPE("tree_unsampled");
    }

    char *buf = report("tree");

    assert_report(strcmp(buf, "No samples: the sampler never ran "
                              "(probe_sampler_start(), <probe/sampler.h>).\n") == 0,
                  buf, "not the no-samples line");
    free(buf);
}
END_TEST

static Suite *
tree_suite(void)
{
    Suite *s = suite_create("format-tree");
    TCase *tc = tcase_create("tree");

    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, tree_shows_sampled_threads);
    tcase_add_test(tc, tree_threshold_collapses);
    tcase_add_test(tc, tree_hide_libs);
    tcase_add_test(tc, tree_rejects_unknown_options);
    tcase_add_test(tc, tree_without_samples);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(tree_suite());

    srunner_run_all(sr, CK_NORMAL);

    int failed = srunner_ntests_failed(sr);

    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
