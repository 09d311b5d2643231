/* Scopes: call counts, nesting, self and total time, recursion, depth overflow,
 * PROBE_FUNC, PROBE_BEGIN/PROBE_END and the caller -> callee edges. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>

#include "common.h"
#include "kicker.h"

#define NOINLINE __attribute__((noinline))

/* @a and @b differ by at most @slack ns (conversion from clock ticks rounds). */
#define assert_near(a, b, slack)                                                     \
    do {                                                                             \
        uint64_t a_ = (a), b_ = (b);                                                 \
        ck_assert_msg(a_ <= b_ + (slack) && b_ <= a_ + (slack),                      \
                      "%s = %llu, %s = %llu", #a, (unsigned long long)a_, #b,        \
                      (unsigned long long)b_);                                       \
    } while (0)

/* Invariants every snapshot keeps, whatever was recorded. */
static void
check_invariants(const probe_snapshot *snap)
{
    size_t nsites = probe_snapshot_site_count(snap);
    size_t nedges = probe_snapshot_edge_count(snap);

    for (size_t i = 0; i < nsites; i++) {
        const probe_site_info *si = probe_snapshot_site(snap, i);

        ck_assert_ptr_nonnull(si);
        ck_assert_uint_eq(si->index, i);
        ck_assert_ptr_nonnull(si->name);
        ck_assert_msg(si->self_ns <= si->total_ns, "%s: self %llu > total %llu",
                      si->name, (unsigned long long)si->self_ns,
                      (unsigned long long)si->total_ns);
        ck_assert_msg(si->prim_calls <= si->calls, "%s: prim_calls > calls", si->name);
        if (si->kind == PROBE_KIND_SCOPE && si->calls > 0) {
            ck_assert_msg(si->prim_calls > 0, "%s: calls but no prim_calls", si->name);
            ck_assert_msg(si->min_ns <= si->max_ns, "%s: min > max", si->name);
            ck_assert_msg(si->p50_ns <= si->p90_ns && si->p90_ns <= si->p99_ns,
                          "%s: percentiles not ordered", si->name);
        }
        if (si->calls == 0) {
            ck_assert_uint_eq(si->total_ns, 0);
            ck_assert_uint_eq(si->min_ns, 0);
            ck_assert_uint_eq(si->max_ns, 0);
        }
    }
    ck_assert_ptr_null(probe_snapshot_site(snap, nsites));

    /* A parent's total covers its children's totals under it. */
    for (size_t i = 0; i < nsites; i++) {
        const probe_site_info *parent = probe_snapshot_site(snap, i);
        uint64_t children = 0;

        for (size_t j = 0; j < nedges; j++) {
            const probe_edge_info *e = probe_snapshot_edge(snap, j);

            if (e->caller == i && e->callee != i)
                children += e->total_ns;
        }
        ck_assert_msg(children <= parent->total_ns,
                      "%s: children's totals %llu > total %llu", parent->name,
                      (unsigned long long)children,
                      (unsigned long long)parent->total_ns);
    }
    for (size_t j = 0; j < nedges; j++) {
        const probe_edge_info *e = probe_snapshot_edge(snap, j);

        ck_assert_ptr_nonnull(e);
        ck_assert_uint_lt(e->caller, nsites);
        ck_assert_uint_lt(e->callee, nsites);
        ck_assert_int_eq(probe_snapshot_site(snap, e->caller)->kind, PROBE_KIND_SCOPE);
        ck_assert_int_eq(probe_snapshot_site(snap, e->callee)->kind, PROBE_KIND_SCOPE);
        ck_assert_uint_le(e->calls, probe_snapshot_site(snap, e->callee)->calls);
        ck_assert_uint_le(e->total_ns, probe_snapshot_site(snap, e->callee)->total_ns);
    }
    ck_assert_ptr_null(probe_snapshot_edge(snap, nedges));
}

/* ---- counts ------------------------------------------------------------------- */

static int sc_counted_line;

