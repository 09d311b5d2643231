/* PROBE_RUSAGE_SCOPE: a scope that also records the thread's resource usage. */
#include <sys/mman.h>

#include "common.h"

#define PAGES 2048

/* Touch @pages fresh pages, one fault each (no transparent huge pages). */
static void
touch_pages(size_t pages)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t len = pages * (size_t)page;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(p, MAP_FAILED);
    (void)madvise(p, len, MADV_NOHUGEPAGE);
    for (size_t i = 0; i < pages; i++)
        ((volatile char *)p)[i * (size_t)page] = 1;
    munmap(p, len);
}

START_TEST(page_touching_scope_reports_faults)
{
    {
        PROBE_RUSAGE_SCOPE("ru_touch");
        touch_pages(PAGES);
    }
    probe_snapshot *snap = test_snap();
    const probe_site_info *s = test_site(snap, "ru_touch");

    ck_assert_int_eq(s->has_usage, 1);
    ck_assert_uint_eq(s->calls, 1);
    ck_assert_uint_eq(s->usage_calls, 1);
    /* Each fresh page faults once; leave room for pages already mapped. */
    ck_assert_uint_ge(s->minor_faults + s->major_faults, PAGES * 9 / 10);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(cpu_scope_reports_cpu_time)
{
    uint64_t before = test_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    {
        PROBE_RUSAGE_SCOPE("ru_spin");
        test_spin_ns(100 * 1000 * 1000);
    }
    uint64_t spent = test_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - before;
    probe_snapshot *snap = test_snap();
    const probe_site_info *s = test_site(snap, "ru_spin");
    uint64_t cpu = s->user_ns + s->system_ns;

    /* getrusage ticks are coarse (4 ms at 250 Hz): wide margins either side. */
    ck_assert_uint_ge(cpu, spent / 2);
    ck_assert_uint_le(cpu, spent + 20 * 1000 * 1000);
    ck_assert_uint_le(s->self_ns, s->total_ns);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(plain_scope_has_no_usage)
{
    {
        PROBE_SCOPE("ru_plain");
    }
    probe_snapshot *snap = test_snap();
    const probe_site_info *s = test_site(snap, "ru_plain");

    ck_assert_int_eq(s->has_usage, 0);
    ck_assert_uint_eq(s->usage_calls, 0);
    ck_assert_uint_eq(s->minor_faults, 0);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(stopped_records_nothing)
{
    probe_stop();
    for (int i = 0; i < 5; i++) {
        PROBE_RUSAGE_SCOPE("ru_stopped");
    }
    probe_start();
    probe_snapshot *snap = test_snap();
    const probe_site_info *s = test_site(snap, "ru_stopped");

    ck_assert_uint_eq(s->calls, 0);
    ck_assert_uint_eq(s->usage_calls, 0);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(nests_like_a_scope)
{
    for (int i = 0; i < 4; i++) {
        PROBE_SCOPE("ru_parent");
        PROBE_RUSAGE_SCOPE("ru_child");
    }
    probe_snapshot *snap = test_snap();
    const probe_edge_info *e = test_edge(snap, "ru_parent", "ru_child");

    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->calls, 4);
    ck_assert_uint_eq(test_site(snap, "ru_child")->usage_calls, 4);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(reset_forgets_usage)
{
    {
        PROBE_RUSAGE_SCOPE("ru_reset");
        touch_pages(64);
    }
    probe_reset();
    probe_snapshot *snap = test_snap();
    const probe_site_info *s = test_site(snap, "ru_reset");

    ck_assert_uint_eq(s->usage_calls, 0);
    ck_assert_uint_eq(s->minor_faults, 0);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(reports_show_usage)
{
    char *text = NULL, *json = NULL;

    {
        PROBE_RUSAGE_SCOPE("ru_report");
        touch_pages(16);
    }
    probe_snapshot *snap = test_snap();
    ck_assert_int_eq(probe_snapshot_format(snap, "text", &text, NULL), 0);
    ck_assert_int_eq(probe_snapshot_format(snap, "json", &json, NULL), 0);
    ck_assert_ptr_nonnull(strstr(text, "Resource usage by scope"));
    ck_assert_ptr_nonnull(strstr(json, "\"usage\":{\"calls\":1,"));
    ck_assert_ptr_nonnull(strstr(json, "\"usage\":null"));
    free(text);
    free(json);
    probe_snapshot_free(snap);
}
END_TEST

static Suite *
rusage_scope_suite(void)
{
    Suite *s = suite_create("rusage-scope");
    TCase *tc = tcase_create("scope");

    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, page_touching_scope_reports_faults);
    tcase_add_test(tc, cpu_scope_reports_cpu_time);
    tcase_add_test(tc, plain_scope_has_no_usage);
    tcase_add_test(tc, stopped_records_nothing);
    tcase_add_test(tc, nests_like_a_scope);
    tcase_add_test(tc, reset_forgets_usage);
    tcase_add_test(tc, reports_show_usage);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(rusage_scope_suite());
}
