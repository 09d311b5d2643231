/* The lock-free walk of the thread list (thread_walk, what the fault dumper runs in
 * its signal handler) against threads exiting meanwhile: an exited thread's state,
 * and a timeline swapped out, must outlive every walk that may still reach it,
 * however slow the walk.
 *
 * thread_walk() is internal: this suite links libprobe.a and includes core headers.
 * Its threads record nothing while they are walked (the walk reads their stacks
 * racily by design), so that ThreadSanitizer checks only the reclamation. */
#include <pthread.h>

#include "common.h"

#include <probe/trace.h>

#include "core/thread.h"
#include "core/walk.h"

#define WORKERS 8

struct worker {
    pthread_t th;
    uint64_t tid;            /* published with release once registered */
};

static struct worker workers[WORKERS];
static int go_exit;          /* the workers exit once this is set */

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    {
        PROBE_SCOPE("walk_worker"); /* registers the thread with libprobe */
    }
    __atomic_store_n(&w->tid, test_gettid(), __ATOMIC_RELEASE);
    while (!__atomic_load_n(&go_exit, __ATOMIC_ACQUIRE))
        usleep(100);
    return NULL;
}

static void
start_workers(void)
{
    __atomic_store_n(&go_exit, 0, __ATOMIC_RELEASE);
    for (int i = 0; i < WORKERS; i++) {
        workers[i].tid = 0;
        ck_assert_int_eq(pthread_create(&workers[i].th, NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        while (!__atomic_load_n(&workers[i].tid, __ATOMIC_ACQUIRE))
            usleep(100);
    }
}

static int
worker_index(uint64_t tid)
{
    for (int i = 0; i < WORKERS; i++) {
        if (workers[i].tid == tid)
            return i;
    }
    return -1;
}

/* What one walk saw. A failed check is noted and asserted after the walk. */
struct seen {
    int seen[WORKERS];
    unsigned others;         /* non-current threads that are no worker of ours */
    int joined;              /* the workers have exited, mid-walk */
    size_t limbo_mid_walk;
    char failure[256];
};

/* The slowest walk there can be: at the first worker it reaches, it lets every worker
 * exit and waits until they have (pthread_join: their exit, libprobe's included,
 * is over), then goes on along the list. With the old bounded wait, each exiting
 * thread gave up waiting for the walk and freed its state: the walk then followed
 * freed memory. */
static void
slow_walk(void *arg, const struct walk_thread *t, const struct walk_frame *frames,
          unsigned n)
{
    struct seen *s = arg;
    (void)frames;

    if (t->current)
        return;
    int i = worker_index(t->tid);
    if (i < 0) {
        s->others++;
        return;
    }
    if (n != 0 && !s->failure[0])
        snprintf(s->failure, sizeof(s->failure), "worker %d: %u frames", i, n);
    if (s->seen[i]++ && !s->failure[0])
        snprintf(s->failure, sizeof(s->failure), "worker %d walked twice", i);
    if (!s->joined) {
        __atomic_store_n(&go_exit, 1, __ATOMIC_RELEASE);
        for (int k = 0; k < WORKERS; k++)
            pthread_join(workers[k].th, NULL);
        s->joined = 1;
        s->limbo_mid_walk = thread_limbo_count();
    }
}

struct walker_arg {
    struct seen seen;
    unsigned walked;
};

static void *
walker_main(void *arg)
{
    struct walker_arg *a = arg;

    a->walked = thread_walk(slow_walk, &a->seen);
    return NULL;
}

START_TEST(exit_during_slow_walk)
{
    for (int round = 0; round < 5; round++) {
        struct walker_arg a = {0};
        pthread_t walker;

        start_workers();
        /* The walk runs on a thread of its own that never used libprobe. */
        ck_assert_int_eq(pthread_create(&walker, NULL, walker_main, &a), 0);
        ck_assert_int_eq(pthread_join(walker, NULL), 0);

        ck_assert_msg(!a.seen.failure[0], "%s", a.seen.failure);
        ck_assert_msg(a.seen.joined, "the walk reached no worker");
        int nseen = 0;
        for (int i = 0; i < WORKERS; i++)
            nseen += a.seen.seen[i];
        /* The calling thread, the workers reached (some may be skipped once their
         * predecessor exits: best effort), and any other live thread. */
        ck_assert_uint_eq(a.walked, 1 + (unsigned)nseen + a.seen.others);
        ck_assert_int_ge(nseen, 1);
        /* Every worker exited while the walk could still reach it: none was freed. */
        ck_assert_uint_eq(a.seen.limbo_mid_walk, WORKERS);
        /* The walk is over: the next look at the registry frees them. */
        probe_snapshot_free(test_snap());
        ck_assert_uint_eq(thread_limbo_count(), 0);
    }
}
END_TEST

/* The same for a timeline: a walk holds a thread's trace buffer (the fault dumper
 * prints its last events) while tracing restarts and the thread's next event swaps
 * in a new buffer. The old one was freed after the bounded wait. */
static int go_emit, emitted;

static void *
tracing_worker(void *arg)
{
    struct worker *w = arg;

    (void)probe_trace_instant("walk_before");
    __atomic_store_n(&w->tid, test_gettid(), __ATOMIC_RELEASE);
    while (!__atomic_load_n(&go_emit, __ATOMIC_ACQUIRE))
        usleep(100);
    (void)probe_trace_instant("walk_after"); /* a new session: a new buffer */
    __atomic_store_n(&emitted, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&go_exit, __ATOMIC_ACQUIRE))
        usleep(100);
    return NULL;
}

struct trace_seen {
    uint64_t tid;
    int done;
    unsigned recent;
    size_t limbo_mid_walk;
    char failure[256];
};

static void
walk_holding_trace(void *arg, const struct walk_thread *t, const struct walk_frame *frames,
                   unsigned n)
{
    struct trace_seen *s = arg;
    struct walk_event ev[4];
    (void)frames;
    (void)n;

    if (t->current || t->tid != s->tid || s->done)
        return;
    s->done = 1;
    const struct trace_buf *b = t->trace;
    if (!b) {
        snprintf(s->failure, sizeof(s->failure), "the worker has no timeline");
        return;
    }
    (void)probe_trace_stop();
    if (probe_trace_start(NULL) != 0) {
        snprintf(s->failure, sizeof(s->failure), "probe_trace_start failed");
        return;
    }
    __atomic_store_n(&go_emit, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&emitted, __ATOMIC_ACQUIRE))
        usleep(100);
    s->limbo_mid_walk = thread_limbo_count();
    s->recent = trace_recent(b, ev, 4); /* the buffer the walk read: still there */
}

