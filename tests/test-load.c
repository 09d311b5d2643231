/* Saved reports read back: probe_snapshot_load() round trips (JSON and text), its
 * errors on truncated, malformed and hostile input, and probe_snapshot_merge() of
 * reports whose percentiles must equal those of one report holding every call.
 *
 * Durations come through thread_record_ticks(), so every call lands in a known
 * bucket whatever the load on the machine. Internal: links libprobe.a. */
#include <errno.h>
#include <pthread.h>

#include "common.h"

#include <probe/report.h>
#include <probe/rusage.h>
#include <probe/trace.h>

#include "core/stats.h"
#include "core/thread.h"

static struct probe__site site_parse = {PROBE__SITE_MAGIC, PROBE_KIND_SCOPE, 0, 0,
                                        "parse", "parse_fn", "src/parse.c"};
static struct probe__site site_lex = {PROBE__SITE_MAGIC, PROBE_KIND_SCOPE, 0, 0,
                                      "lex \"quoted\" \xc3\xa9", "lex_fn", "src/lex.c"};

/* Something of every kind: nested and recursive scopes, a line, a counter that
 * goes negative, a thread name. */
static void
record_some(void)
{
    probe_thread_name("main \\ thread");
    for (int i = 0; i < 50; i++) {
        PROBE_SCOPE("outer");
        PROBE_LINE();
        PROBE_COUNT("balance", -3);
        for (int k = 0; k < 3; k++) {
            PROBE_SCOPE("inner");
            if (k == 1) {
                PROBE_SCOPE("inner");
            }
        }
    }
    for (uint64_t t = 1; t < 5000; t = t * 3 + 1)
        thread_record_ticks(&site_parse, t);
    thread_record_ticks(&site_lex, 77);
}

static char *
format(const probe_snapshot *s, const char *fmt, size_t *len)
{
    char *buf = NULL;

    ck_assert_int_eq(probe_snapshot_format(s, fmt, &buf, len), 0);
    return buf;
}

