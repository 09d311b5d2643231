/* Sites: line hits (including lines that never ran), counters, sites registered
 * before main() and sites of a shared module loaded with dlopen() and unloaded
 * with dlclose(). The module's path comes from the environment: PROBE_TESTMOD,
 * which tests/meson.build sets. */
#include <dlfcn.h>

#include "common.h"

/* ---- lines -------------------------------------------------------------------- */

void sites_never_called(void);

/* One line each, so that the enum holds the line of the PROBE_LINE() site. */
void sites_never_called(void) { PROBE_LINE(); } enum { NEVER_CALLED_LINE = __LINE__ };

static int branch_line, hit_line, taken_line;

static void
sites_lines(int n, int take)
{
    if (take == 42) { PROBE_LINE(); } branch_line = __LINE__; /* never runs */
    for (int i = 0; i < n; i++) { PROBE_LINE(); } hit_line = __LINE__;
    if (take) { PROBE_LINE(); } taken_line = __LINE__;
}

static void
check_line_site(const probe_snapshot *snap, int line, uint64_t calls)
{
    char name[512];

    test_line_name(name, line);
    const probe_site_info *si = test_site(snap, name);
    ck_assert_int_eq(si->kind, PROBE_KIND_LINE);
    ck_assert_str_eq(si->file, __FILE__);
    ck_assert_int_eq(si->line, line);
    ck_assert_int_eq(si->loaded, 1);
    ck_assert_uint_eq(si->calls, calls);
    ck_assert_uint_eq(si->total_ns, 0);
    ck_assert_uint_eq(si->self_ns, 0);
}

