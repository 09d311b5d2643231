/* Lifecycle: start/stop/reset, recording state, error strings, thread names. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>

#include "common.h"

/* probe_is_recording() as main() saw it, before any test ran. */
static int recording_at_load = -1;

static void
scope_once(void)
{
    PROBE_SCOPE("lc_scope");
}

/* One source line, so that __LINE__ is the line of the PROBE_LINE() site. */
static void line_once(void) { PROBE_LINE(); } enum { LINE_ONCE_LINE = __LINE__ };

static void
count_once(int64_t delta)
{
    PROBE_COUNT("lc_counter", delta);
}

static void
begin_end_once(void)
{
    PROBE_BEGIN("lc_begin");
    PROBE_END();
}

START_TEST(recording_on_from_load)
{
    ck_assert_int_eq(recording_at_load, 1);
}
END_TEST

START_TEST(start_stop_idempotent)
{
    ck_assert_int_eq(probe_is_recording(), 1);
    ck_assert_int_eq(probe_start(), 0);
    ck_assert_int_eq(probe_start(), 0);
    ck_assert_int_eq(probe_is_recording(), 1);
    ck_assert_int_eq(probe_stop(), 0);
    ck_assert_int_eq(probe_is_recording(), 0);
    ck_assert_int_eq(probe_stop(), 0);
    ck_assert_int_eq(probe_is_recording(), 0);
    ck_assert_int_eq(probe_start(), 0);
    ck_assert_int_eq(probe_is_recording(), 1);
}
END_TEST

START_TEST(stop_records_nothing_and_keeps_data)
{
    char line_name[256];

    test_line_name(line_name, LINE_ONCE_LINE);
    for (int i = 0; i < 3; i++) {
        scope_once();
        line_once();
        count_once(10);
        begin_end_once();
    }

    ck_assert_int_eq(probe_stop(), 0);
    for (int i = 0; i < 5; i++) {
        scope_once();
        line_once();
        count_once(1000);
        begin_end_once();
    }

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "lc_scope")->calls, 3);
    ck_assert_uint_eq(test_site(snap, line_name)->calls, 3);
    ck_assert_uint_eq(test_site(snap, "lc_counter")->calls, 3);
    ck_assert_int_eq(test_site(snap, "lc_counter")->value, 30);
    ck_assert_uint_eq(test_site(snap, "lc_begin")->calls, 3);
    /* A PROBE_BEGIN/PROBE_END pair while stopped is balanced, just not recorded. */
    ck_assert_uint_eq(probe_snapshot_losses(snap)->unbalanced, 0);
    probe_snapshot_free(snap);

    /* Resuming adds to what was kept. */
    ck_assert_int_eq(probe_start(), 0);
    scope_once();
    count_once(-1);
    snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "lc_scope")->calls, 4);
    ck_assert_uint_eq(test_site(snap, "lc_counter")->calls, 4);
    ck_assert_int_eq(test_site(snap, "lc_counter")->value, 29);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(scope_open_across_stop_is_counted)
{
    {
        PROBE_SCOPE("lc_across_outer");
        ck_assert_int_eq(probe_stop(), 0);
        {
            /* Entered while stopped: not recorded, not an edge. */
            PROBE_SCOPE("lc_across_inner");
        }
    }

    probe_snapshot *snap = test_snap();
    const probe_site_info *outer = test_site(snap, "lc_across_outer");
    ck_assert_uint_eq(outer->calls, 1);
    ck_assert_uint_eq(outer->prim_calls, 1);
    ck_assert_uint_eq(test_site(snap, "lc_across_inner")->calls, 0);
    ck_assert_ptr_null(test_edge(snap, "lc_across_outer", "lc_across_inner"));
    ck_assert_uint_eq(probe_snapshot_losses(snap)->unbalanced, 0);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(begin_open_across_stop_is_counted)
{
    PROBE_BEGIN("lc_begin_across");
    ck_assert_int_eq(probe_stop(), 0);
    PROBE_END();

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "lc_begin_across")->calls, 1);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->unbalanced, 0);
    probe_snapshot_free(snap);
}
END_TEST

static void *
reset_worker(void *arg)
{
    (void)arg;
    probe_thread_name("lc-reset-worker");
    for (int i = 0; i < 100; i++) {
        scope_once();
        line_once();
        count_once(7);
    }
    return NULL;
}

static void
nested_once(void)
{
    PROBE_SCOPE("lc_reset_parent");
    scope_once();
}

