/* Threads: exact counts across many threads, exited threads folded without loss,
 * thread names, snapshots and resets while threads record (the TSan test), threads
 * by the thousand, and fork().
 *
 * PROBE_TEST_HOT_SCOPES overrides the 1,000,000 scopes per thread of hot_threads_exact
 * (for slow sanitizer builds); the default keeps the whole suite a few seconds. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "common.h"

#define NOINLINE __attribute__((noinline))

static uint64_t
hot_scopes(void)
{
    const char *env = getenv("PROBE_TEST_HOT_SCOPES");

    if (env && *env) {
        uint64_t n = strtoull(env, NULL, 10);
        if (n > 0)
            return n;
    }
    return 1000000;
}

/* While threads record, a failed ck_assert would leave the test function with
 * threads still using its stack (in CK_FORK=no mode): checks made then note the
 * first failure here, and the test asserts once the threads are joined. */
static char failure[512];

#define note_failure(...)                                                            \
    do {                                                                             \
        if (!failure[0])                                                             \
            snprintf(failure, sizeof(failure), __VA_ARGS__);                         \
    } while (0)

/* Every site has self <= total and prim_calls <= calls. */
static int
check_self_le_total(const probe_snapshot *snap, int round)
{
    for (size_t i = 0; i < probe_snapshot_site_count(snap); i++) {
        const probe_site_info *si = probe_snapshot_site(snap, i);

        if (si->self_ns > si->total_ns) {
            note_failure("round %d: %s: self %llu > total %llu", round, si->name,
                         (unsigned long long)si->self_ns,
                         (unsigned long long)si->total_ns);
            return -1;
        }
        if (si->prim_calls > si->calls) {
            note_failure("round %d: %s: prim_calls %llu > calls %llu", round, si->name,
                         (unsigned long long)si->prim_calls,
                         (unsigned long long)si->calls);
            return -1;
        }
    }
    return 0;
}

/* ---- 8 threads x 1,000,000 scopes ---------------------------------------------- */

#define HOT_THREADS 8

struct hot_arg {
    int index;
    uint64_t n;
    uint64_t tid;
    int name_rc;
};

static void *
hot_worker(void *p)
{
    struct hot_arg *arg = p;
    char name[32];

    snprintf(name, sizeof(name), "worker-%d", arg->index);
    arg->name_rc = probe_thread_name(name);
    arg->tid = test_gettid();
    for (uint64_t i = 0; i < arg->n; i++) {
        PROBE_SCOPE("th_hot");
    }
    return NULL;
}

START_TEST(hot_threads_exact)
{
    pthread_t th[HOT_THREADS];
    struct hot_arg args[HOT_THREADS];
    uint64_t n = hot_scopes();

    for (int i = 0; i < HOT_THREADS; i++) {
        args[i] = (struct hot_arg){.index = i, .n = n};
        ck_assert_int_eq(pthread_create(&th[i], NULL, hot_worker, &args[i]), 0);
    }
    for (int i = 0; i < HOT_THREADS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < HOT_THREADS; i++)
        ck_assert_int_eq(args[i].name_rc, 0);

    probe_snapshot *snap = test_snap();
    const probe_site_info *si = test_site(snap, "th_hot");
    ck_assert_uint_eq(si->calls, HOT_THREADS * n);
    ck_assert_uint_eq(si->prim_calls, HOT_THREADS * n);
    ck_assert_uint_le(si->self_ns, si->total_ns);
    const probe_loss_info *loss = probe_snapshot_losses(snap);
    ck_assert_uint_eq(loss->depth_overflow, 0);
    ck_assert_uint_eq(loss->unbalanced, 0);
    ck_assert_uint_eq(loss->sites_dropped, 0);
    ck_assert_uint_eq(loss->threads_unlisted, 0);

    for (int i = 0; i < HOT_THREADS; i++) {
        const probe_thread_info *t = test_thread(snap, args[i].tid);
        char name[32];

        snprintf(name, sizeof(name), "worker-%d", i);
        ck_assert_msg(t != NULL, "thread %s (tid %llu) not listed", name,
                      (unsigned long long)args[i].tid);
        ck_assert_str_eq(t->name, name);
        ck_assert_int_eq(t->live, 0);
        ck_assert_uint_eq(t->scopes, n);
    }
    probe_snapshot_free(snap);
}
END_TEST

/* ---- snapshots and resets while threads record ------------------------------- */