static NOINLINE void
sc_counted(void)
{
    PROBE_SCOPE("sc_counted"); sc_counted_line = __LINE__; /* one line */
}

static NOINLINE void
sc_never(void)
{
    PROBE_SCOPE("sc_never");
}

START_TEST(scope_call_counts_exact)
{
    for (int i = 0; i < 1000; i++)
        sc_counted();
    if (probe_is_recording() == 2)
        sc_never(); /* never runs: keep the function */

    probe_snapshot *snap = test_snap();
    const probe_site_info *si = test_site(snap, "sc_counted");
    ck_assert_int_eq(si->kind, PROBE_KIND_SCOPE);
    ck_assert_uint_eq(si->calls, 1000);
    ck_assert_uint_eq(si->prim_calls, 1000);
    ck_assert_str_eq(si->function, "sc_counted");
    ck_assert_str_eq(si->file, __FILE__);
    ck_assert_int_eq(si->loaded, 1);
    /* The mean lies between the shortest and the longest call. */
    ck_assert_uint_le(si->min_ns * si->calls, si->total_ns);
    ck_assert_uint_le(si->total_ns, (si->max_ns + 1) * si->calls);
    ck_assert_uint_eq(si->self_ns, si->total_ns);

    const probe_site_info *never = test_site(snap, "sc_never");
    ck_assert_uint_eq(never->calls, 0);
    ck_assert_uint_eq(never->prim_calls, 0);
    ck_assert_uint_eq(never->total_ns, 0);
    check_invariants(snap);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(scope_site_line)
{
    sc_counted();
    probe_snapshot *snap = test_snap();
    /* The line of the PROBE_SCOPE() in sc_counted(). */
    ck_assert_int_eq(test_site(snap, "sc_counted")->line, sc_counted_line);
    probe_snapshot_free(snap);
}
END_TEST

/* ---- nesting ------------------------------------------------------------------ */

static NOINLINE void
sc_inner(void)
{
    PROBE_SCOPE("sc_inner");
    test_spin_ns(20000);
}

static NOINLINE void
sc_mid(void)
{
    PROBE_SCOPE("sc_mid");
    test_spin_ns(5000);
    sc_inner();
    sc_inner();
}

static NOINLINE void
sc_outer(void)
{
    PROBE_SCOPE("sc_outer");
    for (int i = 0; i < 3; i++)
        sc_mid();
}

START_TEST(nested_self_and_total)
{
    for (int i = 0; i < 10; i++)
        sc_outer();

    probe_snapshot *snap = test_snap();
    const probe_site_info *outer = test_site(snap, "sc_outer");
    const probe_site_info *mid = test_site(snap, "sc_mid");
    const probe_site_info *inner = test_site(snap, "sc_inner");

    ck_assert_uint_eq(outer->calls, 10);
    ck_assert_uint_eq(mid->calls, 30);
    ck_assert_uint_eq(inner->calls, 60);
    ck_assert_uint_eq(inner->prim_calls, 60);

    /* Via sites: each parent covers its only child. */
    ck_assert_uint_ge(outer->total_ns, mid->total_ns);
    ck_assert_uint_ge(mid->total_ns, inner->total_ns);
    ck_assert_uint_gt(inner->total_ns, 0);
    /* A leaf's time is all its own; a parent's self is its total minus the child. */
    ck_assert_uint_eq(inner->self_ns, inner->total_ns);
    ck_assert_uint_le(outer->self_ns, outer->total_ns - mid->total_ns + 2);
    ck_assert_uint_le(mid->self_ns, mid->total_ns - inner->total_ns + 2);
    /* The self times of the tree add up to the root's total (1 us of rounding). */
    uint64_t selves = outer->self_ns + mid->self_ns + inner->self_ns;
    ck_assert_uint_le(selves, outer->total_ns + 1000);
    ck_assert_uint_ge(selves + 1000, outer->total_ns);

    /* Via edges: a callee with one caller spends all its time under it. */
    const probe_edge_info *om = test_edge(snap, "sc_outer", "sc_mid");
    const probe_edge_info *mi = test_edge(snap, "sc_mid", "sc_inner");
    ck_assert_ptr_nonnull(om);
    ck_assert_ptr_nonnull(mi);
    ck_assert_uint_eq(om->calls, 30);
    ck_assert_uint_eq(mi->calls, 60);
    assert_near(om->total_ns, mid->total_ns, 2);
    assert_near(mi->total_ns, inner->total_ns, 2);
    ck_assert_uint_ge(outer->total_ns, om->total_ns);
    ck_assert_uint_ge(mid->total_ns, mi->total_ns);
    ck_assert_ptr_null(test_edge(snap, "sc_outer", "sc_inner"));
    check_invariants(snap);
    probe_snapshot_free(snap);
}
END_TEST

/* ---- PROBE_FUNC --------------------------------------------------------------- */

static NOINLINE void
sc_func_target(void)
{
    PROBE_FUNC();
}

START_TEST(func_named_after_function)
{
    sc_func_target();
    sc_func_target();

    probe_snapshot *snap = test_snap();
    const probe_site_info *si = test_site(snap, "sc_func_target");
    ck_assert_int_eq(si->kind, PROBE_KIND_SCOPE);
    ck_assert_str_eq(si->function, "sc_func_target");
    ck_assert_str_eq(si->file, __FILE__);
    ck_assert_uint_eq(si->calls, 2);
    probe_snapshot_free(snap);
}
END_TEST

/* ---- PROBE_BEGIN / PROBE_END ---------------------------------------------------- */

START_TEST(begin_end_pairs)
{
    for (int i = 0; i < 7; i++) {
        PROBE_BEGIN("sc_begin_a");
        PROBE_BEGIN("sc_begin_b");
        PROBE_END();
        PROBE_BEGIN("sc_begin_b");
        PROBE_END();
        PROBE_END();
    }
    {
        PROBE_SCOPE("sc_mix_outer");
        PROBE_BEGIN("sc_mix_inner");
        sc_func_target();
        PROBE_END();
    }

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "sc_begin_a")->calls, 7);
    ck_assert_uint_eq(test_site(snap, "sc_begin_a")->prim_calls, 7);
    /* Two PROBE_BEGIN("sc_begin_b") are two sites with one name. */
    uint64_t b_calls = 0;
    for (size_t i = 0; i < probe_snapshot_site_count(snap); i++) {
        const probe_site_info *si = probe_snapshot_site(snap, i);
        if (strcmp(si->name, "sc_begin_b") == 0)
            b_calls += si->calls;
    }
    ck_assert_uint_eq(b_calls, 14);
    const probe_edge_info *ab = test_edge(snap, "sc_begin_a", "sc_begin_b");
    ck_assert_ptr_nonnull(ab);
    ck_assert_uint_eq(ab->calls, 7);

    ck_assert_uint_eq(test_site(snap, "sc_mix_outer")->calls, 1);
    ck_assert_uint_eq(test_site(snap, "sc_mix_inner")->calls, 1);
    ck_assert_ptr_nonnull(test_edge(snap, "sc_mix_outer", "sc_mix_inner"));
    ck_assert_ptr_nonnull(test_edge(snap, "sc_mix_inner", "sc_func_target"));
    ck_assert_uint_eq(probe_snapshot_losses(snap)->unbalanced, 0);
    check_invariants(snap);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(unbalanced_end_counted_and_harmless)
{
    PROBE_END();
    {
        PROBE_SCOPE("sc_unbal_scope");
        /* No PROBE_BEGIN is open: this must not close the PROBE_SCOPE. */
        PROBE_END();
        sc_func_target();
    }
    for (int i = 0; i < 1000; i++)
        PROBE_END();

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(probe_snapshot_losses(snap)->unbalanced, 1002);
    ck_assert_uint_eq(test_site(snap, "sc_unbal_scope")->calls, 1);
    ck_assert_uint_eq(test_site(snap, "sc_func_target")->calls, 1);
    const probe_edge_info *e = test_edge(snap, "sc_unbal_scope", "sc_func_target");
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->calls, 1);
    check_invariants(snap);
    probe_snapshot_free(snap);

    /* Recording still works. */
    PROBE_BEGIN("sc_unbal_after");
    PROBE_END();
    ck_assert_uint_eq(test_calls("sc_unbal_after"), 1);
}
END_TEST

