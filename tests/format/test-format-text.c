/* The "text" formatter: what a person reads must say what was recorded. */
#include <inttypes.h>
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

static volatile int never = 0;

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void
tx_inner(void)
{
    PROBE_SCOPE("tx_inner");
}

static void
tx_outer(int n)
{
    PROBE_SCOPE("tx_outer");
    for (int i = 0; i < n; i++)
        tx_inner();
}

static void
tx_rec(int n)
{
    PROBE_SCOPE("tx_rec");
    if (n > 0)
        tx_rec(n - 1);
}

static void tx_pong(int n);

static void
tx_ping(int n)
{
    PROBE_SCOPE("tx_ping");
    if (n > 0)
        tx_pong(n - 1);
}

static void
tx_pong(int n)
{
    PROBE_SCOPE("tx_pong");
    if (n > 0)
        tx_ping(n - 1);
}

static void
tx_sort_workload(void)
{
    for (int i = 0; i < 10; i++) {
        PROBE_SCOPE("tx_sort_zzz");
    }
    for (int i = 0; i < 3; i++) {
        PROBE_SCOPE("tx_sort_aaa");
    }
}

/* big_parent's total holds big_child's plus a sleep of its own, so it is larger by
 * construction; big_child's self time (a long sleep) dwarfs big_parent's. */
static void
tx_big_child(void)
{
    PROBE_SCOPE("tx_big_child");
    sleep_ms(30);
}

static void
tx_big_parent(void)
{
    PROBE_SCOPE("tx_big_parent");
    tx_big_child();
    sleep_ms(1);
}

static void
tx_lines(int n)
{
    for (int i = 0; i < n; i++)
        PROBE_LINE();
    if (never)
        PROBE_LINE();
}

static void
tx_counters(void)
{
    for (int i = 0; i < 3; i++)
        PROBE_COUNT("tx_counter", 14);
    PROBE_COUNT("tx_negative", -5);
}