static void *
trace_walker_main(void *arg)
{
    (void)thread_walk(walk_holding_trace, arg);
    return NULL;
}

START_TEST(trace_swapped_during_slow_walk)
{
    struct trace_seen s = {0};
    pthread_t walker;

    ck_assert_int_eq(probe_trace_start(NULL), 0);
    __atomic_store_n(&go_exit, 0, __ATOMIC_RELEASE);
    go_emit = emitted = 0;
    workers[0].tid = 0;
    ck_assert_int_eq(pthread_create(&workers[0].th, NULL, tracing_worker, &workers[0]), 0);
    while (!__atomic_load_n(&workers[0].tid, __ATOMIC_ACQUIRE))
        usleep(100);
    s.tid = workers[0].tid;

    ck_assert_int_eq(pthread_create(&walker, NULL, trace_walker_main, &s), 0);
    ck_assert_int_eq(pthread_join(walker, NULL), 0);
    __atomic_store_n(&go_exit, 1, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_join(workers[0].th, NULL), 0);

    ck_assert_msg(!s.failure[0], "%s", s.failure);
    ck_assert_msg(s.done, "the walk did not reach the worker");
    ck_assert_uint_eq(s.limbo_mid_walk, 1);
    ck_assert_uint_eq(s.recent, 1); /* walk_before */
    ck_assert_int_eq(probe_trace_stop(), 0);
    probe_snapshot_free(test_snap());
    ck_assert_uint_eq(thread_limbo_count(), 0);
}
END_TEST

/* Threads come and go by the hundred while another thread walks the list over and
 * over, each walk lingering a little on every thread. */
static int stop_walking;

static void
lingering_walk(void *arg, const struct walk_thread *t, const struct walk_frame *frames,
               unsigned n)
{
    (void)frames;
    (void)n;
    (void)t->tid;
    (*(unsigned long *)arg)++;
    for (volatile int i = 0; i < 2000; i++)
        ;
}

static void *
walk_forever(void *arg)
{
    unsigned long *visits = arg;

    while (!__atomic_load_n(&stop_walking, __ATOMIC_ACQUIRE))
        (void)thread_walk(lingering_walk, visits);
    return NULL;
}

static void *
short_lived(void *arg)
{
    (void)arg;
    {
        PROBE_SCOPE("walk_short_lived");
    }
    return NULL;
}

START_TEST(threads_churn_while_walked)
{
    unsigned long visits = 0;
    pthread_t walker;
    pthread_t th[8];

    ck_assert_int_eq(pthread_create(&walker, NULL, walk_forever, &visits), 0);
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 8; i++)
            ck_assert_int_eq(pthread_create(&th[i], NULL, short_lived, NULL), 0);
        for (int i = 0; i < 8; i++)
            ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    }
    __atomic_store_n(&stop_walking, 1, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_join(walker, NULL), 0);
    ck_assert_uint_gt(visits, 0);

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "walk_short_lived")->calls, 40 * 8);
    probe_snapshot_free(snap);
    ck_assert_uint_eq(thread_limbo_count(), 0);
}
END_TEST

static Suite *
walk_suite(void)
{
    Suite *s = suite_create("walk");
    TCase *tc = tcase_create("exit");

    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, exit_during_slow_walk);
    tcase_add_test(tc, trace_swapped_during_slow_walk);
    tcase_add_test(tc, threads_churn_while_walked);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(walk_suite());
}
