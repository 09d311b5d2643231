/* Output paths that are FIFOs: with no reader, probe_report_write(), a stream trace
 * and the report at exit (PROBE_OUTPUT, PROBE_TRACE=stream:) fail at once with
 * PROBE_ENXIO (at exit: one line on stderr) instead of waiting for ever; with a
 * reader, all the output reaches it. The environment cases run this program again
 * ("--child") with the variable set. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <probe/probe.h>

#include "common.h"

/* A child that exits promptly takes milliseconds; one that hangs never exits. */
#define CHILD_DEADLINE_NS (20ull * 1000000000ull)

static char dir[256], fifo[300];

static void
fifo_setup(void)
{
    const char *base = getenv("TMPDIR");

    test_setup();
    snprintf(dir, sizeof(dir), "%s/probe-fifo-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(fifo, sizeof(fifo), "%s/out", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
}

static void
fifo_teardown(void)
{
    unlink(fifo);
    rmdir(dir);
}

/* ---- collecting what a descriptor delivers --------------------------------------- */

struct buf {
    char *p;
    size_t n;
};

/* Read what @fd (non-blocking) has now into @b: 0 at end of file, 1 if more may come. */
static int
take(int fd, struct buf *b)
{
    char chunk[4096];

    for (;;) {
        ssize_t k = read(fd, chunk, sizeof(chunk));
        if (k > 0) {
            b->p = realloc(b->p, b->n + (size_t)k + 1);
            ck_assert_ptr_nonnull(b->p);
            memcpy(b->p + b->n, chunk, (size_t)k);
            b->n += (size_t)k;
            b->p[b->n] = '\0';
            continue;
        }
        if (k == 0)
            return 0;
        ck_assert_msg(errno == EAGAIN || errno == EINTR, "read: %s", strerror(errno));
        return 1;
    }
}

static const char *
text(const struct buf *b)
{
    return b->p ? b->p : "";
}

/* The FIFO's read end, open before any writer (so a writer finds a reader). */
static int
open_reader(void)
{
    int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    return fd;
}

/* In-process writers: a thread reads the FIFO until the writer is done. */
struct reader {
    int fd;
    int done; /* set once the writer has closed its end */
    struct buf got;
    pthread_t th;
};

static void *
reader_main(void *arg)
{
    struct reader *r = arg;

    for (;;) {
        int done = __atomic_load_n(&r->done, __ATOMIC_ACQUIRE);
        if (take(r->fd, &r->got) == 0 && done)
            break;
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        (void)poll(&pfd, 1, 10);
    }
    return NULL;
}

static void
reader_start(struct reader *r)
{
    memset(r, 0, sizeof(*r));
    r->fd = open_reader();
    ck_assert_int_eq(pthread_create(&r->th, NULL, reader_main, r), 0);
}

static void
reader_finish(struct reader *r)
{
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_join(r->th, NULL), 0);
    close(r->fd);
}

/* Ten calls of a scope named @name (a literal: sites are static). */
#define fifo_scopes(name)                                                              \
    do {                                                                               \
        for (int i_ = 0; i_ < 10; i_++) {                                              \
            PROBE_SCOPE(name);                                                         \
        }                                                                              \
    } while (0)

/* ---- probe_report_write() and the stream, in this process ----------------------- */

START_TEST(report_to_fifo_without_reader_fails)
{
    fifo_scopes("fifo_scope");
    ck_assert_int_eq(probe_report_write(fifo, "text"), PROBE_ENXIO);
    ck_assert_str_ne(probe_strerror(PROBE_ENXIO), probe_strerror(-123456));
}
END_TEST

START_TEST(report_to_fifo_with_reader_arrives)
{
    struct reader r;

    fifo_scopes("fifo_scope");
    reader_start(&r);
    ck_assert_int_eq(probe_report_write(fifo, "json"), 0);
    reader_finish(&r);
    const char *s = text(&r.got);
    ck_assert_msg(r.got.n > 2 && s[0] == '{' && strcmp(s + r.got.n - 2, "}\n") == 0,
                  "not a whole JSON report: \"%s\"", s);
    ck_assert_ptr_nonnull(strstr(s, "\"fifo_scope\""));
    free(r.got.p);
}
END_TEST

START_TEST(stream_to_fifo_without_reader_fails)
{
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;

    o.mode = PROBE_TRACE_STREAM;
    o.path = fifo;
    ck_assert_int_eq(probe_trace_start(&o), PROBE_ENXIO);
    ck_assert_int_eq(probe_trace_is_active(), 0);
}
END_TEST

START_TEST(stream_to_fifo_with_reader_arrives)
{
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;
    struct reader r;

    o.mode = PROBE_TRACE_STREAM;
    o.path = fifo;
    reader_start(&r);
    ck_assert_int_eq(probe_trace_start(&o), 0);
    fifo_scopes("fifo_stream_scope");
    ck_assert_int_eq(probe_trace_stop(), 0);
    reader_finish(&r);
    const char *s = text(&r.got);
    ck_assert_msg(r.got.n > 2 && strncmp(s, "{\"traceEvents\":[", 16) == 0 &&
                      strcmp(s + r.got.n - 2, "}\n") == 0,
                  "not a whole trace: \"%s\"", s);
    ck_assert_ptr_nonnull(strstr(s, "\"fifo_stream_scope\""));
    ck_assert_ptr_nonnull(strstr(s, "\"otherData\""));
    free(r.got.p);
}
END_TEST

/* ---- the environment: this program again, with @var=@value ---------------------- */

/* This program, whatever directory the test runs in. */
static const char self_exe[] = "/proc/self/exe";

