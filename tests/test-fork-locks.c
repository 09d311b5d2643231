/* fork() while another thread holds each of libprobe's locks (docs/locks.md): a
 * thread calls a public function that takes the lock, in a loop, while the main
 * thread forks; each child calls the same function once and exits. A lock left held
 * in the child (no fork handler) hangs it; the parent kills it at a wide deadline. */
#include <errno.h>
#include <fcntl.h>
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

#define FORKS 20
/* Each child's call takes milliseconds; a hung one never returns. */
#define CHILD_DEADLINE_NS (20ull * 1000000000ull)

static int stop_hammer;
static void (*hammer_op)(unsigned);
static int devnull = -1;
static char tmpdir[] = "/tmp/probe-fork-locks-XXXXXX";

static void *
hammer_main(void *arg)
{
    (void)arg;
    for (unsigned i = 0; !__atomic_load_n(&stop_hammer, __ATOMIC_ACQUIRE); i++)
        hammer_op(i);
    return NULL;
}

/* Fork FORKS children while a thread runs @op(i) for i = 0, 1, ...; each child
 * runs @child once and exits with its result. Fails the test if a child hangs or
 * fails. */
static void
fork_while(void (*op)(unsigned), int (*child)(void), const char *what)
{
    pthread_t th;
    pid_t pids[FORKS];
    int hung = 0, failed = 0, first_status = 0;

    hammer_op = op;
    __atomic_store_n(&stop_hammer, 0, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_create(&th, NULL, hammer_main, NULL), 0);
    usleep(20000); /* let it get going */
    for (int i = 0; i < FORKS; i++) {
        usleep(1000 + 397u * (unsigned)i % 3000); /* fork at varied points of its loop */
        fflush(NULL);
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0)
            _exit(child());
    }
    __atomic_store_n(&stop_hammer, 1, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_join(th, NULL), 0);

    uint64_t deadline = test_now_ns() + CHILD_DEADLINE_NS;
    for (int i = 0; i < FORKS; i++) {
        int status;
        pid_t r;

        while ((r = waitpid(pids[i], &status, WNOHANG)) == 0 && test_now_ns() < deadline)
            usleep(5000);
        if (r == 0) {
            kill(pids[i], SIGKILL);
            (void)waitpid(pids[i], &status, 0);
            hung++;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            if (!failed++)
                first_status = status;
        }
    }
    ck_assert_msg(hung == 0 && failed == 0,
                  "%s: %d of %d children hung, %d failed (first wait status 0x%x)", what,
                  hung, FORKS, failed, first_status);
}

static void
fork_setup(void)
{
    test_setup();
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(devnull, 0);
}

/* ---- core/trace.c: names_lock (interned instant names), ctl_lock --------------- */

static void
op_instant(unsigned i)
{
    char name[32];

    /* New names until the table is full, then every call scans all of it. */
    snprintf(name, sizeof(name), "fl_instant_%u", i);
    (void)probe_trace_instant(name);
}

static int
child_instant(void)
{
    /* The child starts with tracing off. */
    if (probe_trace_start(NULL) < 0)
        return 2;
    if (probe_trace_instant("fl_child_instant") < 0)
        return 3;
    return probe_trace_stop() < 0 ? 4 : 0;
}

START_TEST(fork_while_interning_names)
{
    ck_assert_int_eq(probe_trace_start(NULL), 0);
    fork_while(op_instant, child_instant, "probe_trace_instant");
    ck_assert_int_eq(probe_trace_stop(), 0);
}
END_TEST

/* Stream mode: trace.c's ctl_lock across the stream's open and close, the stream
 * writer's lock, the orphaned buffers' lock. */
static void
op_stream(unsigned i)
{
    char path[64];
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;

    snprintf(path, sizeof(path), "%s/stream%u.json", tmpdir, i % 4);
    o.mode = PROBE_TRACE_STREAM;
    o.path = path;
    if (probe_trace_start(&o) == 0) {
        for (int k = 0; k < 100; k++) {
            PROBE_SCOPE("fl_stream_scope");
        }
        (void)probe_trace_stop();
    }
}

