/* Format options: every formatter's option parser refuses a bad option with a
 * message naming the option, its value and what it accepts (probe_format_check). */
#include <string.h>

#include "../common.h"

/* @format is refused, and its message holds each of the NULL-ended @want. */
static void
assert_refused(const char *format, const char *const *want)
{
    char msg[512];
    char buf[4];

    memcpy(buf, "xyz", 4);
    ck_assert_int_eq(probe_format_check(format, msg, sizeof(msg)), PROBE_EINVAL);
    for (const char *const *w = want; *w; w++)
        ck_assert_msg(strstr(msg, *w), "%s: message '%s' lacks '%s'", format, msg, *w);
    /* Truncated, still terminated. */
    ck_assert_int_eq(probe_format_check(format, buf, sizeof(buf)), PROBE_EINVAL);
    ck_assert_uint_eq(strlen(buf), 3);
}

#define REFUSED(format, ...) assert_refused(format, (const char *const[]){__VA_ARGS__, NULL})

START_TEST(good_options_pass)
{
    static const char *const good[] = {
        "text", "text:sort=self,limit=5", "text:filter=a|b,c", "tree:threshold=2.5",
        "tree:hide_libs=1", "collapsed:weight=calls,source=scopes",
        "callgrind:events=ns+calls", "json", "chrome", "html", "pprof", "speedscope",
    };
    char msg[64] = "x";

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ck_assert_msg(probe_format_check(good[i], msg, sizeof(msg)) == 0, "%s: %s", good[i],
                      msg);
        ck_assert_str_eq(msg, "");
    }
    ck_assert_int_eq(probe_format_check("text", NULL, 0), 0);
}
END_TEST

START_TEST(text_values_named)
{
    REFUSED("text:limit=x", "limit=x", "number of rows");
    REFUSED("text:limit=-1", "limit=-1", "number of rows");
    REFUSED("text:sort=speed", "sort=speed", "total, self, calls or name");
    REFUSED("text:filter=((", "filter=((", "regular expression");
    REFUSED("text:colour=red", "'colour'", "sort=", "limit=", "filter=");
    REFUSED("text:limit", "'limit'", "KEY=VALUE");
    REFUSED("text:sort=self,,limit=2", "empty option", "sort=self,,limit=2");
}
END_TEST

START_TEST(tree_values_named)
{
    REFUSED("tree:threshold=abc", "threshold=abc", "0 to 100");
    REFUSED("tree:threshold=101", "threshold=101", "0 to 100");
    REFUSED("tree:hide_libs=yes", "hide_libs=yes", "0 or 1");
    REFUSED("tree:depth=3", "'depth'", "threshold=", "hide_libs=");
}
END_TEST

START_TEST(collapsed_callgrind_values_named)
{
    REFUSED("collapsed:weight=bytes", "weight=bytes", "self_ns", "calls", "samples");
    REFUSED("collapsed:source=both", "source=both", "samples or scopes");
    REFUSED("collapsed:x=1", "'x'", "weight=", "source=");
    REFUSED("collapsed:weight=calls,", "empty option");
    REFUSED("callgrind:events=cycles", "events=cycles", "ns or ns+calls");
    REFUSED("callgrind:inclusive=1", "'inclusive'", "events=");
}
END_TEST

START_TEST(optionless_formats_say_so)
{
    static const char *const names[] = {"json", "chrome", "html", "pprof", "speedscope"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char format[64];

        snprintf(format, sizeof(format), "%s:limit=3", names[i]);
        REFUSED(format, names[i], "takes no options", "limit=3");
    }
}
END_TEST

START_TEST(unknown_format_lists_known)
{
    REFUSED("nosuch:limit=1", "unknown format 'nosuch'", "text", "json", "pprof");
    REFUSED("", "unknown format ''");
    ck_assert_int_eq(probe_format_check(NULL, NULL, 0), PROBE_EINVAL);
}
END_TEST

static int
any_write(const probe_snapshot *snap, probe_writer *w, const char *options, void *user)
{
    (void)snap;
    (void)options;
    (void)user;
    return probe_writer_puts(w, "x");
}

START_TEST(registered_formatter_takes_any_options)
{
    probe_formatter f = {.size = sizeof(f), .name = "opts-test", .write = any_write};

    ck_assert_int_eq(probe_formatter_register(&f), 0);
    ck_assert_int_eq(probe_format_check("opts-test:whatever=1", NULL, 0), 0);
    ck_assert_int_eq(probe_formatter_unregister("opts-test"), 0);
    REFUSED("opts-test", "unknown format 'opts-test'");
}
END_TEST

static Suite *
options_suite(void)
{
    Suite *s = suite_create("format-options");
    TCase *tc = tcase_create("check");

    tcase_add_test(tc, good_options_pass);
    tcase_add_test(tc, text_values_named);
    tcase_add_test(tc, tree_values_named);
    tcase_add_test(tc, collapsed_callgrind_values_named);
    tcase_add_test(tc, optionless_formats_say_so);
    tcase_add_test(tc, unknown_format_lists_known);
    tcase_add_test(tc, registered_formatter_takes_any_options);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(options_suite());
}