struct run {
    int status; /* of waitpid(), or -1 if it hung and was killed */
    struct buf err, out;
};

/* Run "self --child" with @var=@value and PROBE_FORMAT=json; collect its stderr and,
 * with @reader >= 0, what it wrote to the FIFO. */
static void
run_child(const char *var, const char *value, int reader, struct run *res)
{
    int errp[2];

    memset(res, 0, sizeof(*res));
    ck_assert_int_eq(pipe2(errp, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(errp[1], STDERR_FILENO);
        setenv(var, value, 1);
        setenv("PROBE_FORMAT", "json", 1);
        execl(self_exe, self_exe, "--child", (char *)NULL);
        _exit(127);
    }
    close(errp[1]);
    fcntl(errp[0], F_SETFL, O_NONBLOCK);

    uint64_t deadline = test_now_ns() + CHILD_DEADLINE_NS;
    pid_t r;
    int status = 0;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && test_now_ns() < deadline) {
        (void)take(errp[0], &res->err);
        if (reader >= 0)
            (void)take(reader, &res->out);
        usleep(2000);
    }
    if (r == 0) {
        kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
        res->status = -1;
    } else {
        res->status = status;
    }
    /* It has exited: what it wrote is all there. */
    while (take(errp[0], &res->err) != 0)
        usleep(1000);
    if (reader >= 0)
        (void)take(reader, &res->out);
    close(errp[0]);
}

static void
assert_exited(const struct run *res)
{
    ck_assert_msg(res->status != -1, "the child hung (killed after 20 s); stderr: %s",
                  text(&res->err));
    ck_assert_msg(WIFEXITED(res->status) && WEXITSTATUS(res->status) == 0,
                  "child wait status 0x%x; stderr: %s", res->status, text(&res->err));
}

/* One line on stderr, naming @what and the missing reader. */
static void
assert_one_line(const struct run *res, const char *what)
{
    const char *s = text(&res->err);
    const char *nl = strchr(s, '\n');

    ck_assert_msg(nl && nl[1] == '\0', "not one line on stderr: \"%s\"", s);
    ck_assert_msg(strncmp(s, "libprobe: ", 10) == 0 && strstr(s, what) &&
                      strstr(s, probe_strerror(PROBE_ENXIO)),
                  "stderr: \"%s\"", s);
}

START_TEST(env_output_fifo_without_reader_exits)
{
    struct run res;

    run_child("PROBE_OUTPUT", fifo, -1, &res);
    assert_exited(&res);
    assert_one_line(&res, fifo);
    free(res.err.p);
}
END_TEST

START_TEST(env_output_fifo_with_reader_arrives)
{
    struct run res;
    int reader = open_reader();

    run_child("PROBE_OUTPUT", fifo, reader, &res);
    close(reader);
    assert_exited(&res);
    ck_assert_msg(res.err.n == 0, "stderr: %s", text(&res.err));
    const char *s = text(&res.out);
    ck_assert_msg(res.out.n > 2 && s[0] == '{' && strcmp(s + res.out.n - 2, "}\n") == 0,
                  "not a whole JSON report: \"%s\"", s);
    ck_assert_ptr_nonnull(strstr(s, "\"fifo_child_scope\""));
    free(res.out.p);
}
END_TEST

START_TEST(env_stream_fifo_without_reader_exits)
{
    char value[320];
    struct run res;

    snprintf(value, sizeof(value), "stream:%s", fifo);
    run_child("PROBE_TRACE", value, -1, &res);
    assert_exited(&res);
    assert_one_line(&res, value);
    free(res.err.p);
}
END_TEST

START_TEST(env_stream_fifo_with_reader_arrives)
{
    char value[320];
    struct run res;
    int reader = open_reader();

    snprintf(value, sizeof(value), "stream:%s", fifo);
    run_child("PROBE_TRACE", value, reader, &res);
    close(reader);
    assert_exited(&res);
    ck_assert_msg(res.err.n == 0, "stderr: %s", text(&res.err));
    const char *s = text(&res.out);
    ck_assert_msg(res.out.n > 2 && strncmp(s, "{\"traceEvents\":[", 16) == 0 &&
                      strcmp(s + res.out.n - 2, "}\n") == 0,
                  "not a whole trace: \"%s\"", s);
    ck_assert_ptr_nonnull(strstr(s, "\"fifo_child_scope\""));
    free(res.out.p);
}
END_TEST

static Suite *
fifo_suite(void)
{
    Suite *s = suite_create("output-fifo");
    TCase *tc = tcase_create("api");

    tcase_add_checked_fixture(tc, fifo_setup, fifo_teardown);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, report_to_fifo_without_reader_fails);
    tcase_add_test(tc, report_to_fifo_with_reader_arrives);
    tcase_add_test(tc, stream_to_fifo_without_reader_fails);
    tcase_add_test(tc, stream_to_fifo_with_reader_arrives);
    suite_add_tcase(s, tc);

    tc = tcase_create("environment");
    tcase_add_checked_fixture(tc, fifo_setup, fifo_teardown);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, env_output_fifo_without_reader_exits);
    tcase_add_test(tc, env_output_fifo_with_reader_arrives);
    tcase_add_test(tc, env_stream_fifo_without_reader_exits);
    tcase_add_test(tc, env_stream_fifo_with_reader_arrives);
    suite_add_tcase(s, tc);
    return s;
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child") == 0) {
        fifo_scopes("fifo_child_scope");
        return 0; /* the report and the stream are written at exit */
    }
    return test_run(fifo_suite());
}