#define CONC_THREADS 4

struct conc {
    int stop;
    uint64_t iterations[CONC_THREADS];
    uint64_t tids[CONC_THREADS];
};

struct conc_arg {
    struct conc *conc;
    int index;
};

static NOINLINE void
conc_inner(void)
{
    PROBE_SCOPE("th_conc_inner");
}

static NOINLINE void
conc_outer(void)
{
    PROBE_SCOPE("th_conc_outer");
    conc_inner();
    PROBE_COUNT("th_conc_counter", 1);
}

static void *
conc_worker(void *p)
{
    struct conc_arg *arg = p;
    struct conc *c = arg->conc;

    __atomic_store_n(&c->tids[arg->index], test_gettid(), __ATOMIC_RELEASE);
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        conc_outer();
        __atomic_fetch_add(&c->iterations[arg->index], 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void
conc_start(struct conc *c, struct conc_arg *args, pthread_t *th)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < CONC_THREADS; i++) {
        args[i] = (struct conc_arg){.conc = c, .index = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, conc_worker, &args[i]), 0);
    }
    /* Wait until every thread has recorded something. */
    for (int i = 0; i < CONC_THREADS; i++)
        while (__atomic_load_n(&c->iterations[i], __ATOMIC_RELAXED) < 100)
            sched_yield();
}

static uint64_t
conc_stop(struct conc *c, pthread_t *th)
{
    uint64_t sum = 0;

    __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < CONC_THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        sum += c->iterations[i];
    }
    return sum;
}

START_TEST(snapshots_while_recording)
{
    struct conc c;
    struct conc_arg args[CONC_THREADS];
    pthread_t th[CONC_THREADS];
    uint64_t last_outer = 0, last_inner = 0, last_edge = 0;
    int64_t last_value = 0;

    conc_start(&c, args, th);
    failure[0] = '\0';
    for (int round = 0; round < 200 && !failure[0]; round++) {
        probe_snapshot *snap = probe_snapshot_take();
        if (!snap) {
            note_failure("round %d: no snapshot", round);
            break;
        }
        const probe_site_info *outer = probe_snapshot_find(snap, "th_conc_outer");
        const probe_site_info *inner = probe_snapshot_find(snap, "th_conc_inner");
        const probe_site_info *counter = probe_snapshot_find(snap, "th_conc_counter");
        const probe_edge_info *e = test_edge(snap, "th_conc_outer", "th_conc_inner");

        if (!outer || !inner || !counter || !e)
            note_failure("round %d: a site or the edge is missing", round);
        else if (outer->calls < last_outer || outer->calls == 0)
            note_failure("round %d: outer calls %llu after %llu", round,
                         (unsigned long long)outer->calls,
                         (unsigned long long)last_outer);
        else if (inner->calls < last_inner)
            note_failure("round %d: inner calls went down", round);
        else if (counter->value < last_value)
            note_failure("round %d: counter went down", round);
        else if (e->calls < last_edge)
            note_failure("round %d: edge calls went down", round);
        else if (check_self_le_total(snap, round) == 0) {
            last_outer = outer->calls;
            last_inner = inner->calls;
            last_edge = e->calls;
            last_value = counter->value;
        }

        if (round == 100) {
            for (int i = 0; i < CONC_THREADS; i++) {
                const probe_thread_info *t =
                    test_thread(snap, __atomic_load_n(&c.tids[i], __ATOMIC_ACQUIRE));
                if (!t || !t->live)
                    note_failure("recording thread %d not listed as live", i);
            }
        }
        probe_snapshot_free(snap);
    }
    uint64_t sum = conc_stop(&c, th);
    ck_assert_msg(!failure[0], "%s", failure);

    /* After the join, exact. */
    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "th_conc_outer")->calls, sum);
    ck_assert_uint_eq(test_site(snap, "th_conc_inner")->calls, sum);
    ck_assert_int_eq(test_site(snap, "th_conc_counter")->value, (int64_t)sum);
    ck_assert_uint_eq(test_edge(snap, "th_conc_outer", "th_conc_inner")->calls, sum);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(resets_while_recording)
{
    struct conc c;
    struct conc_arg args[CONC_THREADS];
    pthread_t th[CONC_THREADS];

    conc_start(&c, args, th);
    failure[0] = '\0';
    for (int round = 0; round < 50 && !failure[0]; round++) {
        probe_reset();
        probe_snapshot *snap = probe_snapshot_take();
        if (!snap) {
            note_failure("round %d: no snapshot", round);
            break;
        }
        check_self_le_total(snap, round);
        probe_snapshot_free(snap);
        sched_yield();
    }
    conc_stop(&c, th);
    ck_assert_msg(!failure[0], "%s", failure);

    probe_reset();
    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "th_conc_outer")->calls, 0);
    ck_assert_uint_eq(test_site(snap, "th_conc_inner")->calls, 0);
    ck_assert_int_eq(test_site(snap, "th_conc_counter")->value, 0);
    probe_snapshot_free(snap);

    /* And recording after the storm is exact. */
    for (int i = 0; i < 10; i++)
        conc_outer();
    snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "th_conc_outer")->calls, 10);
    ck_assert_uint_eq(test_edge(snap, "th_conc_outer", "th_conc_inner")->calls, 10);
    probe_snapshot_free(snap);
}
END_TEST

