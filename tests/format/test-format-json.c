/*
 * Records known data and writes the "json" report to argv[1]; check_json.py then
 * checks it field by field. The names and counts here are mirrored there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <probe/probe.h>

static volatile int never = 0;

static void
tj_inner(void)
{
    PROBE_SCOPE("tj_inner");
}

static void
tj_outer(void)
{
    PROBE_SCOPE("tj_outer");
    for (int i = 0; i < 5; i++)
        tj_inner();
}

static void
tj_rec(int n)
{
    PROBE_SCOPE("tj_rec");
    if (n > 0)
        tj_rec(n - 1);
}

static void
tj_lines(void)
{
    for (int i = 0; i < 4; i++)
        PROBE_LINE();
    if (never)
        PROBE_LINE();
}

static void
tj_counters(void)
{
    for (int i = 0; i < 3; i++)
        PROBE_COUNT("tj_counter", INT64_C(-411522630041));
    /* 2^53 + 1: exact only if printed as an integer, never through a double. */
    PROBE_COUNT("tj_big", INT64_C(9007199254740993));
}

/* Quote, backslash, newline, control bytes, DEL, a lone 0xff, valid 2- and 4-byte
 * UTF-8, U+2028, a cut-off sequence, an overlong and a surrogate. */
#define TJ_ODD_NAME                                                                      \
    "tj_odd \"q\" \\ \n \x01 \x1f \x7f \xff \xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8 "     \
    "\xe2\x82 \xc0\xaf \xed\xa0\x80 end"

static void
tj_odd(void)
{
    PROBE_SCOPE(TJ_ODD_NAME);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT.json\n", argv[0]);
        return 2;
    }

    int r = probe_thread_name("tj \"main\"\xff");

    if (r < 0) {
        fprintf(stderr, "probe_thread_name: %s\n", probe_strerror(r));
        return 1;
    }
    for (int i = 0; i < 3; i++)
        tj_outer();
    for (int i = 0; i < 3; i++)
        tj_rec(2);
    tj_lines();
    tj_counters();
    tj_odd();

    r = probe_report_write(argv[1], "json");
    if (r < 0) {
        fprintf(stderr, "probe_report_write(%s): %s\n", argv[1], probe_strerror(r));
        return 1;
    }
    return 0;
}