/* A chain of 40 distinct scopes, deeper than the tree prints. */
static void
tx_chain_end(void)
{
}
#define CHAIN(n, next)                                                                   \
    static void tx_chain_##n(void)                                                       \
    {                                                                                    \
        PROBE_SCOPE("tx_chain_" #n);                                                     \
        next();                                                                          \
    }
/* clang-format off */
CHAIN(39, tx_chain_end)
CHAIN(38, tx_chain_39) CHAIN(37, tx_chain_38) CHAIN(36, tx_chain_37)
CHAIN(35, tx_chain_36) CHAIN(34, tx_chain_35) CHAIN(33, tx_chain_34)
CHAIN(32, tx_chain_33) CHAIN(31, tx_chain_32) CHAIN(30, tx_chain_31)
CHAIN(29, tx_chain_30) CHAIN(28, tx_chain_29) CHAIN(27, tx_chain_28)
CHAIN(26, tx_chain_27) CHAIN(25, tx_chain_26) CHAIN(24, tx_chain_25)
CHAIN(23, tx_chain_24) CHAIN(22, tx_chain_23) CHAIN(21, tx_chain_22)
CHAIN(20, tx_chain_21) CHAIN(19, tx_chain_20) CHAIN(18, tx_chain_19)
CHAIN(17, tx_chain_18) CHAIN(16, tx_chain_17) CHAIN(15, tx_chain_16)
CHAIN(14, tx_chain_15) CHAIN(13, tx_chain_14) CHAIN(12, tx_chain_13)
CHAIN(11, tx_chain_12) CHAIN(10, tx_chain_11) CHAIN(9, tx_chain_10)
CHAIN(8, tx_chain_9) CHAIN(7, tx_chain_8) CHAIN(6, tx_chain_7)
CHAIN(5, tx_chain_6) CHAIN(4, tx_chain_5) CHAIN(3, tx_chain_4)
CHAIN(2, tx_chain_3) CHAIN(1, tx_chain_2) CHAIN(0, tx_chain_1)
/* clang-format on */

/* A diamond lattice: 2^12 paths through 24 scopes, far more than the tree prints. */
static void
tx_dag_end(void)
{
}
#define DAG(n, next_a, next_b)                                                           \
    __attribute__((unused)) static void tx_dag_a##n(void)                                \
    {                                                                                    \
        PROBE_SCOPE("tx_dag_a" #n);                                                      \
        next_a();                                                                        \
        next_b();                                                                        \
    }                                                                                    \
    __attribute__((unused)) static void tx_dag_b##n(void)                                \
    {                                                                                    \
        PROBE_SCOPE("tx_dag_b" #n);                                                      \
        next_a();                                                                        \
        next_b();                                                                        \
    }
/* clang-format off */
DAG(11, tx_dag_end, tx_dag_end)
DAG(10, tx_dag_a11, tx_dag_b11) DAG(9, tx_dag_a10, tx_dag_b10)
DAG(8, tx_dag_a9, tx_dag_b9) DAG(7, tx_dag_a8, tx_dag_b8)
DAG(6, tx_dag_a7, tx_dag_b7) DAG(5, tx_dag_a6, tx_dag_b6)
DAG(4, tx_dag_a5, tx_dag_b5) DAG(3, tx_dag_a4, tx_dag_b4)
DAG(2, tx_dag_a3, tx_dag_b3) DAG(1, tx_dag_a2, tx_dag_b2)
DAG(0, tx_dag_a1, tx_dag_b1)
/* clang-format on */

/* ---- helpers ------------------------------------------------------------------ */

/* The report of everything recorded so far, in @format; free() it. */
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

/* Copy the line of @text holding @needle, at or after @from, into @out.
 * @return where the line starts in @text, or NULL. */
static const char *
line_with(const char *text, const char *from, const char *needle, char *out, size_t size)
{
    const char *hit = strstr(from ? from : text, needle);

    if (!hit)
        return NULL;

    const char *start = hit;

    while (start > text && start[-1] != '\n')
        start--;

    size_t len = strcspn(start, "\n");

    if (len >= size)
        len = size - 1;
    memcpy(out, start, len);
    out[len] = '\0';
    return start;
}

/* The row of the scope table for @name: "calls ... name (file:line function)". */
static const char *
scope_row(const char *text, const char *name, char *out, size_t size)
{
    char needle[128];
    const char *table = strstr(text, "\nScopes, by ");

    ck_assert_ptr_nonnull(table);
    snprintf(needle, sizeof(needle), "  %s (", name);
    return line_with(text, table, needle, out, size);
}

/* The first field of a row: the calls column. */
static void
first_field(const char *row, char *out, size_t size)
{
    size_t skip = strspn(row, " ");
    size_t len = strcspn(row + skip, " ");

    ck_assert_uint_lt(len, size);
    memcpy(out, row + skip, len);
    out[len] = '\0';
}

static void
assert_calls_cell(const char *text, const char *name, const char *want)
{
    char row[1024], cell[64];

    assert_report(scope_row(text, name, row, sizeof(row)) != NULL, text, "no row for %s",
                  name);
    first_field(row, cell, sizeof(cell));
    ck_assert_msg(strcmp(cell, want) == 0, "%s: calls column \"%s\", want \"%s\"\n%s",
                  name, cell, want, row);
}

/* Position of @name's row in the table, for order checks. */
static ptrdiff_t
row_pos(const char *text, const char *name)
{
    char row[1024];
    const char *at = scope_row(text, name, row, sizeof(row));

    assert_report(at != NULL, text, "no row for %s", name);
    return at - text;
}

static size_t
indent_of(const char *line)
{
    return strspn(line, " ");
}

/* ---- tests -------------------------------------------------------------------- */

START_TEST(text_table_has_names_and_calls)
{
    for (int i = 0; i < 3; i++)
        tx_outer(5);

    char *text = report("text");

    assert_calls_cell(text, "tx_outer", "3");
    assert_calls_cell(text, "tx_inner", "15");
    assert_report(strstr(text, "18 scope calls in 2 of ") != NULL, text,
                  "see the report on stderr");
    /* The row names the site's file and function. */
    char row[1024];

    ck_assert_ptr_nonnull(scope_row(text, "tx_inner", row, sizeof(row)));
    ck_assert_msg(strstr(row, "test-format-text.c:") && strstr(row, " tx_inner)"), "%s",
                  row);
    free(text);
}
END_TEST

START_TEST(text_recursive_calls_show_primitive)
{
    for (int i = 0; i < 3; i++)
        tx_rec(2);

    char *text = report("text");

    assert_calls_cell(text, "tx_rec", "9/3");
    assert_report(strstr(text, "9 scope calls (3 primitive calls)") != NULL, text,
                  "see the report on stderr");
    free(text);
}
END_TEST

START_TEST(text_never_entered_listed_after)
{
    tx_outer(1);

    char *text = report("text");
    char row[1024];
    const char *never_hdr = strstr(text, "\nScopes never entered");

    assert_report(never_hdr != NULL, text, "see the report on stderr");
    /* tx_rec never ran in this test: listed after the table, marked. */
    ck_assert_ptr_nonnull(line_with(text, never_hdr, "tx_rec (", row, sizeof(row)));
    ck_assert_msg(strstr(row, "never entered") != NULL, "%s", row);
    /* ... and not in the table above. */
    ck_assert_int_gt(row_pos(text, "tx_rec"), never_hdr - text);
    free(text);
}
END_TEST

START_TEST(text_sort_by_calls_and_name)
{
    tx_sort_workload();

    char *by_calls = report("text:sort=calls");
    char *by_name = report("text:sort=name");

    assert_report(row_pos(by_calls, "tx_sort_zzz") < row_pos(by_calls, "tx_sort_aaa"),
                  by_calls, "sort=calls: 10 calls must come before 3");
    assert_report(row_pos(by_name, "tx_sort_aaa") < row_pos(by_name, "tx_sort_zzz"),
                  by_name, "sort=name: aaa must come before zzz");
    ck_assert_ptr_nonnull(strstr(by_calls, "Scopes, by calls:"));
    ck_assert_ptr_nonnull(strstr(by_name, "Scopes, by name:"));
    free(by_calls);
    free(by_name);
}
END_TEST

START_TEST(text_sort_by_total_and_self)
{
    tx_big_parent();

    char *by_total = report("text:sort=total");
    char *by_default = report("text");
    char *by_self = report("text:sort=self");

    assert_report(row_pos(by_total, "tx_big_parent") < row_pos(by_total, "tx_big_child"),
                  by_total, "sort=total: the parent holds the child");
    assert_report(row_pos(by_default, "tx_big_parent") <
                      row_pos(by_default, "tx_big_child"),
                  by_default, "default sort is total");
    assert_report(row_pos(by_self, "tx_big_child") < row_pos(by_self, "tx_big_parent"),
                  by_self, "sort=self: the child's sleep is self time");
    free(by_total);
    free(by_default);
    free(by_self);
}
END_TEST

START_TEST(text_bad_options_rejected)
{
    static const char *const bad[] = {
        "text:sort=bogus", "text:sort=",        "text:bogus",      "text:sort",
        "text:sort=name,", "text:sort=totally", "text:order=name",
    };
    static const char *const good[] = {"text:", "text:sort=self",
                                       "text:sort=name,sort=calls"};
    probe_snapshot *snap = test_snap();

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *buf = (char *)"untouched";

        ck_assert_msg(probe_snapshot_format(snap, bad[i], &buf, NULL) == PROBE_EINVAL,
                      "%s", bad[i]);
        ck_assert_str_eq(buf, "untouched");
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char *buf = NULL;

        ck_assert_msg(probe_snapshot_format(snap, good[i], &buf, NULL) == 0, "%s",
                      good[i]);
        free(buf);
    }
    probe_snapshot_free(snap);
}
END_TEST

/* The PROBE_LINE sites of tx_lines(): @ran (4 hits) and @idle (never). */
static void
find_line_sites(const probe_snapshot *snap, char *ran, char *idle, size_t size)
{
    int found_ran = 0, found_idle = 0;

    for (size_t i = 0; i < probe_snapshot_site_count(snap); i++) {
        const probe_site_info *s = probe_snapshot_site(snap, i);

        if (s->kind != PROBE_KIND_LINE || strcmp(s->function, "tx_lines") != 0)
            continue;
        if (s->calls == 4) {
            snprintf(ran, size, "%s:%u", s->file, s->line);
            found_ran++;
        } else if (s->calls == 0) {
            snprintf(idle, size, "%s:%u", s->file, s->line);
            found_idle++;
        }
    }
    ck_assert_int_eq(found_ran, 1);
    ck_assert_int_eq(found_idle, 1);
}

START_TEST(text_lines_marks_never_run)
{
    char ran[512], idle[512], row[1024], want[64];
    size_t lines = 0, hit = 0;

    tx_lines(4);

    probe_snapshot *snap = test_snap();

    find_line_sites(snap, ran, idle, sizeof(ran));
    for (size_t i = 0; i < probe_snapshot_site_count(snap); i++) {
        const probe_site_info *s = probe_snapshot_site(snap, i);

        lines += s->kind == PROBE_KIND_LINE;
        hit += s->kind == PROBE_KIND_LINE && s->calls > 0;
    }
    probe_snapshot_free(snap);

    char *text = report("text");
    const char *cov = strstr(text, "\nLine coverage");

    assert_report(cov != NULL, text, "see the report on stderr");
    ck_assert_ptr_nonnull(line_with(text, cov, idle, row, sizeof(row)));
    ck_assert_msg(strstr(row, ">>>>>>") != NULL, "never-run line not marked: %s", row);
    ck_assert_ptr_nonnull(line_with(text, cov, ran, row, sizeof(row)));
    ck_assert_msg(strstr(row, ">>>>>>") == NULL, "a line that ran is marked: %s", row);
    first_field(row, want, sizeof(want));
    ck_assert_str_eq(want, "4");
    snprintf(want, sizeof(want), "%zu of %zu lines ran", hit, lines);
    assert_report(strstr(cov, want) != NULL, cov, "want \"%s\"", want);
    free(text);
}
END_TEST

START_TEST(text_counters_printed)
{
    char row[1024], field[64];

    tx_counters();

    char *text = report("text");
    const char *sec = strstr(text, "\nCounters:");

    assert_report(sec != NULL, text, "see the report on stderr");
    ck_assert_ptr_nonnull(line_with(text, sec, " tx_counter", row, sizeof(row)));
    first_field(row, field, sizeof(field));
    ck_assert_str_eq(field, "42");
    ck_assert_msg(strstr(row, " 3  tx_counter") != NULL, "updates column: %s", row);
    ck_assert_ptr_nonnull(line_with(text, sec, " tx_negative", row, sizeof(row)));
    first_field(row, field, sizeof(field));
    ck_assert_str_eq(field, "-5");
    free(text);
}
END_TEST

/* The first call-tree line at or after @from that names @name ("name  N calls"),
 * at indent @indent (or any indent when negative), copied to @out; NULL if none. */
static const char *
tree_line(const char *from, const char *name, int indent, char *out, size_t size)
{
    size_t n = strlen(name);

    for (const char *l = from; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        size_t sp = indent_of(l);

        if ((indent < 0 || sp == (size_t)indent) && strncmp(l + sp, name, n) == 0 &&
            strncmp(l + sp + n, "  ", 2) == 0)
            return line_with(l, l, name, out, size);
    }
    return NULL;
}

START_TEST(text_tree_child_under_parent)
{
    char parent[1024], child[1024];

    for (int i = 0; i < 3; i++)
        tx_outer(5);

    char *text = report("text");
    const char *tree = strstr(text, "\nCall tree");

    assert_report(tree != NULL, text, "see the report on stderr");

    const char *p = tree_line(tree + 1, "tx_outer", 0, parent, sizeof(parent));

    assert_report(p != NULL, tree, "tx_outer not in the tree");
    ck_assert_msg(strncmp(parent, "tx_outer  3 calls", 17) == 0, "root: %s", parent);

    const char *c = tree_line(p, "tx_inner", -1, child, sizeof(child));

    assert_report(c != NULL && c > p, tree, "tx_inner not below tx_outer");
    ck_assert_uint_eq(indent_of(child), indent_of(parent) + 2);
    ck_assert_msg(strstr(child, "tx_inner  15 calls, ") != NULL, "child: %s", child);
    /* Immediately below its parent: nothing else runs under tx_outer. */
    ck_assert_ptr_eq(c, p + strlen(parent) + 1);
    free(text);
}
END_TEST

START_TEST(text_tree_is_cycle_safe)
{
    tx_ping(6);
    tx_rec(4);

    char *text = report("text");
    const char *tree = strstr(text, "\nCall tree");
    char row[1024];

    assert_report(tree != NULL, text, "see the report on stderr");
    assert_report(line_with(text, tree, "[recursive]", row, sizeof(row)) != NULL, tree,
                  "no recursion marker");
    /* tx_ping -> tx_pong -> tx_ping stops at the second tx_ping. */
    ck_assert_ptr_nonnull(tree_line(tree + 1, "tx_ping", 0, row, sizeof(row)));
    ck_assert_ptr_nonnull(tree_line(tree + 1, "tx_pong", 2, row, sizeof(row)));
    ck_assert_ptr_nonnull(tree_line(tree + 1, "tx_ping", 4, row, sizeof(row)));
    ck_assert_msg(strstr(row, "[recursive]") != NULL, "%s", row);
    ck_assert_ptr_null(tree_line(tree + 1, "tx_pong", 6, row, sizeof(row)));
    /* tx_rec -> tx_rec likewise. */
    ck_assert_ptr_nonnull(tree_line(tree + 1, "tx_rec", 2, row, sizeof(row)));
    ck_assert_msg(strstr(row, "[recursive]") != NULL, "%s", row);
    free(text);
}
END_TEST

START_TEST(text_tree_depth_is_bounded)
{
    tx_chain_0();

    char *text = report("text");
    const char *tree = strstr(text, "\nCall tree");
    char row[1024];

    assert_report(tree != NULL, text, "see the report on stderr");
    /* 40 nested scopes: the tree stops at its depth limit of 32. */
    ck_assert_ptr_nonnull(tree_line(tree + 1, "tx_chain_0", 0, row, sizeof(row)));
    ck_assert_ptr_nonnull(tree_line(tree + 1, "tx_chain_32", 64, row, sizeof(row)));
    ck_assert_ptr_null(tree_line(tree + 1, "tx_chain_33", -1, row, sizeof(row)));
    ck_assert_ptr_nonnull(
        line_with(text, tree, "deeper calls not shown", row, sizeof(row)));
    ck_assert_uint_eq(indent_of(row), 66);
    free(text);
}
END_TEST

START_TEST(text_tree_lines_are_bounded)
{
    tx_dag_a0();

    char *text = report("text");
    const char *tree = strstr(text, "\nCall tree");
    char row[1024];

    assert_report(tree != NULL, text, "see the report on stderr");
    /* 4096 paths: the tree stops at its line limit, and says so. */
    ck_assert_ptr_nonnull(line_with(text, tree, "call tree cut at", row, sizeof(row)));

    const char *end = strstr(tree + 1, "\n\n");
    size_t lines = 0;

    ck_assert_ptr_nonnull(end);
    for (const char *q = tree + 1; q < end; q++)
        lines += *q == '\n';
    ck_assert_uint_ge(lines, 1000);
    ck_assert_uint_le(lines, 1100);
    free(text);
}
END_TEST

START_TEST(text_losses_warned)
{
    /* Deeper than the core's stack, and an END with no BEGIN. */
    tx_rec(300);
    PROBE_END();

    probe_snapshot *snap = test_snap();
    const probe_loss_info *l = probe_snapshot_losses(snap);

    ck_assert_uint_gt(l->depth_overflow, 0);
    ck_assert_uint_gt(l->unbalanced, 0);
    probe_snapshot_free(snap);

    char *text = report("text");
    char row[1024];

    ck_assert_ptr_nonnull(line_with(text, NULL, "depth limit", row, sizeof(row)));
    ck_assert_msg(strncmp(row, "warning: ", 9) == 0, "%s", row);
    ck_assert_ptr_nonnull(line_with(text, NULL, "unbalanced", row, sizeof(row)));
    ck_assert_msg(strncmp(row, "warning: ", 9) == 0, "%s", row);
    ck_assert_ptr_null(strstr(text, "calls not placed in the call tree"));
    free(text);
}
END_TEST

START_TEST(text_header_and_resources)
{
    tx_outer(1);

    char *text = report("text");

    static const char head[] = "libprobe report (" PROBE_SCHEMA ")\n";

    assert_report(strncmp(text, head, strlen(head)) == 0, text,
                  "see the report on stderr");
    ck_assert_ptr_nonnull(strstr(text, "\nclock:    "));
    ck_assert_ptr_nonnull(strstr(text, " ns per tick\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nelapsed:  "));
    ck_assert_ptr_nonnull(strstr(text, "\nthreads:  "));
    ck_assert_ptr_nonnull(strstr(text, " live)\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nResources: user "));
    ck_assert_ptr_nonnull(strstr(text, ", max RSS "));
    free(text);
}
END_TEST

START_TEST(text_names_stay_on_one_line)
{
    {
        PROBE_SCOPE("tx_odd\nname\x01");
    }

    char *text = report("text");

    assert_report(strstr(text, "tx_odd\\x0aname\\x01 (") != NULL, text,
                  "see the report on stderr");
    ck_assert_ptr_null(strstr(text, "tx_odd\n"));
    free(text);
}
END_TEST

/* ---- what else was recorded, percentiles, limit and filter ----------------------- */

/* The row of @name split at blanks: the calls, then each time cell as a number and
 * its unit, then the site. @return the number of fields (at most @max). */
static size_t
row_fields(const char *text, const char *name, char *row, size_t size, char **f, size_t max)
{
    size_t n = 0;

    assert_report(scope_row(text, name, row, size) != NULL, text, "no row for %s", name);
    for (char *save = NULL, *t = strtok_r(row, " ", &save); t && n < max;
         t = strtok_r(NULL, " ", &save))
        f[n++] = t;
    return n;
}

/* What the text format prints for @ns, without padding: "1.234 ms", "17 ns". */
static void
time_cell(char *buf, size_t size, uint64_t ns)
{
    static const struct {
        uint64_t div;
        const char *unit;
    } units[] = {{1000000000, "s"}, {1000000, "ms"}, {1000, "µs"}};

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ns < units[i].div)
            continue;

        double v = (double)ns / (double)units[i].div;
        int prec = v < 10 ? 3 : v < 100 ? 2 : v < 1000 ? 1 : 0;

        snprintf(buf, size, "%.*f %s", prec, v, units[i].unit);
        return;
    }
    snprintf(buf, size, "%" PRIu64 " ns", ns);
}