/* ---- threads starting and exiting while snapshots fold -------------------------- */

#define CHURN_THREADS 400
#define CHURN_SCOPES 25

static NOINLINE void
churn_inner(void)
{
    PROBE_SCOPE("th_churn_inner");
}

static void *
churn_worker(void *p)
{
    (void)p;
    for (int i = 0; i < CHURN_SCOPES; i++) {
        PROBE_SCOPE("th_churn");
        churn_inner();
    }
    return NULL;
}

struct churn {
    int done;          /* release: every thread joined */
};

/* Threads created and joined one or two at a time, CHURN_THREADS in all. */
static void *
churn_main(void *p)
{
    struct churn *c = p;

    for (unsigned n = 0; n < CHURN_THREADS; n += 2) {
        pthread_t a, b;
        int ok_a = pthread_create(&a, NULL, churn_worker, NULL) == 0;
        int ok_b = pthread_create(&b, NULL, churn_worker, NULL) == 0;
        if (ok_a)
            pthread_join(a, NULL);
        if (ok_b)
            pthread_join(b, NULL);
        if (!ok_a || !ok_b) {
            note_failure("pthread_create failed after %u threads", n);
            break;
        }
    }
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Snapshots fold threads without the registry lock: threads start and exit all the
 * while, none is counted twice or lost, and nothing deadlocks. */
START_TEST(threads_churn_while_snapshotted)
{
    struct churn c = {0};
    pthread_t churner;
    uint64_t last = 0;
    int rounds = 0;

    failure[0] = '\0';
    ck_assert_int_eq(pthread_create(&churner, NULL, churn_main, &c), 0);
    while (!__atomic_load_n(&c.done, __ATOMIC_ACQUIRE) && !failure[0]) {
        probe_snapshot *snap = probe_snapshot_take();
        if (!snap) {
            note_failure("round %d: no snapshot", rounds);
            break;
        }
        const probe_site_info *si = probe_snapshot_find(snap, "th_churn");
        uint64_t calls = si ? si->calls : 0;
        /* A thread is folded live or from the retired sums, never both. */
        if (calls < last || calls > (uint64_t)CHURN_SCOPES * CHURN_THREADS)
            note_failure("round %d: th_churn calls %llu after %llu", rounds,
                         (unsigned long long)calls, (unsigned long long)last);
        last = calls;
        check_self_le_total(snap, rounds);
        probe_snapshot_free(snap);
        rounds++;
    }
    ck_assert_int_eq(pthread_join(churner, NULL), 0);
    ck_assert_msg(!failure[0], "%s", failure);

    probe_snapshot *snap = test_snap();
    uint64_t want = (uint64_t)CHURN_SCOPES * CHURN_THREADS;
    ck_assert_uint_eq(test_site(snap, "th_churn")->calls, want);
    ck_assert_uint_eq(test_site(snap, "th_churn_inner")->calls, want);
    ck_assert_uint_eq(test_edge(snap, "th_churn", "th_churn_inner")->calls, want);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->edges_dropped, 0);
    probe_snapshot_free(snap);
    printf("threads_churn_while_snapshotted: %d snapshots while %d threads came and went\n",
           rounds, CHURN_THREADS);
}
END_TEST

/* ---- threads by the thousand ---------------------------------------------------- */

#define MANY_THREADS 2000
#define MANY_BATCH 16

