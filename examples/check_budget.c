/* CPU and instruction budgets in a Check test file: copy it next to your tests.
 *
 *   cc check_budget.c $(pkg-config --cflags --libs probe check) -o check_budget
 *   ./check_budget                              # CPU budgets; instructions if the
 *                                               # CPU's counter is readable
 *   valgrind -q --tool=callgrind ./check_budget # exact instruction budgets
 *   PROBE_BUDGET_BASELINE=budgets.txt ./check_budget   # record, then compare
 *
 * Under callgrind the instruction budget is exact (the same count on every machine,
 * however loaded) and the CPU budgets are skipped; natively the CPU budgets are
 * checked against thread CPU time, which other processes do not inflate. When a
 * budget fails, the message names the figure, the budget, the margin and the
 * PROBE_SCOPEs whose time grew most. docs/budgets.md says how to pick the numbers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <probe/check.h>

/* The code under test: count "key = value" lines, with a scope for each part. */
static int
parse_line(const char *line, size_t len)
{
    PROBE_SCOPE("parse_line");
    const char *eq = memchr(line, '=', len);

    return eq != NULL && eq != line;
}

static void
parse_config(void *arg)
{
    const char *text = arg;
    int entries = 0;

    PROBE_SCOPE("parse_config");
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        entries += parse_line(text, len);
        text += len + (nl != NULL);
    }
    *(volatile int *)&entries = entries;
}

#define LINES 64
static char config[LINES * 32];

static void
make_config(void)
{
    size_t off = 0;

    for (int i = 0; i < LINES; i++)
        off += (size_t)snprintf(config + off, sizeof(config) - off, "key%02d = value %d\n", i,
                                i * 7);
}

START_TEST(parse_config_instructions)
{
    /* Measured: 14,664 under callgrind (gcc 12, -O2); room for other
     * compilers and flags, not for an accidental quadratic loop. */
    ck_assert_probe_instructions_below(parse_config, config, 40000);
}
END_TEST

START_TEST(parse_config_cpu)
{
    /* Measured: about 2 µs; a budget 500 times that holds on any CI machine. */
    ck_assert_probe_cpu_below(parse_config, config, 1000 * 1000);
}
END_TEST

START_TEST(parse_config_scopes)
{
    probe_reset();
    parse_config(config);
    ck_assert_probe_scope_calls("parse_config", ==, 1);
    ck_assert_probe_scope_calls("parse_line", ==, LINES);
    ck_assert_probe_scope_mean_below("parse_line", 100 * 1000);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("check_budget");
    TCase *tc = tcase_create("parse_config");

    make_config();
    tcase_set_timeout(tc, 120);     /* callgrind runs code some 50 times slower */
    tcase_add_test(tc, parse_config_instructions);
    tcase_add_test(tc, parse_config_cpu);
    tcase_add_test(tc, parse_config_scopes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