START_TEST(text_percentile_columns)
{
    for (int i = 0; i < 200; i++)
        tx_outer(i % 7);

    probe_snapshot *snap = test_snap();
    const probe_site_info *s = test_site(snap, "tx_inner");
    char *text = NULL, row[1024], want[64], got[64], *f[32];

    ck_assert_int_eq(probe_snapshot_format(snap, "text", &text, NULL), 0);
    assert_report(strstr(text, "  tot/call        p50        p90        p99        min") !=
                      NULL,
                  text, "no p50, p90, p99 columns");
    /* calls, then 9 cells of 2 fields (self, self/call, total, tot/call, p50, p90, p99,
     * min, max): the percentiles are fields 9..14. */
    ck_assert_uint_ge(row_fields(text, "tx_inner", row, sizeof(row), f, 32), 19);

    const uint64_t pct[] = {s->p50_ns, s->p90_ns, s->p99_ns, s->min_ns, s->max_ns};

    for (size_t i = 0; i < 5; i++) {
        time_cell(want, sizeof(want), pct[i]);
        snprintf(got, sizeof(got), "%s %s", f[9 + 2 * i], f[10 + 2 * i]);
        ck_assert_msg(strcmp(got, want) == 0, "column %zu: \"%s\", want \"%s\"", i, got,
                      want);
    }
    free(text);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(text_limit_option)
{
    tx_sort_workload();
    tx_outer(2);

    /* By calls: zzz (10), aaa (3), tx_inner (2), tx_outer (1). */
    char *two = report("text:sort=calls,limit=2");
    char *none = report("text:limit=0");
    char *all = report("text:limit=4");
    char row[1024];

    ck_assert_int_ge(row_pos(two, "tx_sort_zzz"), 0);
    ck_assert_int_ge(row_pos(two, "tx_sort_aaa"), 0);
    ck_assert_ptr_null(scope_row(two, "tx_inner", row, sizeof(row)));
    ck_assert_ptr_null(scope_row(two, "tx_outer", row, sizeof(row)));
    assert_report(strstr(two, "\n... 2 of 4 scopes shown (limit=2)\n") != NULL, two,
                  "the cut is not said");
    ck_assert_ptr_null(scope_row(none, "tx_sort_zzz", row, sizeof(row)));
    assert_report(strstr(none, "\n... 0 of 4 scopes shown (limit=0)\n") != NULL, none,
                  "the cut is not said");
    /* A limit that cuts nothing says nothing. */
    ck_assert_int_ge(row_pos(all, "tx_outer"), 0);
    assert_report(strstr(all, " scopes shown") == NULL, all, "nothing was cut");
    free(two);
    free(none);
    free(all);
}
END_TEST

START_TEST(text_filter_option)
{
    tx_sort_workload();
    tx_outer(2);

    char *aaa = report("text:filter=^tx_sort_a");
    /* The filter takes the rest of the options, commas included. */
    char *sorts = report("text:sort=name,limit=9,filter=^tx_sort_(a|z){1,3}");
    char row[1024];

    ck_assert_int_ge(row_pos(aaa, "tx_sort_aaa"), 0);
    ck_assert_ptr_null(scope_row(aaa, "tx_sort_zzz", row, sizeof(row)));
    ck_assert_ptr_null(scope_row(aaa, "tx_outer", row, sizeof(row)));
    assert_report(strstr(aaa, "\n... 1 of 4 scopes shown (1 match filter=^tx_sort_a)\n"),
                  aaa, "the filter is not said");
    /* The scopes never entered are filtered too. */
    assert_report(strstr(aaa, "tx_rec (") == NULL, aaa, "tx_rec does not match");
    assert_report(row_pos(sorts, "tx_sort_aaa") < row_pos(sorts, "tx_sort_zzz"), sorts,
                  "sort=name with a filter");
    ck_assert_ptr_null(scope_row(sorts, "tx_inner", row, sizeof(row)));
    free(aaa);
    free(sorts);
}
END_TEST

START_TEST(text_bad_limit_and_filter_rejected)
{
    static const char *const bad[] = {
        "text:limit=",    "text:limit=-1",    "text:limit=x",
        "text:limit=1x",  "text:limit= 1",    "text:limit=99999999999999999999999",
        "text:filter=(",  "text:filter=a[",   "text:sort=name,filter=(",
        "text:limit",     "text:filter",      "text:limit=1,",
    };
    probe_snapshot *snap = test_snap();

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *buf = (char *)"untouched";

        ck_assert_msg(probe_snapshot_format(snap, bad[i], &buf, NULL) == PROBE_EINVAL,
                      "%s", bad[i]);
        ck_assert_str_eq(buf, "untouched");
        /* Checked before a report is written or a file created. */
        ck_assert_msg(probe_report_fd(STDERR_FILENO, bad[i]) == PROBE_EINVAL, "%s",
                      bad[i]);
    }
    probe_snapshot_free(snap);
}
END_TEST