START_TEST(json_round_trip_is_identical)
{
    record_some();
    probe_snapshot *snap = test_snap();
    size_t len, len2;
    char *json = format(snap, "json", &len);
    probe_load_error err;
    probe_snapshot *back = probe_snapshot_load_buffer(json, len, &err);

    ck_assert_msg(back, "load failed at %zu: %s", err.offset, err.message);
    char *again = format(back, "json", &len2);
    ck_assert_uint_eq(len, len2);
    ck_assert_str_eq(json, again);
    ck_assert_ptr_nonnull(strstr(json, "\"hist\":[["));
    free(again);

    /* Text from the loaded report equals the text of the program's own snapshot. */
    char *t1 = format(snap, "text", NULL), *t2 = format(back, "text", NULL);
    ck_assert_str_eq(t1, t2);
    free(t1);
    free(t2);
    /* So do the other formatters that read what the JSON carries. */
    for (const char *f = "tree\0collapsed\0callgrind\0"; *f; f += strlen(f) + 1) {
        char *a = format(snap, f, NULL), *b = format(back, f, NULL);
        ck_assert_msg(strcmp(a, b) == 0, "%s differs", f);
        free(a);
        free(b);
    }
    free(json);
    probe_snapshot_free(back);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(load_from_file_and_fd)
{
    char path[] = "/tmp/probe-load-XXXXXX";
    int fd = mkstemp(path);
    probe_load_error err;

    ck_assert_int_ge(fd, 0);
    record_some();
    ck_assert_int_eq(probe_report_fd(fd, "json"), 0);
    probe_snapshot *a = probe_snapshot_load(path, &err);
    ck_assert_msg(a, "%s", err.message);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    probe_snapshot *b = probe_snapshot_load_fd(fd, &err);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(probe_snapshot_site_count(a), probe_snapshot_site_count(b));
    ck_assert_uint_eq(probe_snapshot_find(a, "outer")->calls, 50);
    ck_assert_int_eq(probe_snapshot_find(a, "balance")->value, -150);
    close(fd);
    unlink(path);
    probe_snapshot_free(a);
    probe_snapshot_free(b);

    ck_assert_ptr_null(probe_snapshot_load(path, &err));
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(err.code, PROBE_ENOENT);
    ck_assert_ptr_null(probe_snapshot_load_fd(-1, &err));
    ck_assert_int_eq(err.code, PROBE_EBADF);
}
END_TEST

/* Load @doc: it must fail with @code at @offset, with a message containing @want. */
static void
expect_error(const char *doc, size_t len, int code, size_t offset, const char *want)
{
    probe_load_error err;
    probe_snapshot *s = probe_snapshot_load_buffer(doc, len, &err);

    ck_assert_msg(!s, "loaded: %.60s", doc);
    ck_assert_int_eq(err.code, code);
    ck_assert_int_eq(errno, -code);
    ck_assert_msg(err.offset == offset, "offset %zu, want %zu (%s)", err.offset, offset,
                  err.message);
    ck_assert_msg(strstr(err.message, want), "message '%s' lacks '%s'", err.message, want);
    ck_assert_ptr_null(strchr(err.message, '\n'));
}

#define ERR(doc, code, off, want) expect_error(doc, sizeof(doc) - 1, code, off, want)

START_TEST(errors_say_where_and_what)
{
    ERR("", PROBE_EINVAL, 0, "expected a value");
    ERR("{\"schema\":\"probe/1\"", PROBE_EINVAL, 19, "expected ',' or '}'");
    ERR("{\"schema\":\"probe/2\"}", PROBE_EINVAL, 10, "expected \"probe/1\"");
    ERR("[1,2]", PROBE_EINVAL, 0, "expected an object");
    ERR("{\"a\":01}", PROBE_EINVAL, 5, "leading zeros");
    ERR("{\"a\":18446744073709551616}", PROBE_ERANGE, 5, "64 bits");
    ERR("{\"a\":\"x\xff\"}", PROBE_EINVAL, 7, "UTF-8");
    ERR("{\"a\":\"\xed\xa0\x80\"}", PROBE_EINVAL, 6, "UTF-8"); /* a UTF-8 surrogate */
    ERR("{\"a\":\"\\u0000\"}", PROBE_EINVAL, 6, "NUL");
    ERR("{\"a\":\"\\ud800x\"}", PROBE_EINVAL, 12, "low surrogate");
    ERR("{\"a\":tru}", PROBE_EINVAL, 5, "expected a value");
    ERR("{\"a\":1} x", PROBE_EINVAL, 8, "end of input");
    ERR("{\"schema\":\"probe/1\",\"clock\":{\"name\":\"tsc\",\"ns_per_tick\":1,"
        "\"elapsed_ns\":-1}}", PROBE_EINVAL, 71, "clock.elapsed_ns: expected an integer");
    ERR("{\"schema\":\"probe/1\",\"clock\":{\"name\":\"tsc\",\"ns_per_tick\":1,"
        "\"elapsed_ns\":1}}", PROBE_EINVAL, 0, "expected member \"sites\"");

    /* 100 levels of nesting: refused at the 65th, not recursed into. */
    char deep[256];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    expect_error(deep, 200, PROBE_ERANGE, 64, "nesting");
}
END_TEST

START_TEST(every_truncation_fails_cleanly)
{
    record_some();
    probe_snapshot *snap = test_snap();
    size_t len;
    char *json = format(snap, "json", &len);

    /* Every strict prefix of a report is an error, never a crash or a snapshot. The
     * last byte is the newline after the object, so stop before it. */
    for (size_t n = 0; n + 1 < len; n++) {
        probe_load_error err;
        char *copy = malloc(n + 1);
        memcpy(copy, json, n); /* exact size, so ASan sees any read past the end */
        probe_snapshot *s = probe_snapshot_load_buffer(copy, n, &err);
        ck_assert_msg(!s, "a prefix of %zu bytes loaded", n);
        ck_assert_uint_le(err.offset, n);
        ck_assert_int_ne(err.message[0], '\0');
        free(copy);
    }
    free(json);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(unknown_fields_are_ignored)
{
    static const char doc[] =
        "{\"schema\":\"probe/1\",\"future\":{\"x\":[1,2,{\"y\":null}]},"
        "\"clock\":{\"name\":\"tsc\",\"ns_per_tick\":0.5,\"elapsed_ns\":9,\"new\":1.5e3},"
        "\"sites\":[{\"id\":0,\"name\":\"a\",\"kind\":\"scope\",\"file\":null,\"line\":3,"
        "\"function\":\"f\",\"calls\":2,\"total_ns\":10,\"self_ns\":10,\"min_ns\":4,"
        "\"max_ns\":6,\"colour\":\"red\"}],"
        "\"edges\":[],\"threads\":[{\"tid\":7,\"name\":\"t\",\"more\":[]}]}";
    probe_load_error err;
    probe_snapshot *s = probe_snapshot_load_buffer(doc, sizeof(doc) - 1, &err);

    ck_assert_msg(s, "%zu: %s", err.offset, err.message);
    ck_assert_uint_eq(probe_snapshot_site_count(s), 1);
    ck_assert_uint_eq(probe_snapshot_find(s, "a")->calls, 2);
    ck_assert_ptr_null(probe_snapshot_find(s, "a")->file);
    ck_assert_str_eq(probe_snapshot_thread(s, 0)->name, "t");
    ck_assert(probe_snapshot_clock(s)->ns_per_tick == 0.5);
    probe_snapshot_free(s);
}
END_TEST

/* ---- merge ---------------------------------------------------------------------- */

/* @got within @rel of @want, plus @abs ns. */
#define ck_assert_ns_near(got, want, rel, abs)                                         \
    do {                                                                               \
        double g_ = (double)(got), w_ = (double)(want);                                \
        ck_assert_msg(g_ - w_ <= w_ * (rel) + (abs) && w_ - g_ <= w_ * (rel) + (abs),  \
                      "%s: %.0f ns, want %.0f ns within %g + %d ns", #got, g_, w_,     \
                      w_ * (rel), (abs));                                             \
    } while (0)

/* Call i of part k: parts with very different durations, so an average of their
 * percentiles would be far from the percentiles of all calls together. */
static uint64_t
part_ticks(unsigned k, unsigned i)
{
    static const uint64_t base[] = {100, 5000, 400000};
    return base[k] + (i * 37u) % (base[k] / 2);
}

static const unsigned part_calls[] = {900, 90, 10};

START_TEST(merge_of_three_equals_one_holding_all)
{
    probe_snapshot *part[3];
    char *json[3];
    size_t len;

    for (unsigned k = 0; k < 3; k++) {
        probe_reset();
        for (unsigned i = 0; i < part_calls[k]; i++)
            thread_record_ticks(&site_parse, part_ticks(k, i));
        thread_record_ticks(&site_lex, 10 + k);
        probe_snapshot *s = test_snap();
        json[k] = format(s, "json", &len);
        probe_snapshot_free(s);
        part[k] = probe_snapshot_load_buffer(json[k], len, NULL);
        ck_assert_ptr_nonnull(part[k]);
    }
    probe_reset();
    for (unsigned k = 0; k < 3; k++) {
        for (unsigned i = 0; i < part_calls[k]; i++)
            thread_record_ticks(&site_parse, part_ticks(k, i));
        thread_record_ticks(&site_lex, 10 + k);
    }
    probe_snapshot *all = test_snap();
    probe_snapshot *m = probe_snapshot_merge((const probe_snapshot *const *)part, 3);

    ck_assert_ptr_nonnull(m);
    const probe_site_info *a = probe_snapshot_find(all, "parse");
    const probe_site_info *b = probe_snapshot_find(m, "parse");
    ck_assert_uint_eq(b->calls, 1000);
    ck_assert_uint_eq(b->calls, a->calls);
    /* Each snapshot converts ticks to ns with the clock's rate measured when it is
     * taken, which moves by parts per million from one to the next once the process
     * is older than a few ms: each figure may differ by that much of itself, and by
     * the parts' truncations (a ns each). */
    double npt = probe_snapshot_clock(all)->ns_per_tick, drift = 0;
    for (unsigned k = 0; k < 3; k++) {
        double d = probe_snapshot_clock(part[k])->ns_per_tick / npt - 1;
        drift = d > drift ? d : -d > drift ? -d : drift;
    }
    ck_assert_msg(drift < 1e-3, "the clock's rate moved by %g between snapshots", drift);
    ck_assert_ns_near(b->min_ns, a->min_ns, drift, 1);
    ck_assert_ns_near(b->max_ns, a->max_ns, drift, 1);
    ck_assert_ns_near(b->p50_ns, a->p50_ns, drift, 1);
    ck_assert_ns_near(b->p90_ns, a->p90_ns, drift, 1);
    ck_assert_ns_near(b->p99_ns, a->p99_ns, drift, 1);
    ck_assert_ns_near(b->total_ns, a->total_ns, drift, 3);
    /* Not what averaging the parts' p99 would give. */
    uint64_t avg = 0;
    for (unsigned k = 0; k < 3; k++)
        avg += probe_snapshot_find(part[k], "parse")->p99_ns / 3;
    ck_assert_uint_ne(avg, b->p99_ns);
    /* One site per (name, file, line, function), one thread per part, named by pid. */
    ck_assert_uint_eq(probe_snapshot_site_count(m), probe_snapshot_site_count(part[0]));
    ck_assert_uint_eq(probe_snapshot_find(m, "lex \"quoted\" \xc3\xa9")->calls, 3);
    ck_assert_uint_eq(probe_snapshot_thread_count(m), 3);
    char want[64];
    snprintf(want, sizeof(want), "pid %d", (int)getpid());
    ck_assert_ptr_nonnull(strstr(probe_snapshot_thread(m, 2)->name, want));

    /* The merged report saves and loads like any other. */
    char *mj = format(m, "json", &len);
    probe_snapshot *back = probe_snapshot_load_buffer(mj, len, NULL);
    ck_assert_ptr_nonnull(back);
    char *mj2 = format(back, "json", NULL);
    ck_assert_str_eq(mj, mj2);
    free(mj);
    free(mj2);
    probe_snapshot_free(back);
    for (unsigned k = 0; k < 3; k++) {
        probe_snapshot_free(part[k]);
        free(json[k]);
    }
    probe_snapshot_free(all);
    probe_snapshot_free(m);
}
END_TEST

START_TEST(merge_sums_edges_and_paths)
{
    record_some();
    probe_snapshot *s = test_snap();
    const probe_snapshot *two[] = {s, s};
    probe_snapshot *m = probe_snapshot_merge(two, 2);

    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(probe_snapshot_edge_count(m), probe_snapshot_edge_count(s));
    ck_assert_uint_eq(probe_snapshot_node_count(m), probe_snapshot_node_count(s));
    for (size_t i = 0; i < probe_snapshot_edge_count(s); i++)
        ck_assert_uint_eq(probe_snapshot_edge(m, i)->calls,
                          2 * probe_snapshot_edge(s, i)->calls);
    for (size_t i = 0; i < probe_snapshot_node_count(s); i++) {
        ck_assert_uint_eq(probe_snapshot_node(m, i)->calls,
                          2 * probe_snapshot_node(s, i)->calls);
        ck_assert_uint_eq(probe_snapshot_node(m, i)->depth, probe_snapshot_node(s, i)->depth);
    }
    ck_assert_int_eq(probe_snapshot_find(m, "balance")->value, -300);
    ck_assert_ptr_null(probe_snapshot_merge(NULL, 2));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(probe_snapshot_merge(two, 0));
    probe_snapshot_free(m);
    probe_snapshot_free(s);
}
END_TEST

/* A timeline of every kind of event, on the main thread and one other. */
static void *
traced_worker(void *arg)
{
    (void)arg;
    probe_thread_name("worker");
    for (int i = 0; i < 3; i++) {
        PROBE_SCOPE("worker_step");
        PROBE_COUNT("items", 2);
    }
    return NULL;
}

static void
record_timeline(void)
{
    pthread_t t;

    ck_assert_int_eq(probe_trace_start(NULL), 0);
    for (int i = 0; i < 4; i++) {
        PROBE_SCOPE("tl_outer");
        PROBE_COUNT("items", -5);
        {
            PROBE_SCOPE("tl_inner");
        }
    }
    ck_assert_int_eq(probe_trace_instant("checkpoint \"one\""), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, traced_worker, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
}

/* How many times @needle occurs in @hay. */
static size_t
count_of(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

START_TEST(timeline_round_trips_to_chrome)
{
    record_timeline();
    probe_snapshot *snap = test_snap();
    size_t len, len2, nev = probe_snapshot_event_count(snap);
    char *json = format(snap, "json", &len);
    probe_load_error err;
    probe_snapshot *back = probe_snapshot_load_buffer(json, len, &err);

    ck_assert_msg(back, "load failed at %zu: %s", err.offset, err.message);
    /* 4 x (2 begin, 2 end, 1 counter), 1 instant, 3 x (begin, end, counter). */
    ck_assert_uint_ge(nev, 4 * 5 + 1 + 3 * 3);
    ck_assert_uint_eq(probe_snapshot_event_count(back), nev);
    for (size_t i = 0; i < nev; i++) {
        const probe_event_info *a = probe_snapshot_event(snap, i);
        const probe_event_info *b = probe_snapshot_event(back, i);
        ck_assert_int_eq(a->kind, b->kind);
        ck_assert_uint_eq(a->thread, b->thread);
        ck_assert_uint_eq(a->ts_ns, b->ts_ns);
        ck_assert_str_eq(a->name, b->name);
        if (a->kind == PROBE_EVENT_COUNTER)
            ck_assert_int_eq(a->value, b->value);
    }
    char *again = format(back, "json", &len2);
    ck_assert_str_eq(json, again);
    ck_assert_uint_eq(len, len2);

    /* The loaded report's chrome trace is the program's own: every scope event. */
    char *c1 = format(snap, "chrome", NULL), *c2 = format(back, "chrome", NULL);
    ck_assert_str_eq(c1, c2);
    ck_assert_uint_eq(count_of(c2, "\"ph\":\"B\",\"cat\":\"scope\",\"name\":\"tl_inner\""),
                      4);
    ck_assert_uint_eq(count_of(c2, "\"name\":\"worker_step\""), 3 * 2);
    ck_assert_ptr_nonnull(strstr(c2, "\"name\":\"checkpoint \\\"one\\\"\""));
    free(c1);
    free(c2);
    free(again);
    free(json);
    probe_snapshot_free(back);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(merge_keeps_each_timeline_apart)
{
    record_timeline();
    probe_snapshot *snap = test_snap();
    size_t len, nev = probe_snapshot_event_count(snap), nth = probe_snapshot_thread_count(snap);
    char *json = format(snap, "json", &len);
    /* A second process: the same report under another pid. */
    char *pid = strstr(json, "\"pid\":");
    ck_assert_ptr_nonnull(pid);
    pid[6] = pid[6] == '9' ? '8' : '9';
    probe_snapshot *a = probe_snapshot_load_buffer(json, len, NULL);
    probe_snapshot *b = probe_snapshot_load_buffer(json, len, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    const probe_snapshot *two[] = {a, b};
    probe_snapshot *m = probe_snapshot_merge(two, 2);

    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(probe_snapshot_thread_count(m), 2 * nth);
    ck_assert_uint_eq(probe_snapshot_event_count(m), 2 * nev);
    for (size_t i = 0; i < nev; i++) {
        const probe_event_info *x = probe_snapshot_event(snap, i);
        const probe_event_info *y = probe_snapshot_event(m, nev + i);
        /* The second report's events are on its own threads, by the same names. */
        ck_assert_uint_eq(y->thread, x->thread + nth);
        ck_assert_int_eq(y->kind, x->kind);
        ck_assert_uint_eq(y->ts_ns, x->ts_ns);
        ck_assert_str_eq(y->name, x->name);
        if (x->site != SIZE_MAX)
            ck_assert_str_eq(probe_snapshot_site(m, y->site)->name, x->name);
    }
    char *c = format(m, "chrome", NULL);
    ck_assert_uint_eq(count_of(c, "\"name\":\"worker_step\""), 2 * 3 * 2);
    free(c);
    probe_snapshot_free(m);
    probe_snapshot_free(b);
    probe_snapshot_free(a);
    free(json);
    probe_snapshot_free(snap);
}
END_TEST

/* The JSON's "command" with this process's arguments swapped for @repl. */
static char *
with_command(const char *json, const char *repl)
{
    const char *at = strstr(json, "\"command\":[");
    ck_assert_ptr_nonnull(at);
    const char *end = strchr(at, ']');
    ck_assert_ptr_nonnull(end);
    char *out = malloc(strlen(json) + strlen(repl) + 1);
    sprintf(out, "%.*s\"command\":%s%s", (int)(at - json), json, repl, end + 1);
    return out;
}

START_TEST(command_names_the_recorded_program)
{
    record_some();
    probe_snapshot *snap = test_snap();
    size_t len;
    char *json = format(snap, "json", &len);

    /* This process's argv[0] is the test program. */
    ck_assert_ptr_nonnull(strstr(json, "\"command\":[\""));
    ck_assert_ptr_nonnull(strstr(strstr(json, "\"command\":["), "test-load"));
    char *other = with_command(json, "[\"/opt/recorded\",\"--fast\",\"\",\"x y\"]");
    probe_snapshot *back = probe_snapshot_load_buffer(other, strlen(other), NULL);
    ck_assert_ptr_nonnull(back);
    char *again = format(back, "json", NULL);
    ck_assert_str_eq(again, other);
    /* The page names the program that was recorded, not the one writing it. */
    char *html = format(back, "html", NULL);
    ck_assert_ptr_nonnull(strstr(html, "\"written_by\":\"/opt/recorded --fast  x y\""));
    free(html);
    free(again);
    probe_snapshot_free(back);

    /* Without a command (an older report), the page names nothing. */
    char *none = with_command(json, "null");
    back = probe_snapshot_load_buffer(none, strlen(none), NULL);
    ck_assert_ptr_nonnull(back);
    html = format(back, "html", NULL);
    ck_assert_ptr_nonnull(strstr(html, "\"written_by\":null"));
    free(html);
    probe_snapshot_free(back);
    /* Not strings: an error where the command is. */
    char *bad = with_command(json, "[1]");
    probe_load_error err;
    ck_assert_ptr_null(probe_snapshot_load_buffer(bad, strlen(bad), &err));
    ck_assert_ptr_nonnull(strstr(err.message, "command"));
    free(bad);
    free(none);
    free(other);
    free(json);
    probe_snapshot_free(snap);
}
END_TEST

static Suite *
load_suite(void)
{
    Suite *s = suite_create("load");
    TCase *tc = tcase_create("load");

    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, json_round_trip_is_identical);
    tcase_add_test(tc, load_from_file_and_fd);
    tcase_add_test(tc, errors_say_where_and_what);
    tcase_add_test(tc, every_truncation_fails_cleanly);
    tcase_add_test(tc, unknown_fields_are_ignored);
    tcase_add_test(tc, timeline_round_trips_to_chrome);
    tcase_add_test(tc, command_names_the_recorded_program);
    suite_add_tcase(s, tc);
    tc = tcase_create("merge");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, merge_of_three_equals_one_holding_all);
    tcase_add_test(tc, merge_sums_edges_and_paths);
    tcase_add_test(tc, merge_keeps_each_timeline_apart);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(load_suite());
}