static void *
lone_end(void *arg)
{
    (void)arg;
    PROBE_END(); /* the first and only thing this thread does */
    return NULL;
}

START_TEST(unbalanced_end_on_fresh_thread)
{
    pthread_t th;

    ck_assert_int_eq(pthread_create(&th, NULL, lone_end, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(probe_snapshot_losses(snap)->unbalanced, 1);
    probe_snapshot_free(snap);
}
END_TEST

/* ---- depth overflow ----------------------------------------------------------- */

#define DEPTH_LIMIT 256

static NOINLINE void
sc_deep(int n)
{
    PROBE_SCOPE("sc_deep");
    if (n > 1)
        sc_deep(n - 1);
}

static NOINLINE void
sc_deep_mixed(int n)
{
    PROBE_SCOPE("sc_deep_mixed");
    if (n == 1 || n == 990) {
        PROBE_SCOPE("sc_deep_leaf");
    }
    if (n > 1)
        sc_deep_mixed(n - 1);
}

START_TEST(depth_overflow_counted)
{
    sc_deep(1000);

    probe_snapshot *snap = test_snap();
    const probe_site_info *si = test_site(snap, "sc_deep");
    const probe_loss_info *loss = probe_snapshot_losses(snap);
    ck_assert_uint_eq(si->calls + loss->depth_overflow, 1000);
    ck_assert_uint_eq(si->calls, DEPTH_LIMIT);
    ck_assert_uint_eq(si->prim_calls, 1);
    ck_assert_uint_eq(loss->unbalanced, 0);
    check_invariants(snap);
    probe_snapshot_free(snap);

    /* Again: the stack unwound cleanly. */
    sc_deep(1000);
    sc_func_target();
    snap = test_snap();
    si = test_site(snap, "sc_deep");
    loss = probe_snapshot_losses(snap);
    ck_assert_uint_eq(si->calls, 2 * DEPTH_LIMIT);
    ck_assert_uint_eq(si->prim_calls, 2);
    ck_assert_uint_eq(loss->depth_overflow, 2 * (1000 - DEPTH_LIMIT));
    /* sc_func_target ran at top level: no edge into it. */
    ck_assert_uint_eq(test_site(snap, "sc_func_target")->calls, 1);
    for (size_t i = 0; i < probe_snapshot_edge_count(snap); i++)
        ck_assert_uint_ne(probe_snapshot_edge(snap, i)->callee,
                          test_site(snap, "sc_func_target")->index);
    ck_assert_uint_eq(loss->unbalanced, 0);
    check_invariants(snap);
    probe_snapshot_free(snap);
}
END_TEST

/* At the depth limit, a PROBE_BEGIN that cannot be recorded is left open when the
 * scope under it ends: that exit is out of turn, counted once as unbalanced, and the
 * scopes after it are recorded as before. */
static NOINLINE void
sc_deep_begin(int n)
{
    PROBE_SCOPE("sc_deep_begin");
    if (n > 1)
        sc_deep_begin(n - 1);
    else
        PROBE_BEGIN("sc_beyond");
}

START_TEST(depth_overflow_left_open)
{
    sc_deep_begin(DEPTH_LIMIT);

    probe_snapshot *snap = test_snap();
    const probe_loss_info *loss = probe_snapshot_losses(snap);
    ck_assert_uint_eq(test_site(snap, "sc_deep_begin")->calls, DEPTH_LIMIT);
    ck_assert_uint_eq(loss->depth_overflow, 1);
    ck_assert_uint_eq(loss->unbalanced, 1);
    probe_snapshot_free(snap);

    /* The END that follows finds no PROBE_BEGIN: counted, nothing else. */
    PROBE_END();
    sc_deep(DEPTH_LIMIT);
    sc_deep(10);
    snap = test_snap();
    loss = probe_snapshot_losses(snap);
    ck_assert_uint_eq(test_site(snap, "sc_deep")->calls, DEPTH_LIMIT + 10);
    ck_assert_uint_eq(test_site(snap, "sc_deep")->prim_calls, 2);
    ck_assert_uint_eq(test_site(snap, "sc_deep_begin")->calls, DEPTH_LIMIT);
    ck_assert_uint_eq(loss->depth_overflow, 1);
    ck_assert_uint_eq(loss->unbalanced, 2);
    check_invariants(snap);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(depth_overflow_other_sites)
{
    sc_deep_mixed(1000);

    probe_snapshot *snap = test_snap();
    const probe_site_info *deep = test_site(snap, "sc_deep_mixed");
    const probe_site_info *leaf = test_site(snap, "sc_deep_leaf");
    ck_assert_uint_eq(deep->calls, DEPTH_LIMIT);
    /* The leaf at depth 12 is recorded, the one at depth 1001 is not. */
    ck_assert_uint_eq(leaf->calls, 1);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->depth_overflow,
                      1000 - DEPTH_LIMIT + 1);
    const probe_edge_info *e = test_edge(snap, "sc_deep_mixed", "sc_deep_leaf");
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->calls, 1);
    check_invariants(snap);
    probe_snapshot_free(snap);
}
END_TEST

/* ---- signal handlers ----------------------------------------------------------- */

/* A handler's scope can run between any two instructions of a scope's entry or exit
 * on the same thread: both calls stay exact. */
#define SIG_LOOPS 3000000
#define SIG_MAX 100000

static volatile sig_atomic_t sc_handled;

static void
sc_in_handler(void)
{
    PROBE_SCOPE("sc_in_handler");
}

static void
sc_handler(int sig)
{
    int saved = errno;

    (void)sig;
    sc_in_handler();
    sc_handled++;
    errno = saved;
}

START_TEST(signal_handler_scopes_keep_counts_exact)
{
    struct sigaction sa = {.sa_handler = sc_handler, .sa_flags = SA_RESTART};
    struct test_kicker kicker;

    /* The handler's paths are met outside it first: their first call allocates. */
    sc_in_handler();
    {
        PROBE_SCOPE("sc_interrupted");
        sc_in_handler();
    }
    probe_reset();
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    test_kicker_start(&kicker, SIGUSR2, SIG_MAX);
    for (int i = 0; i < SIG_LOOPS; i++) {
        PROBE_SCOPE("sc_interrupted");
        __asm__ volatile("" ::: "memory");
    }
    test_kicker_stop(&kicker);

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(test_site(snap, "sc_interrupted")->calls, SIG_LOOPS);
    ck_assert_uint_gt(sc_handled, 0);
    ck_assert_uint_eq(test_site(snap, "sc_in_handler")->calls, (uint64_t)sc_handled);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->unbalanced, 0);
    check_invariants(snap);
    probe_snapshot_free(snap);
    test_kicker_done(&kicker);
}
END_TEST