/* This process's report as JSON, with its "samples" replaced by @samples. */
static probe_snapshot *
with_samples(const char *samples)
{
    probe_snapshot *snap = test_snap();
    char *json = NULL;

    ck_assert_int_eq(probe_snapshot_format(snap, "json", &json, NULL), 0);
    probe_snapshot_free(snap);

    char *at = strstr(json, "\"samples\":null");

    ck_assert_msg(at != NULL, "no \"samples\":null in the JSON");

    size_t head = (size_t)(at - json), tail = strlen(at + 14);
    size_t len = head + 10 + strlen(samples) + tail;
    char *edited = malloc(len + 1);

    ck_assert_ptr_nonnull(edited);
    snprintf(edited, len + 1, "%.*s\"samples\":%s%s", (int)head, json, samples, at + 14);

    probe_load_error err;

    snap = probe_snapshot_load_buffer(edited, len, &err);
    ck_assert_msg(snap != NULL, "load: %s", err.message);
    free(json);
    free(edited);
    return snap;
}

/* Two stacks of thread 0 and two of a thread that never used libprobe. */
static const char sampled_json[] =
    "{\"interval_ns\":1000000,\"mode\":\"cpu\",\"running\":false,\"signals\":1830,"
    "\"expirations\":1839,\"dropped\":7,\"dropped_expirations\":7,\"stacks\":["
    "{\"thread\":0,\"tid\":%llu,\"weight\":1000,\"cpu_ns\":1000000000,\"signals\":1000,"
    "\"blocked\":false,\"frames\":[\"main\",\"work\"],\"scopes\":[],\"frame_ids\":[]},"
    "{\"thread\":0,\"tid\":%llu,\"weight\":32,\"cpu_ns\":32000000,\"signals\":30,"
    "\"blocked\":false,\"frames\":[\"main\"],\"scopes\":[],\"frame_ids\":[]},"
    "{\"thread\":null,\"tid\":4242421,\"weight\":700,\"cpu_ns\":700000000,\"signals\":700,"
    "\"blocked\":false,\"frames\":[\"spin\"],\"scopes\":[],\"frame_ids\":[]},"
    "{\"thread\":null,\"tid\":4242421,\"weight\":100,\"cpu_ns\":100000000,\"signals\":100,"
    "\"blocked\":false,\"frames\":[\"spin\",\"leaf\"],\"scopes\":[],\"frame_ids\":[]}]}";