static void *
short_worker(void *p)
{
    (void)p;
    for (int i = 0; i < 10; i++) {
        PROBE_SCOPE("th_short");
    }
    return NULL;
}

START_TEST(thousands_of_threads)
{
    pthread_t th[MANY_BATCH];

    for (int done = 0; done < MANY_THREADS; done += MANY_BATCH) {
        for (int i = 0; i < MANY_BATCH; i++)
            ck_assert_int_eq(pthread_create(&th[i], NULL, short_worker, NULL), 0);
        for (int i = 0; i < MANY_BATCH; i++)
            ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    }

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "th_short")->calls, 10 * MANY_THREADS);
    uint64_t exited = 0, scopes = 0;
    for (size_t i = 0; i < probe_snapshot_thread_count(snap); i++) {
        const probe_thread_info *t = probe_snapshot_thread(snap, i);

        if (!t->live) {
            exited++;
            ck_assert_uint_eq(t->scopes, 10);
            scopes += t->scopes;
        }
    }
    /* Every exited thread is either listed or counted as unlisted. */
    ck_assert_uint_eq(exited + probe_snapshot_losses(snap)->threads_unlisted,
                      MANY_THREADS);
    ck_assert_uint_le(scopes, 10 * MANY_THREADS);
    probe_snapshot_free(snap);
}
END_TEST

static void *
left_open_worker(void *p)
{
    (void)p;
    PROBE_BEGIN("th_left_open");
    {
        PROBE_SCOPE("th_closed");
    }
    return NULL; /* exits with th_left_open still open */
}

START_TEST(scope_left_open_at_exit)
{
    pthread_t th;

    ck_assert_int_eq(pthread_create(&th, NULL, left_open_worker, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(probe_snapshot_losses(snap)->unbalanced, 1);
    ck_assert_uint_eq(test_site(snap, "th_left_open")->calls, 0);
    ck_assert_uint_eq(test_site(snap, "th_closed")->calls, 1);
    probe_snapshot_free(snap);
}
END_TEST

/* ---- fork ----------------------------------------------------------------------- */

static NOINLINE void
fork_work(void)
{
    PROBE_SCOPE("th_fork_scope");
    PROBE_COUNT("th_fork_counter", 7);
    {
        PROBE_SCOPE("th_fork_child");
    }
}

static void *
fork_thread_worker(void *p)
{
    (void)p;
    probe_thread_name("th-fork-helper");
    for (int i = 0; i < 3; i++)
        fork_work();
    return NULL;
}

/* In a forked child, ck_assert must not be used: report through the exit status. */
static int
fork_child_check(void)
{
    probe_snapshot *snap = probe_snapshot_take();

    if (!snap)
        return 10;
    const probe_site_info *si = probe_snapshot_find(snap, "th_fork_scope");
    const probe_site_info *ci = probe_snapshot_find(snap, "th_fork_counter");
    if (!si || !ci)
        return 11;
    if (si->calls != 0 || si->total_ns != 0 || ci->value != 0 || ci->calls != 0)
        return 12;
    for (size_t i = 0; i < probe_snapshot_edge_count(snap); i++)
        if (probe_snapshot_edge(snap, i)->calls != 0)
            return 13;
    for (size_t i = 0; i < probe_snapshot_thread_count(snap); i++)
        if (probe_snapshot_thread(snap, i)->scopes != 0)
            return 14;
    probe_snapshot_free(snap);
    if (!probe_is_recording())
        return 15;

    fork_work();
    fork_work();
    snap = probe_snapshot_take();
    if (!snap)
        return 16;
    si = probe_snapshot_find(snap, "th_fork_scope");
    ci = probe_snapshot_find(snap, "th_fork_counter");
    if (!si || si->calls != 2 || !ci || ci->value != 14)
        return 17;
    const probe_thread_info *t = NULL;
    for (size_t i = 0; i < probe_snapshot_thread_count(snap); i++)
        if (probe_snapshot_thread(snap, i)->tid == test_gettid())
            t = probe_snapshot_thread(snap, i);
    if (!t || t->scopes != 4 || !t->live)
        return 18;
    probe_snapshot_free(snap);
    return 0;
}

/* Wait for a forked child, at most 30 s (a child that hangs before its own alarm is
 * set, in fork() itself, would otherwise hang the test); note how it failed. */
static void
reap_child(pid_t pid)
{
    int status;
    pid_t r;

    for (int ms = 0; (r = waitpid(pid, &status, WNOHANG)) == 0 && ms < 30000; ms += 10)
        usleep(10000);
    if (r == 0) {
        kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
        note_failure("child hung for 30 s (killed)");
    } else if (r != pid)
        note_failure("waitpid failed");
    else if (WIFSIGNALED(status))
        note_failure("child killed by signal %d%s", WTERMSIG(status),
                     WTERMSIG(status) == SIGALRM ? " (deadlocked?)" : "");
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        note_failure("child failed check %d", WEXITSTATUS(status));
}

static void
wait_child(pid_t pid)
{
    failure[0] = '\0';
    reap_child(pid);
    ck_assert_msg(!failure[0], "%s", failure);
}

START_TEST(fork_child_starts_clean)
{
    pthread_t th;

    ck_assert_int_eq(pthread_create(&th, NULL, fork_thread_worker, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    for (int i = 0; i < 5; i++)
        fork_work();
    ck_assert_uint_eq(test_calls("th_fork_scope"), 8);

    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(20);
        _exit(fork_child_check());
    }
    wait_child(pid);

    /* The parent's data is untouched. */
    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "th_fork_scope")->calls, 8);
    ck_assert_int_eq(test_site(snap, "th_fork_counter")->value, 56);
    probe_snapshot_free(snap);
}
END_TEST

/* gcc 12's sanitizer runtimes do not lock their allocators around fork(): a child
 * forked while other threads allocate can hang in its first malloc (fixed upstream
 * in LLVM's compiler-rt in 2024, llvm/llvm-project#96600). Under ASan the suite was
 * killed that way now and then (SIGKILL, no output). The test runs in the plain
 * build, with glibc's allocator, which is fork-safe; under the sanitizers it is not
 * compiled at all. */
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define TEST_FORK_WHILE_RECORDING 1
static int
fork_child_busy_check(void)
{
    probe_snapshot *snap = probe_snapshot_take();

    if (!snap)
        return 20;
    const probe_site_info *si = probe_snapshot_find(snap, "th_conc_outer");
    if (!si || si->calls != 0)
        return 21;
    probe_snapshot_free(snap);

    for (int i = 0; i < 3; i++)
        conc_outer();
    probe_reset();
    conc_outer();
    snap = probe_snapshot_take();
    if (!snap)
        return 22;
    si = probe_snapshot_find(snap, "th_conc_outer");
    if (!si || si->calls != 1)
        return 23;
    probe_snapshot_free(snap);
    return 0;
}

static void *
snapshot_loop(void *p)
{
    int *stop = p;

    while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE))
        probe_snapshot_free(probe_snapshot_take());
    return NULL;
}

