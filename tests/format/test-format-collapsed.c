/* The "collapsed" formatter: folded stacks that FlameGraph and speedscope read. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

#include "../common.h"

/* Check caps the size of a failure message: a report goes to stderr instead. */
#define assert_report(cond, report, ...)                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "Assertion '%s' failed; the report:\n%s\n", #cond,           \
                    (report));                                                           \
            ck_abort_msg(__VA_ARGS__);                                                   \
        }                                                                                \
    } while (0)

/* ---- recorded workloads --------------------------------------------------------- */

/* Long enough that every scope below has some self time on any clock. */
static void
sleep_us(long us)
{
    struct timespec ts = {0, us * 1000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void
tc_lex(void)
{
    PROBE_SCOPE("tc_lex");
    sleep_us(200);
}

static void
tc_parse(void)
{
    PROBE_SCOPE("tc_parse");
    sleep_us(200);
    for (int i = 0; i < 3; i++)
        tc_lex();
}

static void
tc_emit(void)
{
    PROBE_SCOPE("tc_emit");
    sleep_us(200);
}

static void
tc_rec(int n)
{
    PROBE_SCOPE("tc_rec");
    sleep_us(200);
    if (n > 0)
        tc_rec(n - 1);
}

/* main → parse (×2) → lex (×3 each); main → emit; main → lex; rec → rec → rec;
 * lex at top level too. */
static void
tc_main(void)
{
    PROBE_SCOPE("tc_main");
    sleep_us(200);
    tc_parse();
    tc_parse();
    tc_emit();
    tc_lex();
}

static void
tc_program(void)
{
    tc_main();
    tc_rec(2);
    tc_lex();
}

/* The paths tc_program() makes, and the calls on each. */
static const struct {
    const char *path;
    uint64_t calls;
} tc_expected[] = {
    {"tc_main", 1},         {"tc_main;tc_parse", 2},     {"tc_main;tc_parse;tc_lex", 6},
    {"tc_main;tc_emit", 1}, {"tc_main;tc_lex", 1},       {"tc_rec", 1},
    {"tc_rec;tc_rec", 1},   {"tc_rec;tc_rec;tc_rec", 1}, {"tc_lex", 1},
};
#define TC_NEXPECTED (sizeof(tc_expected) / sizeof(tc_expected[0]))

/* ';' and ' ' split frames and weights; newline, tab, other control bytes and DEL
 * could break the line. */
#define TC_ODD_NAME "odd;name with space\nnewline\ttab\x01\x1f\x7f;end \xc3\xa9"
#define TC_ODD_SAFE "odd_name_with_space_newline_tab____end_\xc3\xa9"

static void
tc_odd(void)
{
    PROBE_SCOPE(TC_ODD_NAME);
    sleep_us(200);
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
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(strlen(buf), len);
    return buf;
}

struct folded {
    char path[512];
    uint64_t weight;
};

/*
 * Parse every line of @text as "path weight", failing the test on a line that is
 * not one: no empty frame, the weight a positive decimal integer after the last
 * space, no other space. @return the number of lines, at most @max.
 */
static size_t
parse_folded(const char *text, struct folded *out, size_t max)
{
    size_t n = 0;

    assert_report(*text == '\0' || text[strlen(text) - 1] == '\n', text,
                  "the output does not end with a newline");
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p);
        const char *sp = memrchr(p, ' ', len);

        assert_report(sp && sp > p, text, "a line without \"path weight\"");
        assert_report(memchr(p, ' ', (size_t)(sp - p)) == NULL, text,
                      "a space inside a path");
        assert_report((size_t)(sp - p) < sizeof(out->path), text, "a path too long");
        assert_report(n < max, text, "more than %zu lines", max);

        const char *digits = sp + 1;
        size_t ndigits = (size_t)(nl - digits);

        assert_report(ndigits > 0 && strspn(digits, "0123456789") == ndigits, text,
                      "a weight that is not an integer");
        assert_report(digits[0] != '0', text, "a zero weight, or a leading zero");

        memcpy(out[n].path, p, (size_t)(sp - p));
        out[n].path[sp - p] = '\0';
        out[n].weight = strtoull(digits, NULL, 10);
        assert_report(out[n].path[0] != ';' && !strstr(out[n].path, ";;") &&
                          out[n].path[strlen(out[n].path) - 1] != ';',
                      text, "an empty frame in \"%s\"", out[n].path);
        for (const char *c = out[n].path; *c; c++)
            assert_report((unsigned char)*c >= 0x20 && *c != 0x7f, text,
                          "a control byte in a path");
        n++;
        p = nl + 1;
    }
    return n;
}

static const struct folded *
find_path(const struct folded *v, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].path, path) == 0)
            return &v[i];
    }
    return NULL;
}

/* ---- tests -------------------------------------------------------------------- */

/* weight=calls: exactly the expected paths, each once, with its calls. */
START_TEST(collapsed_paths_and_calls)
{
    struct folded v[64];

    tc_program();

    char *text = report("collapsed:weight=calls");
    size_t n = parse_folded(text, v, 64);

    assert_report(n == TC_NEXPECTED, text, "%zu lines, want %zu", n, TC_NEXPECTED);
    for (size_t i = 0; i < TC_NEXPECTED; i++) {
        const struct folded *f = find_path(v, n, tc_expected[i].path);

        assert_report(f != NULL, text, "no line for \"%s\"", tc_expected[i].path);
        assert_report(f->weight == tc_expected[i].calls, text,
                      "\"%s\" has %" PRIu64 " calls, want %" PRIu64, f->path, f->weight,
                      tc_expected[i].calls);
        for (size_t j = 0; j < n; j++)
            assert_report(&v[j] == f || strcmp(v[j].path, f->path) != 0, text,
                          "\"%s\" twice", f->path);
    }
    free(text);
}
END_TEST