static probe_snapshot *
sampled_snapshot(void)
{
    probe_snapshot *snap = test_snap();
    unsigned long long tid;
    char samples[sizeof(sampled_json) + 64];

    ck_assert_uint_ge(probe_snapshot_thread_count(snap), 1);
    tid = probe_snapshot_thread(snap, 0)->tid;
    probe_snapshot_free(snap);
    snprintf(samples, sizeof(samples), sampled_json, tid, tid);
    return with_samples(samples);
}

START_TEST(text_notes_samples)
{
    tx_outer(1);

    probe_snapshot *snap = sampled_snapshot();
    char *text = NULL, row[1024];

    ck_assert_uint_eq(probe_snapshot_sample_count(snap), 4);
    ck_assert_int_eq(probe_snapshot_format(snap, "text", &text, NULL), 0);
    /* 1000 + 32 + 700 + 100 expirations kept, 7 lost. */
    assert_report(line_with(text, NULL, "samples recorded", row, sizeof(row)) != NULL, text,
                  "no note on the samples");
    ck_assert_str_eq(row, "note: 1,832 samples recorded (7 dropped): use the tree format "
                          "(or pprof, collapsed, html)");
    /* Nothing was traced: no note on the timeline. */
    assert_report(strstr(text, "trace events") == NULL, text, "no trace, no note");
    free(text);
    probe_snapshot_free(snap);

    /* And none without samples. */
    text = report("text");
    assert_report(strstr(text, "samples recorded") == NULL, text, "no samples, no note");
    free(text);
}
END_TEST