START_TEST(fork_while_threads_record)
{
    struct conc c;
    struct conc_arg args[CONC_THREADS];
    pthread_t th[CONC_THREADS], snapper;
    int stop_snapper = 0;

    conc_start(&c, args, th);
    ck_assert_int_eq(pthread_create(&snapper, NULL, snapshot_loop, &stop_snapper), 0);
    failure[0] = '\0';
    for (int i = 0; i < 20 && !failure[0]; i++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            note_failure("fork failed");
            break;
        }
        if (pid == 0) {
            alarm(20);
            _exit(fork_child_busy_check());
        }
        reap_child(pid);
    }
    __atomic_store_n(&stop_snapper, 1, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_join(snapper, NULL), 0);
    uint64_t sum = conc_stop(&c, th);
    ck_assert_msg(!failure[0], "%s", failure);
    ck_assert_uint_eq(test_calls("th_conc_outer"), sum);
}
END_TEST
#endif

static Suite *
threads_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc;

    tc = tcase_create("exact");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, 2 * TEST_TIMEOUT);
    tcase_add_test(tc, hot_threads_exact);
    tcase_add_test(tc, thousands_of_threads);
    tcase_add_test(tc, scope_left_open_at_exit);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrent");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, snapshots_while_recording);
    tcase_add_test(tc, resets_while_recording);
    tcase_add_test(tc, threads_churn_while_snapshotted);
    suite_add_tcase(s, tc);

    tc = tcase_create("fork");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, fork_child_starts_clean);
#ifdef TEST_FORK_WHILE_RECORDING
    tcase_add_test(tc, fork_while_threads_record);
#endif
    suite_add_tcase(s, tc);

    return s;
}

int
main(void)
{
    return test_run(threads_suite());
}