static int
child_stream(void)
{
    char path[64];
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;

    snprintf(path, sizeof(path), "%s/child%d.json", tmpdir, (int)getpid());
    o.mode = PROBE_TRACE_STREAM;
    o.path = path;
    if (probe_trace_start(&o) < 0)
        return 2;
    {
        PROBE_SCOPE("fl_stream_child");
    }
    int rc = probe_trace_stop();
    unlink(path);
    return rc < 0 ? 3 : 0;
}

START_TEST(fork_while_streaming)
{
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    fork_while(op_stream, child_stream, "probe_trace_start/stop (stream)");
    for (int i = 0; i < 4; i++) {
        char path[64];
        snprintf(path, sizeof(path), "%s/stream%d.json", tmpdir, i);
        unlink(path);
    }
    rmdir(tmpdir);
}
END_TEST

/* ---- core/thread.c and sites.c (registry, sites), snapshots, reset -------------- */

static void
op_snapshot(unsigned i)
{
    PROBE_SCOPE("fl_snapshot_scope");
    probe_snapshot_free(probe_snapshot_take());
    if (i % 8 == 0)
        probe_reset();
}

static int
child_snapshot(void)
{
    probe_snapshot *snap = probe_snapshot_take();

    if (!snap)
        return 2;
    probe_snapshot_free(snap);
    probe_reset();
    return 0;
}

START_TEST(fork_while_taking_snapshots)
{
    fork_while(op_snapshot, child_snapshot, "probe_snapshot_take");
}
END_TEST

/* ---- format/registry.c: the formatter table ---------------------------------- */

static int
fl_write(const probe_snapshot *snap, probe_writer *w, const char *options, void *user)
{
    (void)snap;
    (void)options;
    (void)user;
    return probe_writer_puts(w, "fl\n");
}

static int
formatter_cycle(const char *name)
{
    probe_formatter f = PROBE_FORMATTER_INIT;
    char *out = NULL;

    f.name = name;
    f.write = fl_write;
    if (probe_formatter_register(&f) < 0)
        return 2;
    probe_snapshot *snap = probe_snapshot_take();
    int rc = snap ? probe_snapshot_format(snap, name, &out, NULL) : PROBE_ENOMEM;
    probe_snapshot_free(snap);
    free(out);
    if (probe_formatter_unregister(name) < 0)
        return 3;
    return rc < 0 ? 4 : 0;
}

static void
op_formatter(unsigned i)
{
    (void)i;
    (void)formatter_cycle("fl-parent");
}

static int
child_formatter(void)
{
    return formatter_cycle("fl-child");
}

START_TEST(fork_while_registering_formatters)
{
    PROBE_SCOPE("fl_formatter_scope"); /* something to report */
    fork_while(op_formatter, child_formatter, "probe_formatter_register/lookup");
}
END_TEST

/* ---- sampler/timer.c (ctl_lock, sampler_lock), monitor.c (its thread's lock) ---- */

static void
op_sampler(unsigned i)
{
    (void)i;
    if (probe_sampler_start(NULL) == 0)
        (void)probe_sampler_stop();
}

static int
child_sampler(void)
{
    if (probe_sampler_start(NULL) < 0)
        return 2;
    return probe_sampler_stop() < 0 ? 3 : 0;
}

START_TEST(fork_while_starting_the_sampler)
{
    fork_while(op_sampler, child_sampler, "probe_sampler_start/stop");
}
END_TEST

/* ---- sampler/symbolize.c: elfsym.c's and debuginfo.c's caches ------------------- */

static void
op_symbols(unsigned i)
{
    (void)i;
    {
        PROBE_SCOPE("fl_symbols_spin");
        test_spin_ns(2000000);
    }
    probe_snapshot_free(probe_snapshot_take()); /* names the samples */
}

static int
child_symbols(void)
{
    /* The parent's samples are the child's: naming them takes the caches' locks. */
    probe_snapshot *snap = probe_snapshot_take();

    if (!snap)
        return 2;
    int rc = probe_snapshot_sample_count(snap) > 0 ? 0 : 3;
    probe_snapshot_free(snap);
    return rc;
}