/* The default weight is self time: the same paths (every scope above sleeps), and
 * the weights add up to the top-level paths' total time. */
START_TEST(collapsed_self_sums_to_roots)
{
    struct folded v[64];

    tc_program();

    probe_snapshot *snap = test_snap();
    char *text = NULL, *explicit = NULL;

    ck_assert_int_eq(probe_snapshot_format(snap, "collapsed", &text, NULL), 0);
    ck_assert_int_eq(
        probe_snapshot_format(snap, "collapsed:weight=self_ns", &explicit, NULL), 0);
    ck_assert_str_eq(text, explicit);

    size_t n = parse_folded(text, v, 64);

    assert_report(n == TC_NEXPECTED, text, "%zu lines, want %zu", n, TC_NEXPECTED);
    for (size_t i = 0; i < TC_NEXPECTED; i++)
        assert_report(find_path(v, n, tc_expected[i].path) != NULL, text,
                      "no line for \"%s\"", tc_expected[i].path);

    uint64_t self = 0, roots = 0;
    size_t nodes = probe_snapshot_node_count(snap);

    for (size_t i = 0; i < n; i++)
        self += v[i].weight;
    for (size_t i = 0; i < nodes; i++) {
        const probe_node_info *node = probe_snapshot_node(snap, i);

        if (node->parent == PROBE_NODE_ROOT)
            roots += node->total_ns;
    }
    /* Each node's time is rounded to whole nanoseconds on its own. */
    uint64_t diff = self > roots ? self - roots : roots - self;

    assert_report(diff <= nodes, text,
                  "self times add up to %" PRIu64 " ns, the roots' totals to %" PRIu64,
                  self, roots);
    /* tc_main's line is its own self time, not its total. */
    const struct folded *m = find_path(v, n, "tc_main");
    const probe_site_info *site = test_site(snap, "tc_main");

    ck_assert_uint_eq(m->weight, site->self_ns);
    ck_assert_uint_lt(m->weight, site->total_ns);
    free(text);
    free(explicit);
    probe_snapshot_free(snap);
}
END_TEST

/* A path with no weight is left out; its children are not. */
START_TEST(collapsed_skips_zero_weight)
{
    struct folded v[16];
    char *text;

    {
        PROBE_SCOPE("tc_open");
        tc_emit();
        /* tc_open has not completed a call yet. */
        text = report("collapsed:weight=calls");
    }

    size_t n = parse_folded(text, v, 16);

    assert_report(n == 1, text, "%zu lines, want 1", n);
    ck_assert_str_eq(v[0].path, "tc_open;tc_emit");
    ck_assert_uint_eq(v[0].weight, 1);
    free(text);
}
END_TEST

START_TEST(collapsed_sanitizes_names)
{
    struct folded v[16];

    {
        PROBE_SCOPE("tc_outer");
        tc_odd();
    }

    char *text = report("collapsed:weight=calls");
    size_t n = parse_folded(text, v, 16);

    assert_report(n == 2, text, "%zu lines, want 2", n);
    assert_report(find_path(v, n, "tc_outer;" TC_ODD_SAFE) != NULL, text,
                  "no line for the odd name, sanitized");
    free(text);
}
END_TEST

/* Nothing recorded since the reset: no line at all. */
START_TEST(collapsed_empty)
{
    char *text = report("collapsed");

    ck_assert_str_eq(text, "");
    free(text);
}
END_TEST

START_TEST(collapsed_rejects_unknown_options)
{
    static const char *const bad[] = {
        "collapsed:weight=total",
        "collapsed:weight=",
        "collapsed:weight",
        "collapsed:sort=self",
        "collapsed:weight=calls,",
        "collapsed:,",
        "collapsed:weight=CALLS",
        "collapsed:weights=calls",
        "collapsed:x",
        "collapsed:weight=self_ns,weight=bogus",
    };
    static const char *const good[] = {
        "collapsed:",
        "collapsed:weight=self_ns",
        "collapsed:weight=calls",
        "collapsed:weight=calls,weight=self_ns",
    };
    char path[] = "probe-collapsed-XXXXXX"; /* in the working directory */
    char *buf = (char *)1;

    tc_emit();

    probe_snapshot *snap = test_snap();

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(probe_snapshot_format(snap, bad[i], &buf, NULL) == PROBE_EINVAL,
                      "\"%s\" accepted", bad[i]);
        ck_assert_ptr_eq(buf, (char *)1);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char *out = NULL;

        ck_assert_msg(probe_snapshot_format(snap, good[i], &out, NULL) == 0,
                      "\"%s\" refused", good[i]);
        free(out);
    }
    probe_snapshot_free(snap);

    /* Checked before the snapshot is taken or the file created. */
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    close(fd);
    unlink(path);
    ck_assert_int_eq(probe_report_write(path, "collapsed:weight=bogus"), PROBE_EINVAL);
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert_int_eq(probe_report_fd(STDOUT_FILENO, "collapsed:bogus"), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_write(path, "collapsed:weight=calls"), 0);
    ck_assert_int_eq(access(path, F_OK), 0);
    unlink(path);
}
END_TEST

static Suite *
collapsed_suite(void)
{
    Suite *s = suite_create("format-collapsed");
    TCase *tc = tcase_create("collapsed");

    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, collapsed_paths_and_calls);
    tcase_add_test(tc, collapsed_self_sums_to_roots);
    tcase_add_test(tc, collapsed_skips_zero_weight);
    tcase_add_test(tc, collapsed_sanitizes_names);
    tcase_add_test(tc, collapsed_empty);
    tcase_add_test(tc, collapsed_rejects_unknown_options);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(collapsed_suite());
}