START_TEST(text_sampled_thread_listed)
{
    tx_outer(1);

    probe_snapshot *snap = sampled_snapshot();
    char *text = NULL, row[1024];
    const char *threads;

    ck_assert_int_eq(probe_snapshot_format(snap, "text", &text, NULL), 0);
    threads = strstr(text, "\nThreads:\n");
    assert_report(threads != NULL, text, "no Threads table");
    assert_report(line_with(text, threads, " 4242421 ", row, sizeof(row)) != NULL, text,
                  "the thread the sampler saw is not listed");
    /* Listed once, with its samples, and said to be unknown to libprobe otherwise. */
    ck_assert_msg(strstr(row, "never used libprobe; 800 samples") != NULL, "%s", row);
    assert_report(strstr(strstr(text, row) + strlen(row), " 4242421 ") == NULL, text,
                  "listed twice");
    /* The thread that used libprobe keeps its own row, and gets no second one. */
    char tid[32];

    snprintf(tid, sizeof(tid), " %llu ",
             (unsigned long long)probe_snapshot_thread(snap, 0)->tid);
    ck_assert_ptr_nonnull(line_with(text, threads, tid, row, sizeof(row)));
    ck_assert_msg(strstr(row, "never used") == NULL, "%s", row);
    free(text);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(text_notes_trace)
{
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;

    o.buffer_events = 16; /* a flight ring this small overflows */
    ck_assert_int_eq(probe_trace_start(&o), 0);
    for (int i = 0; i < 20; i++)
        tx_outer(2);

    probe_snapshot *snap = test_snap();
    char *text = NULL, row[1024], want[256];
    size_t events = probe_snapshot_event_count(snap);
    uint64_t dropped = probe_snapshot_losses(snap)->events_dropped;

    ck_assert_int_eq(probe_trace_stop(), 0);
    ck_assert_uint_gt(events, 0);
    ck_assert_uint_gt(dropped, 0);
    ck_assert_uint_lt(dropped, 1000); /* no thousands separator below */
    ck_assert_int_eq(probe_snapshot_format(snap, "text", &text, NULL), 0);
    snprintf(want, sizeof(want),
             "note: %zu trace events recorded (%llu dropped): use the chrome format "
             "(or speedscope)",
             events, (unsigned long long)dropped);
    assert_report(line_with(text, NULL, "trace events recorded", row, sizeof(row)) != NULL,
                  text, "no note on the trace");
    ck_assert_str_eq(row, want);
    free(text);
    probe_snapshot_free(snap);
}
END_TEST

static Suite *
format_text_suite(void)
{
    Suite *s = suite_create("format-text");
    TCase *tc = tcase_create("text");

    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, text_table_has_names_and_calls);
    tcase_add_test(tc, text_recursive_calls_show_primitive);
    tcase_add_test(tc, text_never_entered_listed_after);
    tcase_add_test(tc, text_sort_by_calls_and_name);
    tcase_add_test(tc, text_sort_by_total_and_self);
    tcase_add_test(tc, text_bad_options_rejected);
    tcase_add_test(tc, text_lines_marks_never_run);
    tcase_add_test(tc, text_counters_printed);
    tcase_add_test(tc, text_tree_child_under_parent);
    tcase_add_test(tc, text_tree_is_cycle_safe);
    tcase_add_test(tc, text_tree_depth_is_bounded);
    tcase_add_test(tc, text_tree_lines_are_bounded);
    tcase_add_test(tc, text_losses_warned);
    tcase_add_test(tc, text_header_and_resources);
    tcase_add_test(tc, text_names_stay_on_one_line);
    tcase_add_test(tc, text_percentile_columns);
    tcase_add_test(tc, text_limit_option);
    tcase_add_test(tc, text_filter_option);
    tcase_add_test(tc, text_bad_limit_and_filter_rejected);
    tcase_add_test(tc, text_notes_samples);
    tcase_add_test(tc, text_sampled_thread_listed);
    tcase_add_test(tc, text_notes_trace);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(format_text_suite());
}
