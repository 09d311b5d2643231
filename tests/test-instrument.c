/* libprobe-instrument: this file is built with -finstrument-functions, so each of its
 * functions is a scope with no macro. What the example's check cannot reach: the
 * hooks while recording is stopped, a longjmp() over instrumented frames, a function
 * met first on two threads at once, and run-time sites beside static ones. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>

#include "common.h"
#include "kicker.h"

static __thread volatile int sink; /* per thread: the race test runs 4 */
static jmp_buf jump;

__attribute__((noinline)) static void
ins_leaf(void)
{
    sink++;
}

__attribute__((noinline)) static void
ins_stopped(void)
{
    sink++;
}

START_TEST(stopped_calls_are_not_counted)
{
    probe_stop();
    for (int i = 0; i < 5; i++)
        ins_stopped();
    probe_start();
    for (int i = 0; i < 2; i++)
        ins_stopped();
    ck_assert_uint_eq(test_calls("ins_stopped"), 2);
}
END_TEST

__attribute__((noinline)) static void
ins_jumper(void)
{
    longjmp(jump, 1);
}

__attribute__((noinline)) static void
ins_jump_over(void)
{
    if (setjmp(jump) == 0)
        ins_jumper();
    /* ins_jumper's exit hook never ran: its frame is above this one's. */
}

__attribute__((noinline)) static void
ins_after_jump(void)
{
    ins_leaf();
}

START_TEST(longjmp_frames_are_closed)
{
    ins_jump_over();
    for (int i = 0; i < 3; i++)
        ins_after_jump();
    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "ins_jump_over")->calls, 1);
    ck_assert_uint_eq(test_site(snap, "ins_after_jump")->calls, 3);
    /* The later calls pair with their own entries: ins_after_jump is under this
     * test's function, not under the abandoned ins_jumper. */
    ck_assert_ptr_null(test_edge(snap, "ins_jumper", "ins_after_jump"));
    ck_assert_uint_eq(test_edge(snap, "ins_after_jump", "ins_leaf")->calls, 3);
    ck_assert_uint_ge(probe_snapshot_losses(snap)->unbalanced, 1);
    probe_snapshot_free(snap);
}
END_TEST

#define RACE_FUNCS 64
#define RACE_THREADS 4

/* 64 distinct functions, each met first by 4 threads at the same moment. */
#define F(i)                                                                           \
    __attribute__((noinline)) static void ins_race_##i(void) { sink++; }
#define F8(i) F(i##0) F(i##1) F(i##2) F(i##3) F(i##4) F(i##5) F(i##6) F(i##7)
F8(1) F8(2) F8(3) F8(4) F8(5) F8(6) F8(7) F8(8)
#define P(i) ins_race_##i,
#define P8(i) P(i##0) P(i##1) P(i##2) P(i##3) P(i##4) P(i##5) P(i##6) P(i##7)
static void (*const race_funcs[RACE_FUNCS])(void) = {P8(1) P8(2) P8(3) P8(4) P8(5) P8(6)
                                                     P8(7) P8(8)};
static pthread_barrier_t race_barrier;

static void *
race_worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&race_barrier);
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < RACE_FUNCS; i++)
            race_funcs[i]();
    return NULL;
}

START_TEST(first_calls_race_into_one_site_each)
{
    pthread_t t[RACE_THREADS];

    pthread_barrier_init(&race_barrier, NULL, RACE_THREADS);
    for (int i = 0; i < RACE_THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, race_worker, NULL), 0);
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&race_barrier);
    probe_snapshot *snap = test_snap();
    size_t found = 0;
    for (size_t i = 0; i < probe_snapshot_site_count(snap); i++) {
        const probe_site_info *si = probe_snapshot_site(snap, i);
        if (strncmp(si->name, "ins_race_", 9) != 0)
            continue;
        found++;
        ck_assert_uint_eq(si->calls, 10 * RACE_THREADS);
        ck_assert_str_eq(si->function, si->name);
        ck_assert_int_eq(si->kind, PROBE_KIND_SCOPE);
        ck_assert_ptr_nonnull(si->file);
    }
    ck_assert_uint_eq(found, RACE_FUNCS);
    ck_assert_uint_eq(test_edge(snap, "race_worker", "ins_race_10")->calls,
                      10 * RACE_THREADS);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(runtime_sites_nest_with_macro_scopes)
{
    {
        PROBE_SCOPE("ins_macro");
        ins_leaf();
    }
    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(test_edge(snap, "ins_macro", "ins_leaf")->calls, 1);
    probe_snapshot_free(snap);
}
END_TEST

/* Recording stops and starts inside a recursion: the calls entered while stopped
 * are not counted, and every exit still pairs with its own entry. */