START_TEST(reset_forgets_everything_keeps_sites)
{
    pthread_t th;
    char line_name[256];

    test_line_name(line_name, LINE_ONCE_LINE);

    /* Data in an exited thread (the aggregate), in this thread, edges, losses. */
    ck_assert_int_eq(pthread_create(&th, NULL, reset_worker, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    for (int i = 0; i < 10; i++) {
        nested_once();
        line_once();
        count_once(-3);
    }
    PROBE_END(); /* unbalanced */

    probe_snapshot *before = test_snap();
    size_t nsites = probe_snapshot_site_count(before);
    ck_assert_uint_eq(test_site(before, "lc_scope")->calls, 110);
    ck_assert_uint_eq(test_site(before, line_name)->calls, 110);
    ck_assert_int_eq(test_site(before, "lc_counter")->value, 700 - 30);
    ck_assert_ptr_nonnull(test_edge(before, "lc_reset_parent", "lc_scope"));
    ck_assert_uint_eq(probe_snapshot_losses(before)->unbalanced, 1);
    probe_snapshot_free(before);

    probe_reset();
    ck_assert_int_eq(probe_is_recording(), 1);

    probe_snapshot *after = test_snap();
    ck_assert_uint_eq(probe_snapshot_site_count(after), nsites);
    for (size_t i = 0; i < nsites; i++) {
        const probe_site_info *si = probe_snapshot_site(after, i);

        ck_assert_ptr_nonnull(si);
        ck_assert_ptr_nonnull(si->name);
        ck_assert_msg(si->calls == 0, "site %s: %llu calls after reset", si->name,
                      (unsigned long long)si->calls);
        ck_assert_uint_eq(si->prim_calls, 0);
        ck_assert_uint_eq(si->total_ns, 0);
        ck_assert_uint_eq(si->self_ns, 0);
        ck_assert_uint_eq(si->min_ns, 0);
        ck_assert_uint_eq(si->max_ns, 0);
        ck_assert_int_eq(si->value, 0);
    }
    /* The sites are still there by name. */
    test_site(after, "lc_scope");
    test_site(after, "lc_counter");
    test_site(after, line_name);
    for (size_t i = 0; i < probe_snapshot_edge_count(after); i++)
        ck_assert_uint_eq(probe_snapshot_edge(after, i)->calls, 0);
    for (size_t i = 0; i < probe_snapshot_thread_count(after); i++)
        ck_assert_uint_eq(probe_snapshot_thread(after, i)->scopes, 0);
    ck_assert_uint_eq(probe_snapshot_losses(after)->unbalanced, 0);
    probe_snapshot_free(after);

    /* Recording goes on from zero. */
    scope_once();
    ck_assert_uint_eq(test_calls("lc_scope"), 1);
}
END_TEST

START_TEST(reset_keeps_recording_state)
{
    ck_assert_int_eq(probe_stop(), 0);
    probe_reset();
    ck_assert_int_eq(probe_is_recording(), 0);
    scope_once();
    ck_assert_uint_eq(test_calls("lc_scope"), 0);

    ck_assert_int_eq(probe_start(), 0);
    probe_reset();
    ck_assert_int_eq(probe_is_recording(), 1);
    scope_once();
    ck_assert_uint_eq(test_calls("lc_scope"), 1);
}
END_TEST

START_TEST(scope_open_across_reset_not_counted)
{
    {
        PROBE_SCOPE("lc_reset_open");
        probe_reset();
    }
    scope_once();

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "lc_reset_open")->calls, 0);
    ck_assert_uint_eq(test_site(snap, "lc_scope")->calls, 1);
    ck_assert_ptr_null(test_edge(snap, "lc_reset_open", "lc_scope"));
    probe_snapshot_free(snap);
}
END_TEST

static const int error_codes[] = {
    PROBE_ENOENT, PROBE_EIO,    PROBE_EBADF,  PROBE_ENOMEM,  PROBE_EACCES,
    PROBE_EBUSY,  PROBE_EEXIST, PROBE_EINVAL, PROBE_ENOSPC,  PROBE_ERANGE,
    PROBE_ELOOP,  PROBE_ENOTSUP, PROBE_ENODATA, PROBE_EFORMAT, PROBE_ENXIO,
    PROBE_EDISABLED,
};
#define N_CODES (sizeof(error_codes) / sizeof(error_codes[0]))

