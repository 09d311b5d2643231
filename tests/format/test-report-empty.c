/* A program with no instrumentation sites: reports have nothing to say. This file
 * must not use any PROBE_* macro. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "../common.h"

START_TEST(empty_report_fd_is_enodata)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(probe_report_fd(fd, "text"), PROBE_ENODATA);
    ck_assert_int_eq(probe_report_fd(fd, "json"), PROBE_ENODATA);
    /* Argument errors still come first. */
    ck_assert_int_eq(probe_report_fd(fd, "nosuch"), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_fd(-1, "text"), PROBE_EBADF);
    close(fd);
}
END_TEST

START_TEST(empty_report_write_creates_nothing)
{
    const char *base = getenv("TMPDIR");
    char dir[512], path[600];
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/probe-empty-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/out.txt", dir);
    ck_assert_int_eq(probe_report_write(path, "text"), PROBE_ENODATA);
    ck_assert_int_eq(stat(path, &st), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(empty_snapshot_still_formats)
{
    probe_snapshot *snap = test_snap();
    char *buf = NULL;

    ck_assert_uint_eq(probe_snapshot_site_count(snap), 0);
    /* An explicit snapshot is formatted even when empty. */
    ck_assert_int_eq(probe_snapshot_format(snap, "json", &buf, NULL), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"sites\":[\n]"));
    free(buf);
    ck_assert_int_eq(probe_snapshot_format(snap, "text", &buf, NULL), 0);
    ck_assert_ptr_nonnull(strstr(buf, "0 scope calls"));
    free(buf);
    probe_snapshot_free(snap);
}
END_TEST

static Suite *
report_empty_suite(void)
{
    Suite *s = suite_create("report-empty");
    TCase *tc = tcase_create("empty");

    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, empty_report_fd_is_enodata);
    tcase_add_test(tc, empty_report_write_creates_nothing);
    tcase_add_test(tc, empty_snapshot_still_formats);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(report_empty_suite());
}