/* ---- recursion ---------------------------------------------------------------- */

#define REC_SPIN_NS 100000u

static NOINLINE void
sc_rec(int n)
{
    PROBE_FUNC();
    test_spin_ns(REC_SPIN_NS);
    if (n > 1)
        sc_rec(n - 1);
}

START_TEST(recursion_not_double_counted)
{
    uint64_t t0 = test_now_ns();
    for (int i = 0; i < 3; i++)
        sc_rec(5);
    uint64_t wall = test_now_ns() - t0;

    probe_snapshot *snap = test_snap();
    const probe_site_info *si = test_site(snap, "sc_rec");
    ck_assert_uint_eq(si->calls, 15);
    ck_assert_uint_eq(si->prim_calls, 3);
    /* Counting nested calls again would give about 3x the wall time. */
    ck_assert_msg(si->total_ns <= wall + wall / 4 + 200000,
                  "total %llu ns > wall %llu ns", (unsigned long long)si->total_ns,
                  (unsigned long long)wall);
    /* At least the CPU time spun (half of it, for clock calibration). */
    ck_assert_uint_ge(si->total_ns, 15 * REC_SPIN_NS / 2);
    /* Sum of self times of all calls = the outermost calls' time. */
    ck_assert_uint_le(si->self_ns, si->total_ns);
    ck_assert_uint_ge(si->self_ns + 1000, si->total_ns);
    /* Each call spins at least REC_SPIN_NS of its own. */
    ck_assert_uint_ge(si->min_ns, REC_SPIN_NS / 2);
    check_invariants(snap);
    probe_snapshot_free(snap);
}
END_TEST