__attribute__((noinline)) static void
ins_rec_stop(int n)
{
    if (n == 2)
        probe_stop();
    if (n > 0)
        ins_rec_stop(n - 1);
    if (n == 2)
        probe_start();
}

START_TEST(stop_inside_a_recursion_keeps_pairs)
{
    ins_rec_stop(4);
    ins_rec_stop(4);
    probe_snapshot *snap = test_snap();
    const probe_site_info *r = test_site(snap, "ins_rec_stop");
    /* n = 4, 3 and 2 were entered while recording, n = 1 and 0 were not */
    ck_assert_uint_eq(r->calls, 6);
    ck_assert_uint_eq(r->prim_calls, 2);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->unbalanced, 0);
    probe_snapshot_free(snap);
}
END_TEST

/* Deeper than the core's stack: the calls beyond it are counted as overflow, the
 * ones within it exactly, and the stack unwinds cleanly for the next calls. */
__attribute__((noinline)) static void
ins_deep(int n)
{
    sink++;
    if (n > 1)
        ins_deep(n - 1);
    sink++;
}

START_TEST(recursion_beyond_the_depth_limit)
{
    enum { DEEP = 300, LIMIT = 256 };

    ins_deep(DEEP);
    ins_deep(10);
    ins_leaf();
    probe_snapshot *snap = test_snap();
    const probe_loss_info *loss = probe_snapshot_losses(snap);
    /* this test's own function is a frame too, below ins_deep's */
    ck_assert_uint_eq(test_site(snap, "ins_deep")->calls + loss->depth_overflow, DEEP + 10);
    ck_assert_uint_ge(test_site(snap, "ins_deep")->calls, LIMIT - 8);
    ck_assert_uint_eq(test_site(snap, "ins_deep")->prim_calls, 2);
    ck_assert_uint_eq(loss->unbalanced, 0);
    ck_assert_uint_eq(test_site(snap, "ins_leaf")->calls, 1);
    ck_assert_ptr_null(test_edge(snap, "ins_deep", "ins_leaf"));
    probe_snapshot_free(snap);
}
END_TEST

/* ---- signal handlers ------------------------------------------------------------ */

/* An instrumented handler, and the function it calls, can run between any two
 * instructions of another function's hooks on the same thread: every call still
 * pairs with its own exit. */
#define INS_SIG_LOOPS 2000000
#define INS_SIG_WANTED 5000     /* handled signals: more calls until there are this many */

static volatile sig_atomic_t ins_handled;

__attribute__((noinline)) static void
ins_in_handler(void)
{
    sink++;
}

__attribute__((noinline)) static void
ins_handler(int sig)
{
    int saved = errno;

    (void)sig;
    ins_in_handler();
    ins_handled++;
    errno = saved;
}

__attribute__((noinline)) static void
ins_interrupted(int call_handler)
{
    sink++;
    if (call_handler)
        ins_handler(0);
}

START_TEST(signal_handler_functions_keep_pairs)
{
    struct sigaction sa = {.sa_handler = ins_handler, .sa_flags = SA_RESTART};
    struct test_kicker kicker;

    /* The handler's paths are met outside it first: their first call allocates. */
    ins_handler(0);
    ins_interrupted(1);
    probe_reset();
    ins_handled = 0;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    test_kicker_start(&kicker, SIGUSR2, 0);
    uint64_t calls = 0;
    while (calls < INS_SIG_LOOPS ||
           (ins_handled < INS_SIG_WANTED && calls < 20ull * INS_SIG_LOOPS)) {
        ins_interrupted(0);
        calls++;
    }
    test_kicker_stop(&kicker);

    probe_snapshot *snap = test_snap();
    ck_assert_uint_gt(ins_handled, 0);
    ck_assert_uint_eq(test_site(snap, "ins_interrupted")->calls, calls);
    ck_assert_uint_eq(test_site(snap, "ins_handler")->calls, (uint64_t)ins_handled);
    ck_assert_uint_eq(test_site(snap, "ins_in_handler")->calls, (uint64_t)ins_handled);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->unbalanced, 0);
    probe_snapshot_free(snap);
    test_kicker_done(&kicker);
}
END_TEST

static Suite *
instrument_suite(void)
{
    Suite *s = suite_create("instrument");
    TCase *tc = tcase_create("hooks");

    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, stopped_calls_are_not_counted);
    tcase_add_test(tc, longjmp_frames_are_closed);
    tcase_add_test(tc, first_calls_race_into_one_site_each);
    tcase_add_test(tc, runtime_sites_nest_with_macro_scopes);
    tcase_add_test(tc, stop_inside_a_recursion_keeps_pairs);
    tcase_add_test(tc, recursion_beyond_the_depth_limit);
    tcase_add_test(tc, signal_handler_functions_keep_pairs);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(instrument_suite());
}