START_TEST(fork_while_naming_samples)
{
    probe_sampler_options o = PROBE_SAMPLER_OPTIONS_INIT;

    o.interval_ns = 200000;
    ck_assert_int_eq(probe_sampler_start(&o), 0);
    test_spin_ns(20000000);
    fork_while(op_symbols, child_symbols, "probe_snapshot_take (symbols)");
    ck_assert_int_eq(probe_sampler_stop(), 0);
}
END_TEST

/* ---- fault/: user signals, the fatal handler, the watchdog, dumps --------------- */

static void
op_fault_register(unsigned i)
{
    (void)i;
    if (probe_fault_register(SIGUSR2, devnull, 0, 0) == 0)
        (void)probe_fault_unregister(SIGUSR2);
}

static int
child_fault_register(void)
{
    if (probe_fault_register(SIGUSR2, devnull, 0, 0) < 0)
        return 2;
    return probe_fault_unregister(SIGUSR2) < 0 ? 3 : 0;
}

START_TEST(fork_while_registering_signals)
{
    fork_while(op_fault_register, child_fault_register, "probe_fault_register");
}
END_TEST

static void
op_fault_enable(unsigned i)
{
    (void)i;
    if (probe_fault_enable(devnull, 0) == 0)
        (void)probe_fault_disable();
}

static int
child_fault_enable(void)
{
    if (probe_fault_enable(devnull, 0) < 0)
        return 2;
    return probe_fault_disable() < 0 ? 3 : 0;
}

START_TEST(fork_while_enabling_the_dumper)
{
    fork_while(op_fault_enable, child_fault_enable, "probe_fault_enable/disable");
}
END_TEST

static void
op_watchdog(unsigned i)
{
    (void)i;
    if (probe_fault_dump_later(1000.0, 0, devnull, 0) == 0)
        probe_fault_cancel_dump_later();
}

static int
child_watchdog(void)
{
    /* Twice: the second arming signals the condition the first thread waits on. */
    for (int k = 0; k < 2; k++) {
        if (probe_fault_dump_later(1000.0, 0, devnull, 0) < 0)
            return 2 + k;
        if (probe_fault_dump_later(1000.0, 0, devnull, 0) < 0)
            return 4 + k;
        probe_fault_cancel_dump_later();
    }
    return 0;
}

START_TEST(fork_while_arming_the_watchdog)
{
    fork_while(op_watchdog, child_watchdog, "probe_fault_dump_later/cancel");
}
END_TEST

static void
op_dump(unsigned i)
{
    (void)i;
    (void)probe_fault_dump(devnull, 1);
}

static int
child_dump(void)
{
    char buf[8192];
    FILE *f = tmpfile();

    if (!f)
        return 2;
    if (probe_fault_dump(fileno(f), 1) < 0)
        return 3;
    ssize_t n = pread(fileno(f), buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 4;
    buf[n] = '\0';
    /* The dump lock of a parent's thread that is not here is not waited for. */
    return strstr(buf, "another dump is still running") ? 5 : 0;
}

START_TEST(fork_while_dumping)
{
    fork_while(op_dump, child_dump, "probe_fault_dump");
}
END_TEST

static Suite *
fork_locks_suite(void)
{
    Suite *s = suite_create("fork-locks");
    TCase *tc = tcase_create("fork");

    tcase_add_checked_fixture(tc, fork_setup, NULL);
    tcase_set_timeout(tc, 2 * TEST_TIMEOUT);
    tcase_add_test(tc, fork_while_interning_names);
    tcase_add_test(tc, fork_while_streaming);
    tcase_add_test(tc, fork_while_taking_snapshots);
    tcase_add_test(tc, fork_while_registering_formatters);
    tcase_add_test(tc, fork_while_starting_the_sampler);
    tcase_add_test(tc, fork_while_naming_samples);
    tcase_add_test(tc, fork_while_registering_signals);
    tcase_add_test(tc, fork_while_enabling_the_dumper);
    tcase_add_test(tc, fork_while_arming_the_watchdog);
    tcase_add_test(tc, fork_while_dumping);
    suite_add_tcase(s, tc);
    return s;
}

/* As in test-threads.c: gcc 12's sanitizer allocators are not locked around fork(),
 * so a child forked while other threads allocate can hang in malloc. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

int
main(void)
{
    if (SANITIZED)
        return 77;
    return test_run(fork_locks_suite());
}
