/* Helpers shared by the core Check suites (tests/test-*.c). Header-only: every
 * helper is static, so each suite stays one executable built from one file. */
#ifndef PROBE_TESTS_COMMON_H
#define PROBE_TESTS_COMMON_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>

/* Check's own default is 4 s per test, too short for the thread tests under TSan. */
#define TEST_TIMEOUT 60

static inline uint64_t
test_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t
test_cpu_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Burn CPU on the calling thread for about @ns of thread CPU time. */
static inline void
test_spin_ns(uint64_t ns)
{
    uint64_t end = test_cpu_ns(CLOCK_THREAD_CPUTIME_ID) + ns;
    volatile uint64_t sink = 0;

    /* Mostly user-mode work: reading the thread CPU clock is a system call here. */
    do {
        for (int i = 0; i < 100000; i++)
            sink += (uint64_t)i;
    } while (test_cpu_ns(CLOCK_THREAD_CPUTIME_ID) < end);
}

static inline uint64_t
test_gettid(void)
{
    return (uint64_t)syscall(SYS_gettid);
}

/* Take a snapshot, failing the test if that fails. */
static inline probe_snapshot *
test_snap(void)
{
    probe_snapshot *snap = probe_snapshot_take();

    ck_assert_msg(snap != NULL, "probe_snapshot_take() returned NULL");
    return snap;
}

/* The site named @name, failing the test if there is none. */
static inline const probe_site_info *
test_site(const probe_snapshot *snap, const char *name)
{
    const probe_site_info *si = probe_snapshot_find(snap, name);

    ck_assert_msg(si != NULL, "no site named \"%s\" in the snapshot", name);
    ck_assert_str_eq(si->name, name);
    return si;
}

/* The calls of the site named @name in a fresh snapshot. */
static inline uint64_t
test_calls(const char *name)
{
    probe_snapshot *snap = test_snap();
    uint64_t calls = test_site(snap, name)->calls;

    probe_snapshot_free(snap);
    return calls;
}

/* The name a PROBE_LINE() at @line of this file gets: "file:line". */
#define test_line_name(buf, line) \
    snprintf((buf), sizeof(buf), "%s:%d", __FILE__, (int)(line))

/* The edge caller -> callee (by site names), or NULL. */
static inline const probe_edge_info *
test_edge(const probe_snapshot *snap, const char *caller, const char *callee)
{
    const probe_site_info *a = probe_snapshot_find(snap, caller);
    const probe_site_info *b = probe_snapshot_find(snap, callee);

    if (!a || !b)
        return NULL;
    for (size_t i = 0; i < probe_snapshot_edge_count(snap); i++) {
        const probe_edge_info *e = probe_snapshot_edge(snap, i);

        if (e && e->caller == a->index && e->callee == b->index)
            return e;
    }
    return NULL;
}

/* The listed thread with kernel id @tid, or NULL. */
static inline const probe_thread_info *
test_thread(const probe_snapshot *snap, uint64_t tid)
{
    for (size_t i = 0; i < probe_snapshot_thread_count(snap); i++) {
        const probe_thread_info *t = probe_snapshot_thread(snap, i);

        if (t && t->tid == tid)
            return t;
    }
    return NULL;
}

/* Every test starts recording, from a clean slate (the suites also run in
 * CK_FORK=no mode for debugging, where tests share one process). */
static inline void
test_setup(void)
{
    probe_start();
    probe_reset();
}

/* Run @s and return the exit status for meson. */
static inline int
test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);

    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
