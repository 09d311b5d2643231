/*
 * The "chrome" and "speedscope" formatters.
 *
 * With no argument: a Check suite (options, argument errors, the aggregate-only
 * layout read back from memory).
 * With "MODE DIR": records a known workload and writes DIR/trace.json ("chrome") and
 * DIR/trace.speedscope.json ("speedscope") for check_trace.py, which parses both.
 * Modes: "timeline" (tracing, 2 named worker threads, counters, an instant),
 * "aggregate" (no tracing) and "tiny" (a 16-event flight recorder that overflows).
 * The names and values here are mirrored in check_trace.py.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <probe/probe.h>
#include <probe/trace.h>

/* Quote, backslash, newline, a control byte, a lone 0xff and valid UTF-8. */
#define TT_ODD_NAME "tt_odd \"q\" \\ \n \x01 \xff \xc3\xa9 end"
#define TT_MAIN_NAME "tt \"main\"\xff"

/* ---- the workload ------------------------------------------------------------- */

static void
tt_leaf(void)
{
    PROBE_SCOPE("tt_leaf");
}

static void
tt_mid(int n)
{
    PROBE_SCOPE("tt_mid");
    for (int i = 0; i < n; i++)
        tt_leaf();
}

static void
tt_rec(int n)
{
    PROBE_SCOPE("tt_rec");
    if (n > 0)
        tt_rec(n - 1);
}

static void
tt_odd(void)
{
    PROBE_SCOPE(TT_ODD_NAME);
}

/* Worker k: scopes nested 3 deep, a recursion, its counter updates and an instant.
 * Worker 1 adds 5 three times (5, 10, 15); worker 2 adds 7 twice (7, 14). */
static void
tt_work(int k)
{
    PROBE_SCOPE("tt_work");
    for (int i = 0; i < 3; i++)
        tt_mid(2);
    tt_rec(3);
    for (int i = 0; i < (k == 1 ? 3 : 2); i++)
        PROBE_COUNT("tt_counter", k == 1 ? 5 : 7);
    probe_trace_instant(k == 1 ? "tt_mark_1" : "tt_mark_2");
    tt_odd();
}

static pthread_barrier_t tt_done, tt_written;

static void *
tt_worker(void *arg)
{
    int k = (int)(intptr_t)arg;

    probe_thread_name(k == 1 ? "tt-worker-1" : "tt-worker-2");
    tt_work(k);
    /* Stay alive until the reports are written: the events are read from live rings. */
    pthread_barrier_wait(&tt_done);
    pthread_barrier_wait(&tt_written);
    return NULL;
}

static int
tt_write(const char *dir)
{
    static const struct {
        const char *format, *file;
    } outputs[] = {
        {"chrome", "trace.json"},
        {"speedscope", "trace.speedscope.json"},
    };

    for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
        char path[4096];

        snprintf(path, sizeof(path), "%s/%s", dir, outputs[i].file);

        int r = probe_report_write(path, outputs[i].format);

        if (r < 0) {
            fprintf(stderr, "probe_report_write(%s, %s): %s\n", path, outputs[i].format,
                    probe_strerror(r));
            return 1;
        }
    }
    return 0;
}

