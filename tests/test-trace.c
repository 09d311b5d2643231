/* The timeline: tracing's flight recorder, events in snapshots, bounds and losses. */
#include <pthread.h>

#include "common.h"

static void
tt_inner(void)
{
    PROBE_SCOPE("tt_inner");
}

static void
tt_outer(void)
{
    PROBE_SCOPE("tt_outer");
    tt_inner();
    PROBE_COUNT("tt_counter", 5);
    tt_inner();
}

static void
trace_teardown(void)
{
    probe_trace_stop();
}

START_TEST(start_stop_errors)
{
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;

    ck_assert_int_eq(probe_trace_is_active(), 0);
    ck_assert_int_eq(probe_trace_start(NULL), 0);
    ck_assert_int_eq(probe_trace_is_active(), 1);
    ck_assert_int_eq(probe_trace_start(NULL), PROBE_EBUSY);
    ck_assert_int_eq(probe_trace_stop(), 0);
    ck_assert_int_eq(probe_trace_stop(), 0);
    ck_assert_int_eq(probe_trace_is_active(), 0);

    o.size = 0;
    ck_assert_int_eq(probe_trace_start(&o), PROBE_EINVAL);
    o = (probe_trace_options)PROBE_TRACE_OPTIONS_INIT;
    o.mode = (probe_trace_mode)7;
    ck_assert_int_eq(probe_trace_start(&o), PROBE_EINVAL);
    o = (probe_trace_options)PROBE_TRACE_OPTIONS_INIT;
    o.buffer_events = 15;
    ck_assert_int_eq(probe_trace_start(&o), PROBE_EINVAL);
    o.buffer_events = (size_t)1 << 25;
    ck_assert_int_eq(probe_trace_start(&o), PROBE_EINVAL);
    o = (probe_trace_options)PROBE_TRACE_OPTIONS_INIT;
    o.mode = PROBE_TRACE_STREAM;
    ck_assert_int_eq(probe_trace_start(&o), PROBE_EINVAL); /* no path */
    ck_assert_int_eq(probe_trace_is_active(), 0);
    ck_assert_int_eq(probe_trace_instant(NULL), PROBE_EINVAL);
}
END_TEST

/* The events of the calling thread, checked for B/E discipline and time order. */
static size_t
check_thread_events(const probe_snapshot *snap, size_t thread)
{
    size_t stack[64], depth = 0, n = 0;
    uint64_t last = 0;

    for (size_t i = 0; i < probe_snapshot_event_count(snap); i++) {
        const probe_event_info *e = probe_snapshot_event(snap, i);
        if (e->thread != thread)
            continue;
        n++;
        ck_assert_uint_ge(e->ts_ns, last);
        last = e->ts_ns;
        if (e->kind == PROBE_EVENT_BEGIN) {
            ck_assert_uint_lt(depth, 64);
            stack[depth++] = e->site;
        } else if (e->kind == PROBE_EVENT_END) {
            ck_assert_uint_gt(depth, 0);
            ck_assert_uint_eq(stack[--depth], e->site);
        }
    }
    ck_assert_uint_eq(depth, 0);
    return n;
}

static size_t
count_thread_events(const probe_snapshot *snap, size_t thread)
{
    size_t n = 0;

    for (size_t i = 0; i < probe_snapshot_event_count(snap); i++)
        n += probe_snapshot_event(snap, i)->thread == thread;
    return n;
}

static size_t
thread_index(const probe_snapshot *snap, uint64_t tid)
{
    for (size_t i = 0; i < probe_snapshot_thread_count(snap); i++) {
        if (probe_snapshot_thread(snap, i)->tid == tid)
            return i;
    }
    ck_abort_msg("thread %llu not listed", (unsigned long long)tid);
    return 0;
}