static void sc_mut_b(int n);

static NOINLINE void
sc_mut_a(int n)
{
    PROBE_SCOPE("sc_mut_a");
    test_spin_ns(REC_SPIN_NS);
    if (n > 0)
        sc_mut_b(n - 1);
}

static NOINLINE void
sc_mut_b(int n)
{
    PROBE_SCOPE("sc_mut_b");
    test_spin_ns(REC_SPIN_NS);
    sc_mut_a(n);
}

START_TEST(mutual_recursion)
{
    /* a(2) -> b -> a(1) -> b -> a(0) */
    uint64_t t0 = test_now_ns();
    sc_mut_a(2);
    uint64_t wall = test_now_ns() - t0;

    probe_snapshot *snap = test_snap();
    const probe_site_info *a = test_site(snap, "sc_mut_a");
    const probe_site_info *b = test_site(snap, "sc_mut_b");
    ck_assert_uint_eq(a->calls, 3);
    ck_assert_uint_eq(a->prim_calls, 1);
    ck_assert_uint_eq(b->calls, 2);
    ck_assert_uint_eq(b->prim_calls, 1);
    ck_assert_uint_le(a->total_ns, wall + wall / 4 + 200000);
    ck_assert_uint_le(b->total_ns, a->total_ns);
    /* The selves of the whole tree add up to the root's total. */
    ck_assert_uint_le(a->self_ns + b->self_ns, a->total_ns + 1000);
    ck_assert_uint_ge(a->self_ns + b->self_ns + 1000, a->total_ns);

    const probe_edge_info *ab = test_edge(snap, "sc_mut_a", "sc_mut_b");
    const probe_edge_info *ba = test_edge(snap, "sc_mut_b", "sc_mut_a");
    ck_assert_ptr_nonnull(ab);
    ck_assert_ptr_nonnull(ba);
    ck_assert_uint_eq(ab->calls, 2);
    ck_assert_uint_eq(ba->calls, 2);
    /* Only b's outermost call counts in the edge's time. */
    ck_assert_uint_le(ab->total_ns, b->total_ns);
    check_invariants(snap);
    probe_snapshot_free(snap);
}
END_TEST