START_TEST(strerror_names_every_code)
{
    const char *unknown = probe_strerror(-123456);

    ck_assert_ptr_nonnull(unknown);
    for (size_t i = 0; i < N_CODES; i++) {
        const char *s = probe_strerror(error_codes[i]);

        ck_assert_msg(s != NULL, "probe_strerror(%d) is NULL", error_codes[i]);
        ck_assert_msg(s[0] != '\0', "probe_strerror(%d) is empty", error_codes[i]);
        ck_assert_msg(strcmp(s, unknown) != 0, "probe_strerror(%d) is \"%s\"",
                      error_codes[i], s);
        /* Each code has its own description. */
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(s, probe_strerror(error_codes[j])) != 0,
                          "codes %d and %d share \"%s\"", error_codes[i],
                          error_codes[j], s);
    }
}
END_TEST

START_TEST(strerror_names_other_errno)
{
    const char *unknown = probe_strerror(-123456);
    const char *s = probe_strerror(-EPIPE);

    ck_assert_ptr_nonnull(s);
    ck_assert_str_ne(s, unknown);
    ck_assert_str_ne(s, probe_strerror(PROBE_EIO));
}
END_TEST

START_TEST(strerror_unknown_values)
{
    static const int values[] = {
        1, 22, 4096, 123456, INT_MAX, INT_MIN, INT_MIN + 1, -4150, -4200, -100000,
    };

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        const char *s = probe_strerror(values[i]);

        ck_assert_msg(s != NULL, "probe_strerror(%d) is NULL", values[i]);
        ck_assert_msg(s[0] != '\0', "probe_strerror(%d) is empty", values[i]);
        for (size_t j = 0; j < N_CODES; j++)
            ck_assert_str_ne(s, probe_strerror(error_codes[j]));
    }
    ck_assert_ptr_nonnull(probe_strerror(0));
}
END_TEST

START_TEST(thread_name_rejects_null)
{
    ck_assert_int_eq(probe_thread_name(NULL), PROBE_EINVAL);
}
END_TEST

START_TEST(thread_name_listed)
{
    ck_assert_int_eq(probe_thread_name("lc main"), 0);
    scope_once();

    probe_snapshot *snap = test_snap();
    const probe_thread_info *t = test_thread(snap, test_gettid());
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t->name, "lc main");
    ck_assert_int_eq(t->live, 1);
    ck_assert_uint_eq(t->scopes, 1);
    probe_snapshot_free(snap);

    /* Renaming replaces the name; the empty name is allowed, and then the thread
     * shows under the kernel's name for it, as in every report. */
    char comm[64] = "", path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%ld/comm", (long)test_gettid());
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(comm, sizeof(comm), f));
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    ck_assert_int_eq(probe_thread_name(""), 0);
    snap = test_snap();
    t = test_thread(snap, test_gettid());
    ck_assert_ptr_nonnull(t);
    ck_assert_str_ne(comm, "");
    ck_assert_str_eq(t->name, comm);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(thread_name_truncated_to_31_bytes)
{
    char name[100];

    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    ck_assert_int_eq(probe_thread_name(name), 0);
    scope_once();

    probe_snapshot *snap = test_snap();
    const probe_thread_info *t = test_thread(snap, test_gettid());
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(strlen(t->name), 31);
    ck_assert_int_eq(strncmp(t->name, name, 31), 0);
    probe_snapshot_free(snap);
}
END_TEST

static Suite *
lifecycle_suite(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *tc;

    tc = tcase_create("state");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, recording_on_from_load);
    tcase_add_test(tc, start_stop_idempotent);
    tcase_add_test(tc, stop_records_nothing_and_keeps_data);
    tcase_add_test(tc, scope_open_across_stop_is_counted);
    tcase_add_test(tc, begin_open_across_stop_is_counted);
    suite_add_tcase(s, tc);

    tc = tcase_create("reset");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, reset_forgets_everything_keeps_sites);
    tcase_add_test(tc, reset_keeps_recording_state);
    tcase_add_test(tc, scope_open_across_reset_not_counted);
    suite_add_tcase(s, tc);

    tc = tcase_create("strerror");
    tcase_add_test(tc, strerror_names_every_code);
    tcase_add_test(tc, strerror_names_other_errno);
    tcase_add_test(tc, strerror_unknown_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("thread_name");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_add_test(tc, thread_name_rejects_null);
    tcase_add_test(tc, thread_name_listed);
    tcase_add_test(tc, thread_name_truncated_to_31_bytes);
    suite_add_tcase(s, tc);

    return s;
}

int
main(void)
{
    recording_at_load = probe_is_recording();
    return test_run(lifecycle_suite());
}