START_TEST(scopes_counters_instants)
{
    ck_assert_int_eq(probe_trace_start(NULL), 0);
    tt_outer();
    ck_assert_int_eq(probe_trace_instant("tt_moment"), 0);
    ck_assert_int_eq(probe_trace_stop(), 0);
    tt_outer(); /* after stop: not on the timeline */

    probe_snapshot *snap = test_snap();
    size_t me = thread_index(snap, test_gettid());
    const char *expect[] = {"B tt_outer", "B tt_inner", "E tt_inner", "C tt_counter",
                            "B tt_inner", "E tt_inner", "E tt_outer", "I tt_moment"};
    size_t k = 0;

    for (size_t i = 0; i < probe_snapshot_event_count(snap); i++) {
        const probe_event_info *e = probe_snapshot_event(snap, i);
        char got[64];
        if (e->thread != me)
            continue;
        snprintf(got, sizeof(got), "%c %s", " BECI"[e->kind], e->name);
        ck_assert_uint_lt(k, 8);
        ck_assert_str_eq(got, expect[k]);
        if (e->kind == PROBE_EVENT_COUNTER)
            ck_assert_int_eq(e->value, 5);
        if (e->kind == PROBE_EVENT_INSTANT)
            ck_assert_uint_eq(e->site, SIZE_MAX);
        k++;
    }
    ck_assert_uint_eq(k, 8);
    ck_assert_uint_eq(check_thread_events(snap, me), 8);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->events_dropped, 0);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(ring_keeps_the_last_events_and_counts_the_rest)
{
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;

    o.buffer_events = 16;
    ck_assert_int_eq(probe_trace_start(&o), 0);
    for (int i = 0; i < 100; i++)
        tt_inner(); /* 200 events */
    probe_trace_stop();

    probe_snapshot *snap = test_snap();
    size_t me = thread_index(snap, test_gettid());
    /* The ring may begin inside a scope: count, don't pair. */
    size_t kept = count_thread_events(snap, me);

    ck_assert_uint_le(kept, 16);
    ck_assert_uint_ge(kept, 14);
    ck_assert_uint_eq(probe_snapshot_thread(snap, me)->events_dropped, 200 - kept);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->events_dropped, 200 - kept);
    probe_snapshot_free(snap);
}
END_TEST

static void *
tt_worker(void *arg)
{
    (void)arg;
    probe_thread_name("tt_worker");
    for (int i = 0; i < 10; i++)
        tt_outer();
    return NULL;
}

START_TEST(exited_threads_keep_their_timeline)
{
    pthread_t th[2];

    ck_assert_int_eq(probe_trace_start(NULL), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, tt_worker, NULL), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    probe_trace_stop();

    probe_snapshot *snap = test_snap();
    size_t workers = 0;

    for (size_t t = 0; t < probe_snapshot_thread_count(snap); t++) {
        const probe_thread_info *ti = probe_snapshot_thread(snap, t);
        if (strcmp(ti->name, "tt_worker") != 0)
            continue;
        ck_assert_int_eq(ti->live, 0);
        ck_assert_uint_eq(check_thread_events(snap, t), 10 * 7);
        workers++;
    }
    ck_assert_uint_eq(workers, 2);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(reset_and_restart_forget_the_timeline)
{
    ck_assert_int_eq(probe_trace_start(NULL), 0);
    tt_outer();
    probe_reset();

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(probe_snapshot_event_count(snap), 0);
    probe_snapshot_free(snap);

    tt_inner();
    probe_trace_stop();
    ck_assert_int_eq(probe_trace_start(NULL), 0);
    tt_outer();
    probe_trace_stop();
    snap = test_snap();
    ck_assert_uint_eq(check_thread_events(snap, thread_index(snap, test_gettid())), 7);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(not_recording_means_no_events)
{
    ck_assert_int_eq(probe_trace_start(NULL), 0);
    probe_stop();
    tt_outer();
    ck_assert_int_eq(probe_trace_instant("tt_quiet"), 0);
    probe_start();
    probe_trace_stop();

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(probe_snapshot_event_count(snap), 0);
    probe_snapshot_free(snap);
}
END_TEST

/* Does the file at @path hold @needle? */
static int
file_has(const char *path, const char *needle)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

    if (f)
        fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

START_TEST(flight_recorder_with_a_path_is_written_at_stop)
{
    char dir[] = "/tmp/probe-flight-XXXXXX", path[64];
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/flight.json", dir);
    o.path = path;

    /* probe_trace_stop() writes it. */
    ck_assert_int_eq(probe_trace_start(&o), 0);
    tt_outer();
    ck_assert_int_eq(probe_trace_stop(), 0);
    ck_assert(file_has(path, "\"traceEvents\""));
    ck_assert(file_has(path, "\"name\":\"tt_inner\""));
    ck_assert_int_eq(unlink(path), 0);

    /* probe_stop() writes it too, and tracing goes on. */
    ck_assert_int_eq(probe_trace_start(&o), 0);
    tt_outer();
    ck_assert_int_eq(probe_stop(), 0);
    ck_assert(file_has(path, "\"name\":\"tt_outer\""));
    ck_assert_int_eq(probe_trace_is_active(), 1);
    probe_start();
    probe_trace_stop();
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *
trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("flight");

    tcase_add_checked_fixture(tc, test_setup, trace_teardown);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, start_stop_errors);
    tcase_add_test(tc, scopes_counters_instants);
    tcase_add_test(tc, ring_keeps_the_last_events_and_counts_the_rest);
    tcase_add_test(tc, exited_threads_keep_their_timeline);
    tcase_add_test(tc, reset_and_restart_forget_the_timeline);
    tcase_add_test(tc, not_recording_means_no_events);
    tcase_add_test(tc, flight_recorder_with_a_path_is_written_at_stop);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(trace_suite());
}