/* ---- edges -------------------------------------------------------------------- */

static NOINLINE void
sc_e_right(void)
{
    PROBE_SCOPE("sc_e_right");
    test_spin_ns(2000);
}

static NOINLINE void
sc_e_left(void)
{
    PROBE_SCOPE("sc_e_left");
    sc_e_right();
}

static NOINLINE void
sc_e_root(void)
{
    PROBE_SCOPE("sc_e_root");
    sc_e_left();
    sc_e_left();
    sc_e_right();
    sc_e_right();
    sc_e_right();
}

START_TEST(edges_exact)
{
    for (int i = 0; i < 4; i++)
        sc_e_root();

    probe_snapshot *snap = test_snap();
    const probe_site_info *root = test_site(snap, "sc_e_root");
    const probe_site_info *left = test_site(snap, "sc_e_left");
    const probe_site_info *right = test_site(snap, "sc_e_right");
    ck_assert_uint_eq(root->calls, 4);
    ck_assert_uint_eq(left->calls, 8);
    ck_assert_uint_eq(right->calls, 20);

    size_t n = 0;
    const probe_edge_info *rl = NULL, *rr = NULL, *lr = NULL;
    for (size_t i = 0; i < probe_snapshot_edge_count(snap); i++) {
        const probe_edge_info *e = probe_snapshot_edge(snap, i);

        if (e->callee == root->index)
            ck_abort_msg("an edge into the top-level scope sc_e_root");
        if (e->caller == root->index && e->callee == left->index)
            rl = e;
        else if (e->caller == root->index && e->callee == right->index)
            rr = e;
        else if (e->caller == left->index && e->callee == right->index)
            lr = e;
        else if (e->caller == root->index || e->caller == left->index ||
                 e->caller == right->index || e->callee == left->index ||
                 e->callee == right->index)
            ck_abort_msg("unexpected edge %s -> %s",
                         probe_snapshot_site(snap, e->caller)->name,
                         probe_snapshot_site(snap, e->callee)->name);
        else
            continue;
        n++;
    }
    ck_assert_uint_eq(n, 3);
    ck_assert_ptr_nonnull(rl);
    ck_assert_ptr_nonnull(rr);
    ck_assert_ptr_nonnull(lr);
    ck_assert_uint_eq(rl->calls, 8);
    ck_assert_uint_eq(rr->calls, 12);
    ck_assert_uint_eq(lr->calls, 8);
    /* Times: left only under root; right split between root and left. */
    assert_near(rl->total_ns, left->total_ns, 2);
    assert_near(rr->total_ns + lr->total_ns, right->total_ns, 2);
    ck_assert_uint_ge(root->total_ns, rl->total_ns + rr->total_ns);
    ck_assert_uint_ge(left->total_ns, lr->total_ns);
    check_invariants(snap);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(top_level_scope_has_no_edge)
{
    sc_func_target();

    probe_snapshot *snap = test_snap();
    size_t idx = test_site(snap, "sc_func_target")->index;
    for (size_t i = 0; i < probe_snapshot_edge_count(snap); i++) {
        const probe_edge_info *e = probe_snapshot_edge(snap, i);

        ck_assert_uint_ne(e->callee, idx);
        ck_assert_uint_ne(e->caller, idx);
    }
    probe_snapshot_free(snap);
}
END_TEST

static Suite *
scope_suite(void)
{
    Suite *s = suite_create("scope");
    TCase *tc;

    tc = tcase_create("counts");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, scope_call_counts_exact);
    tcase_add_test(tc, scope_site_line);
    tcase_add_test(tc, func_named_after_function);
    suite_add_tcase(s, tc);

    tc = tcase_create("nesting");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, nested_self_and_total);
    tcase_add_test(tc, edges_exact);
    tcase_add_test(tc, top_level_scope_has_no_edge);
    suite_add_tcase(s, tc);

    tc = tcase_create("begin_end");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, begin_end_pairs);
    tcase_add_test(tc, unbalanced_end_counted_and_harmless);
    tcase_add_test(tc, unbalanced_end_on_fresh_thread);
    suite_add_tcase(s, tc);

    tc = tcase_create("depth");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, depth_overflow_counted);
    tcase_add_test(tc, depth_overflow_other_sites);
    tcase_add_test(tc, depth_overflow_left_open);
    suite_add_tcase(s, tc);

    tc = tcase_create("signals");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, signal_handler_scopes_keep_counts_exact);
    suite_add_tcase(s, tc);

    tc = tcase_create("recursion");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, recursion_not_double_counted);
    tcase_add_test(tc, mutual_recursion);
    suite_add_tcase(s, tc);

    return s;
}

int
main(void)
{
    return test_run(scope_suite());
}