START_TEST(zero_hit_lines_listed)
{
    sites_lines(0, 0);

    probe_snapshot *snap = test_snap();
    check_line_site(snap, NEVER_CALLED_LINE, 0);
    check_line_site(snap, branch_line, 0);
    check_line_site(snap, hit_line, 0);
    check_line_site(snap, taken_line, 0);
    char name[512];
    test_line_name(name, NEVER_CALLED_LINE);
    ck_assert_str_eq(test_site(snap, name)->function, "sites_never_called");
    test_line_name(name, branch_line);
    ck_assert_str_eq(test_site(snap, name)->function, "sites_lines");
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(line_hits_exact)
{
    sites_lines(37, 1);
    sites_lines(5, 0);

    probe_snapshot *snap = test_snap();
    check_line_site(snap, NEVER_CALLED_LINE, 0);
    check_line_site(snap, branch_line, 0);
    check_line_site(snap, hit_line, 42);
    check_line_site(snap, taken_line, 1);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(every_site_listed)
{
    probe_snapshot *snap = test_snap();
    size_t n = probe_snapshot_site_count(snap);

    size_t mine = 0;
    for (size_t i = 0; i < n; i++) {
        const probe_site_info *si = probe_snapshot_site(snap, i);

        ck_assert_ptr_nonnull(si);
        ck_assert_uint_eq(si->index, i);
        ck_assert_ptr_nonnull(si->name);
        ck_assert_ptr_nonnull(si->file);
        ck_assert_ptr_nonnull(si->function);
        ck_assert_msg(si->kind == PROBE_KIND_SCOPE || si->kind == PROBE_KIND_LINE ||
                      si->kind == PROBE_KIND_COUNTER, "site %s: kind %d", si->name,
                      (int)si->kind);
        if (strcmp(si->file, __FILE__) == 0)
            mine++;
    }
    /* Every site of this file, whether it ran or not. */
    ck_assert_uint_eq(mine, 10);
    ck_assert_ptr_null(probe_snapshot_site(snap, n));
    ck_assert_ptr_null(probe_snapshot_find(snap, "no such site"));
    ck_assert_ptr_null(probe_snapshot_find(snap, NULL));
    ck_assert_ptr_null(probe_snapshot_find(NULL, "sites_counter"));
    probe_snapshot_free(snap);
    probe_snapshot_free(NULL);
}
END_TEST

/* ---- counters ----------------------------------------------------------------- */

static void
sites_count(int64_t delta)
{
    PROBE_COUNT("sites_counter", delta);
}

static int side_effects;

static int64_t
sites_side_effect(void)
{
    side_effects++;
    return 3;
}

static void
sites_never_counted(void)
{
    PROBE_COUNT("sites_never_counted", 1);
}

START_TEST(counter_value_exact)
{
    static const int64_t deltas[] = {
        5, 5, 5, -7, -100, 0, INT64_C(1) << 40, -(INT64_C(1) << 40),
    };

    for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++)
        sites_count(deltas[i]);
    if (side_effects == 12345)
        sites_never_counted();

    probe_snapshot *snap = test_snap();
    const probe_site_info *si = test_site(snap, "sites_counter");
    ck_assert_int_eq(si->kind, PROBE_KIND_COUNTER);
    ck_assert_int_eq(si->value, -92);
    ck_assert_uint_eq(si->calls, 8);
    ck_assert_str_eq(si->function, "sites_count");
    const probe_site_info *never = test_site(snap, "sites_never_counted");
    ck_assert_int_eq(never->kind, PROBE_KIND_COUNTER);
    ck_assert_int_eq(never->value, 0);
    ck_assert_uint_eq(never->calls, 0);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(counter_negative_total)
{
    for (int i = 0; i < 1000; i++)
        sites_count(-1000);

    probe_snapshot *snap = test_snap();
    ck_assert_int_eq(test_site(snap, "sites_counter")->value, -1000000);
    ck_assert_uint_eq(test_site(snap, "sites_counter")->calls, 1000);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(counter_delta_evaluated_once)
{
    PROBE_COUNT("sites_once", sites_side_effect());
    ck_assert_int_eq(side_effects, 1);

    probe_snapshot *snap = test_snap();
    ck_assert_int_eq(test_site(snap, "sites_once")->value, 3);
    ck_assert_uint_eq(test_site(snap, "sites_once")->calls, 1);
    probe_snapshot_free(snap);
}
END_TEST

/* ---- sites that ran before main() ---------------------------------------------- */

static uint64_t ctor_scope_calls = UINT64_MAX;
static int64_t ctor_count_value = -1;

__attribute__((constructor)) static void
sites_early(void)
{
    PROBE_SCOPE("sites_ctor_scope");
    PROBE_COUNT("sites_ctor_count", 2);
}

START_TEST(sites_recorded_before_main)
{
    /* Captured in main(): each test runs in a forked child, which starts clean. */
    ck_assert_uint_eq(ctor_scope_calls, 1);
    ck_assert_int_eq(ctor_count_value, 2);
}
END_TEST

/* ---- a dlopen()ed module ------------------------------------------------------- */

typedef int (*work_fn)(int);
typedef int (*int_fn)(void);
typedef const char *(*str_fn)(void);

struct testmod {
    void *handle;
    work_fn work;
    int_fn never_line;
    str_fn file;
};

static const char *
testmod_path(void)
{
    const char *path = getenv("PROBE_TESTMOD");

    ck_assert_msg(path && *path, "PROBE_TESTMOD is not set (run through meson test)");
    return path;
}

/* dlsym() into a function pointer without the object-to-function cast. */
static void
testmod_sym(void *handle, const char *name, void *fn, size_t size)
{
    void *sym = dlsym(handle, name);

    ck_assert_msg(sym != NULL, "dlsym(%s): %s", name, dlerror());
    ck_assert_uint_eq(size, sizeof(sym));
    memcpy(fn, &sym, size);
}

static void
testmod_open(struct testmod *m)
{
    m->handle = dlopen(testmod_path(), RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(m->handle != NULL, "dlopen: %s", dlerror());
    testmod_sym(m->handle, "testmod_work", &m->work, sizeof(m->work));
    testmod_sym(m->handle, "testmod_never_line", &m->never_line, sizeof(m->never_line));
    testmod_sym(m->handle, "testmod_file", &m->file, sizeof(m->file));
    ck_assert(m->work != NULL && m->never_line != NULL && m->file != NULL);
}

static void
testmod_close(struct testmod *m)
{
    ck_assert_int_eq(dlclose(m->handle), 0);
    /* Really unloaded, so that the test below means something. */
    void *again = dlopen(testmod_path(), RTLD_NOW | RTLD_NOLOAD);
    if (again)
        dlclose(again);
    ck_assert_msg(again == NULL, "the module is still loaded after dlclose");
    m->handle = NULL;
}

/* The sum of the calls of every site named @name, and how many of them are loaded. */
static uint64_t
calls_by_name(const probe_snapshot *snap, const char *name, int *ret_loaded)
{
    uint64_t calls = 0;

    *ret_loaded = 0;
    for (size_t i = 0; i < probe_snapshot_site_count(snap); i++) {
        const probe_site_info *si = probe_snapshot_site(snap, i);

        if (strcmp(si->name, name) == 0) {
            calls += si->calls;
            *ret_loaded += si->loaded;
        }
    }
    return calls;
}

/* The sum of the values of every counter named @name. */
static int64_t
value_by_name(const probe_snapshot *snap, const char *name)
{
    int64_t value = 0;

    for (size_t i = 0; i < probe_snapshot_site_count(snap); i++) {
        const probe_site_info *si = probe_snapshot_site(snap, i);

        if (strcmp(si->name, name) == 0)
            value += si->value;
    }
    return value;
}

START_TEST(dlopen_registers_sites)
{
    struct testmod m;
    char line_name[1024];

    probe_snapshot *snap = test_snap();
    ck_assert_ptr_null(probe_snapshot_find(snap, "testmod_scope"));
    size_t before = probe_snapshot_site_count(snap);
    probe_snapshot_free(snap);

    testmod_open(&m);
    snprintf(line_name, sizeof(line_name), "%s:%d", m.file(), m.never_line());

    snap = test_snap();
    ck_assert_uint_eq(probe_snapshot_site_count(snap), before + 3);
    const probe_site_info *si = test_site(snap, "testmod_scope");
    ck_assert_int_eq(si->kind, PROBE_KIND_SCOPE);
    ck_assert_uint_eq(si->calls, 0);
    ck_assert_int_eq(si->loaded, 1);
    ck_assert_str_eq(si->function, "testmod_work");
    const probe_site_info *li = test_site(snap, line_name);
    ck_assert_int_eq(li->kind, PROBE_KIND_LINE);
    ck_assert_uint_eq(li->calls, 0);
    ck_assert_int_eq(li->line, m.never_line());
    ck_assert_str_eq(li->file, m.file());
    ck_assert_uint_eq(test_site(snap, "testmod_counter")->calls, 0);
    probe_snapshot_free(snap);

    ck_assert_int_eq(m.work(3), 3);
    snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "testmod_scope")->calls, 3);
    ck_assert_int_eq(test_site(snap, "testmod_counter")->value, 6);
    probe_snapshot_free(snap);
    testmod_close(&m);
}
END_TEST

START_TEST(dlclose_keeps_sites)
{
    struct testmod m;
    char line_name[1100];
    char file[1024];

    testmod_open(&m);
    snprintf(file, sizeof(file), "%s", m.file());
    snprintf(line_name, sizeof(line_name), "%s:%d", file, m.never_line());
    int never_line = m.never_line();
    ck_assert_int_eq(m.work(4), 6);
    {
        /* A scope of the program around one of the module. */
        PROBE_SCOPE("sites_around_module");
        m.work(1);
    }
    testmod_close(&m);

    probe_snapshot *snap = test_snap();
    int loaded;
    ck_assert_uint_eq(calls_by_name(snap, "testmod_scope", &loaded), 5);
    ck_assert_int_eq(loaded, 0);
    const probe_site_info *si = test_site(snap, "testmod_scope");
    ck_assert_int_eq(si->loaded, 0);
    ck_assert_str_eq(si->function, "testmod_work");
    ck_assert_str_eq(si->file, file);
    const probe_site_info *li = test_site(snap, line_name);
    ck_assert_int_eq(li->kind, PROBE_KIND_LINE);
    ck_assert_int_eq(li->loaded, 0);
    ck_assert_int_eq(li->line, never_line);
    ck_assert_str_eq(li->file, file);
    ck_assert_str_eq(li->function, "testmod_maybe");
    ck_assert_uint_eq(li->calls, 0);
    ck_assert_uint_eq(calls_by_name(snap, "testmod_counter", &loaded), 5);
    ck_assert_int_eq(loaded, 0);
    ck_assert_int_eq(value_by_name(snap, "testmod_counter"), 10);
    /* The edge from the program's scope into the module's survives too. */
    size_t around = test_site(snap, "sites_around_module")->index;
    uint64_t edge_calls = 0;
    for (size_t i = 0; i < probe_snapshot_edge_count(snap); i++) {
        const probe_edge_info *e = probe_snapshot_edge(snap, i);

        if (e->caller == around &&
            strcmp(probe_snapshot_site(snap, e->callee)->name, "testmod_scope") == 0)
            edge_calls += e->calls;
    }
    ck_assert_uint_eq(edge_calls, 1);
    /* The program's own sites are still loaded. */
    ck_assert_int_eq(test_site(snap, "sites_counter")->loaded, 1);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(snapshot_outlives_dlclose)
{
    struct testmod m;
    char line_name[1024];

    testmod_open(&m);
    m.work(2);
    snprintf(line_name, sizeof(line_name), "%s:%d", m.file(), m.never_line());
    /* Taken while loaded, read after unload: still valid until freed. */
    probe_snapshot *snap = test_snap();
    testmod_close(&m);

    int loaded;
    ck_assert_uint_eq(calls_by_name(snap, "testmod_scope", &loaded), 2);
    ck_assert_int_eq(loaded, 1); /* when the snapshot was taken */
    const probe_site_info *si = test_site(snap, "testmod_scope");
    ck_assert_str_eq(si->function, "testmod_work");
    ck_assert_uint_gt(strlen(si->file), 0);
    const probe_site_info *li = test_site(snap, line_name);
    ck_assert_uint_gt(strlen(li->file), 0);
    ck_assert_uint_gt(strlen(li->function), 0);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(dlopen_again_after_dlclose)
{
    struct testmod m;
    int loaded;

    testmod_open(&m);
    m.work(3);
    testmod_close(&m);
    testmod_open(&m);
    m.work(2);

    probe_snapshot *snap = test_snap();
    /* Whether the reloaded module gets its old sites or new ones, nothing is lost. */
    ck_assert_uint_eq(calls_by_name(snap, "testmod_scope", &loaded), 5);
    ck_assert_int_eq(loaded, 1);
    probe_snapshot_free(snap);
    testmod_close(&m);

    snap = test_snap();
    ck_assert_uint_eq(calls_by_name(snap, "testmod_scope", &loaded), 5);
    ck_assert_int_eq(loaded, 0);
    probe_snapshot_free(snap);
}
END_TEST

/* An environment variable as a count, or @def. */
static long
env_long(const char *name, long def)
{
    const char *env = getenv(name);

    if (env && *env) {
        long v = strtol(env, NULL, 10);
        if (v >= 0)
            return v;
    }
    return def;
}

/* The rows of the snapshot named @name. */
static size_t
rows_named(const probe_snapshot *snap, const char *name)
{
    size_t rows = 0;

    for (size_t i = 0; i < probe_snapshot_site_count(snap); i++)
        rows += strcmp(probe_snapshot_site(snap, i)->name, name) == 0;
    return rows;
}

/* A plugin loaded and unloaded over and over gets its sites' ids back each time:
 * one row per site with every cycle's calls, a site table that does not fill up
 * (it did after 21,844 cycles of this 3-site module), and memory that stays flat
 * (each cycle took about 5 KiB). PROBE_TEST_DL_CYCLES overrides the 100,000 cycles
 * (sanitizer builds); PROBE_TEST_DL_RSS=0 skips the memory check (their allocators
 * hold on to freed memory). */
START_TEST(dlopen_cycles_reuse_sites)
{
    long cycles = env_long("PROBE_TEST_DL_CYCLES", 100000);
    long warm = cycles / 10 > 1000 ? cycles / 10 : (cycles > 1 ? cycles / 2 : 0);
    int check_rss = env_long("PROBE_TEST_DL_RSS", 1) != 0;
    char line_name[1100];
    size_t rss_warm = 0, rss_end = 0, before;
    struct testmod m;

    probe_snapshot *snap = test_snap();
    before = probe_snapshot_site_count(snap);
    probe_snapshot_free(snap);
    ck_assert_int_gt(cycles, 1);
    for (long i = 0; i < cycles; i++) {
        if (i == warm)
            ck_assert_int_eq(probe_current_rss(&rss_warm), 0);
        m.handle = dlopen(testmod_path(), RTLD_NOW | RTLD_LOCAL);
        ck_assert_msg(m.handle != NULL, "dlopen: %s", dlerror());
        testmod_sym(m.handle, "testmod_work", &m.work, sizeof(m.work));
        if (i == 0) {
            testmod_sym(m.handle, "testmod_never_line", &m.never_line,
                        sizeof(m.never_line));
            testmod_sym(m.handle, "testmod_file", &m.file, sizeof(m.file));
            snprintf(line_name, sizeof(line_name), "%s:%d", m.file(), m.never_line());
        }
        ck_assert_int_eq(m.work(1), 0);
        ck_assert_int_eq(dlclose(m.handle), 0);
    }
    ck_assert_int_eq(probe_current_rss(&rss_end), 0);

    snap = test_snap();
    /* The module's three sites, once each, and nothing else new. */
    ck_assert_uint_eq(probe_snapshot_site_count(snap), before + 3);
    ck_assert_uint_eq(rows_named(snap, "testmod_scope"), 1);
    ck_assert_uint_eq(rows_named(snap, "testmod_counter"), 1);
    ck_assert_uint_eq(rows_named(snap, line_name), 1);
    const probe_site_info *si = test_site(snap, "testmod_scope");
    ck_assert_uint_eq(si->calls, (uint64_t)cycles);
    ck_assert_int_eq(si->loaded, 0);
    ck_assert_str_eq(si->function, "testmod_work");
    ck_assert_uint_eq(test_site(snap, "testmod_counter")->calls, (uint64_t)cycles);
    ck_assert_int_eq(test_site(snap, "testmod_counter")->value, 2 * cycles);
    ck_assert_uint_eq(test_site(snap, line_name)->calls, 0);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->sites_dropped, 0);
    probe_snapshot_free(snap);

    /* Loaded once more: the same row, loaded again. */
    testmod_open(&m);
    m.work(2);
    snap = test_snap();
    ck_assert_uint_eq(rows_named(snap, "testmod_scope"), 1);
    ck_assert_uint_eq(test_site(snap, "testmod_scope")->calls, (uint64_t)cycles + 2);
    ck_assert_int_eq(test_site(snap, "testmod_scope")->loaded, 1);
    probe_snapshot_free(snap);
    testmod_close(&m);

    /* Flat: the cycles after the warm-up took less than 2 MiB in all (about 440 MiB
     * before the ids were reused). */
    if (check_rss)
        ck_assert_msg(rss_end < rss_warm + 2u * 1024 * 1024,
                      "RSS grew from %zu to %zu bytes over %ld cycles", rss_warm, rss_end,
                      cycles - warm);
}
END_TEST

static Suite *
sites_suite(void)
{
    Suite *s = suite_create("sites");
    TCase *tc;

    tc = tcase_create("lines");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, zero_hit_lines_listed);
    tcase_add_test(tc, line_hits_exact);
    tcase_add_test(tc, every_site_listed);
    suite_add_tcase(s, tc);

    tc = tcase_create("counters");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, counter_value_exact);
    tcase_add_test(tc, counter_negative_total);
    tcase_add_test(tc, counter_delta_evaluated_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, sites_recorded_before_main);
    suite_add_tcase(s, tc);

    tc = tcase_create("dlopen");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, dlopen_registers_sites);
    tcase_add_test(tc, dlclose_keeps_sites);
    tcase_add_test(tc, snapshot_outlives_dlclose);
    tcase_add_test(tc, dlopen_again_after_dlclose);
    suite_add_tcase(s, tc);

    tc = tcase_create("dlopen_cycles");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, dlopen_cycles_reuse_sites);
    suite_add_tcase(s, tc);

    return s;
}

int
main(void)
{
    probe_snapshot *snap = probe_snapshot_take();

    if (snap) {
        const probe_site_info *si = probe_snapshot_find(snap, "sites_ctor_scope");
        const probe_site_info *ci = probe_snapshot_find(snap, "sites_ctor_count");

        if (si)
            ctor_scope_calls = si->calls;
        if (ci)
            ctor_count_value = ci->value;
        probe_snapshot_free(snap);
    }
    return test_run(sites_suite());
}