/* The reports are written from inside "tt_main", still open: the writers close it. */
static int
tt_threads(const char *dir)
{
    PROBE_SCOPE("tt_main");
    pthread_t th[2];
    int r;

    pthread_barrier_init(&tt_done, NULL, 3);
    pthread_barrier_init(&tt_written, NULL, 3);
    for (int k = 0; k < 2; k++) {
        if (pthread_create(&th[k], NULL, tt_worker, (void *)(intptr_t)(k + 1)) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    pthread_barrier_wait(&tt_done);
    r = tt_write(dir);
    pthread_barrier_wait(&tt_written);
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    return r;
}

/* Far more events than a 16-event ring holds, from inside two open scopes. */
static int
tt_tiny(const char *dir)
{
    PROBE_SCOPE("tt_main");
    {
        PROBE_SCOPE("tt_outer");
        for (int i = 0; i < 200; i++)
            tt_mid(3);
        PROBE_COUNT("tt_counter", 1);
        probe_trace_instant("tt_mark_tiny");
        tt_mid(1);
        tt_leaf();
        {
            /* The snapshot cuts through here: tt_main, tt_outer and tt_mid are open. */
            PROBE_SCOPE("tt_mid");
            return tt_write(dir);
        }
    }
}

static int
tt_aggregate(const char *dir)
{
    {
        PROBE_SCOPE("tt_main");
        for (int k = 1; k <= 2; k++)
            tt_work(k);
        tt_mid(4);
    }
    tt_rec(2);
    return tt_write(dir);
}

static int
tt_run(const char *mode, const char *dir)
{
    int r = probe_thread_name(TT_MAIN_NAME);

    if (r < 0) {
        fprintf(stderr, "probe_thread_name: %s\n", probe_strerror(r));
        return 1;
    }
    if (strcmp(mode, "aggregate") == 0)
        return tt_aggregate(dir);

    probe_trace_options opts = PROBE_TRACE_OPTIONS_INIT;
    int tiny = strcmp(mode, "tiny") == 0;

    if (!tiny && strcmp(mode, "timeline") != 0) {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    if (tiny)
        opts.buffer_events = 16;
    r = probe_trace_start(tiny ? &opts : NULL);
    if (r < 0) {
        fprintf(stderr, "probe_trace_start: %s\n", probe_strerror(r));
        return 1;
    }
    r = tiny ? tt_tiny(dir) : tt_threads(dir);
    probe_trace_stop();
    return r;
}

/* ---- the Check suite ---------------------------------------------------------- */

static const char *const tt_formats[] = {"chrome", "speedscope"};

START_TEST(options_rejected)
{
    const char *name = tt_formats[_i];
    char format[64], path[] = "/tmp/probe-tt-XXXXXX";
    char *buf = NULL;
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    tt_mid(1);

    probe_snapshot *snap = probe_snapshot_take();

    ck_assert_ptr_nonnull(snap);
    snprintf(format, sizeof(format), "%s:x", name);
    ck_assert_int_eq(probe_snapshot_format(snap, format, &buf, NULL), PROBE_EINVAL);
    ck_assert_ptr_null(buf);
    snprintf(format, sizeof(format), "%s:", name);
    ck_assert_int_eq(probe_snapshot_format(snap, format, &buf, NULL), 0);
    ck_assert_ptr_nonnull(buf);
    free(buf);
    buf = NULL;
    ck_assert_int_eq(probe_snapshot_format(snap, name, &buf, NULL), 0);
    free(buf);
    probe_snapshot_free(snap);

    /* Checked before the file is touched: it keeps its contents. */
    ck_assert_int_eq(write(fd, "keep", 4), 4);
    snprintf(format, sizeof(format), "%s:weight=calls", name);
    ck_assert_int_eq(probe_report_write(path, format), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_fd(fd, format), PROBE_EINVAL);

    struct stat st;

    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_int_eq(st.st_size, 4);
    close(fd);
    unlink(path);
}
END_TEST

START_TEST(aggregate_track)
{
    char *buf = NULL;

    tt_mid(3);

    probe_snapshot *snap = probe_snapshot_take();

    ck_assert_ptr_nonnull(snap);
    ck_assert_uint_eq(probe_snapshot_event_count(snap), 0);
    ck_assert_int_eq(probe_snapshot_format(snap, "chrome", &buf, NULL), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"aggregate (not a timeline)\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"ph\":\"X\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"name\":\"tt_mid\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"source\":\"aggregate\""));
    ck_assert_ptr_null(strstr(buf, "\"ph\":\"B\""));
    free(buf);
    buf = NULL;
    ck_assert_int_eq(probe_snapshot_format(snap, "speedscope", &buf, NULL), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"type\":\"sampled\""));
    ck_assert_ptr_null(strstr(buf, "\"type\":\"evented\""));
    free(buf);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(timeline_events)
{
    char *buf = NULL;

    ck_assert_int_eq(probe_trace_start(NULL), 0);
    tt_mid(2);
    probe_trace_instant("tt_unit_mark");

    probe_snapshot *snap = probe_snapshot_take();

    ck_assert_int_eq(probe_trace_stop(), 0);
    ck_assert_ptr_nonnull(snap);
    ck_assert_uint_ge(probe_snapshot_event_count(snap), 7);
    ck_assert_int_eq(probe_snapshot_format(snap, "chrome", &buf, NULL), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"ph\":\"B\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"ph\":\"E\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"name\":\"tt_unit_mark\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"source\":\"timeline\""));
    ck_assert_ptr_null(strstr(buf, "\"ph\":\"X\""));
    free(buf);
    buf = NULL;
    ck_assert_int_eq(probe_snapshot_format(snap, "speedscope", &buf, NULL), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"type\":\"evented\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"type\":\"O\""));
    free(buf);
    probe_snapshot_free(snap);
}
END_TEST

/* Locale-proof: ts is written by integer arithmetic, never "1,5". */
START_TEST(timestamps_ignore_locale)
{
    char *buf = NULL;

    ck_assert_int_eq(probe_trace_start(NULL), 0);
    tt_mid(1);
    /* A locale whose decimal point is ',', where one is installed. */
    if (!setlocale(LC_ALL, "de_DE.UTF-8"))
        setlocale(LC_ALL, "fr_FR.UTF-8");

    probe_snapshot *snap = probe_snapshot_take();

    ck_assert_int_eq(probe_trace_stop(), 0);
    ck_assert_int_eq(probe_snapshot_format(snap, "chrome", &buf, NULL), 0);

    const char *ts = strstr(buf, "\"ts\":");

    ck_assert_ptr_nonnull(ts);
    ts += 5;
    ts += strspn(ts, "0123456789");
    ck_assert_int_eq(ts[0], '.');
    ck_assert_uint_eq(strspn(ts + 1, "0123456789"), 3);
    free(buf);
    probe_snapshot_free(snap);
}
END_TEST

static Suite *
tt_suite(void)
{
    Suite *s = suite_create("format-chrome");
    TCase *tc = tcase_create("chrome");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, options_rejected, 0, 2);
    tcase_add_test(tc, aggregate_track);
    tcase_add_test(tc, timeline_events);
    tcase_add_test(tc, timestamps_ignore_locale);
    suite_add_tcase(s, tc);
    return s;
}

int
main(int argc, char **argv)
{
    if (argc == 3)
        return tt_run(argv[1], argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: %s [timeline|aggregate|tiny DIR]\n", argv[0]);
        return 2;
    }

    SRunner *sr = srunner_create(tt_suite());

    srunner_run_all(sr, CK_NORMAL);

    int failed = srunner_ntests_failed(sr);

    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
