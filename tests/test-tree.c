/* The calling-context tree: one node per path of nested scopes, with exact calls and
 * times per path, merged over threads, bounded per thread. */
#include <pthread.h>

#include "common.h"

/* The node for the path of site names @path (top level first), or NULL. */
static const probe_node_info *
tree_node(const probe_snapshot *snap, const char *const *path, size_t len)
{
    size_t parent = PROBE_NODE_ROOT;
    const probe_node_info *found = NULL;

    for (size_t k = 0; k < len; k++) {
        const probe_site_info *site = probe_snapshot_find(snap, path[k]);
        found = NULL;
        for (size_t i = 0; site && i < probe_snapshot_node_count(snap); i++) {
            const probe_node_info *n = probe_snapshot_node(snap, i);
            if (n->parent == parent && n->site == site->index) {
                found = n;
                break;
            }
        }
        if (!found)
            return NULL;
        parent = found->index;
    }
    return found;
}

#define NODE(snap, ...)                                                                  \
    tree_node((snap), (const char *const[]){__VA_ARGS__},                                \
              sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static void
tr_leaf(void)
{
    PROBE_SCOPE("tr_leaf");
    test_spin_ns(20000);
}

static void
tr_a(void)
{
    PROBE_SCOPE("tr_a");
    tr_leaf();
}

static void
tr_b(void)
{
    PROBE_SCOPE("tr_b");
    for (int i = 0; i < 4; i++)
        tr_leaf();
}

START_TEST(paths_are_told_apart)
{
    for (int i = 0; i < 3; i++)
        tr_a();
    tr_b();

    probe_snapshot *snap = test_snap();
    const probe_node_info *a = NODE(snap, "tr_a");
    const probe_node_info *a_leaf = NODE(snap, "tr_a", "tr_leaf");
    const probe_node_info *b_leaf = NODE(snap, "tr_b", "tr_leaf");

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(a_leaf);
    ck_assert_ptr_nonnull(b_leaf);
    ck_assert_uint_eq(a->calls, 3);
    ck_assert_uint_eq(a->depth, 0);
    ck_assert_uint_eq(a_leaf->calls, 3);
    ck_assert_uint_eq(a_leaf->depth, 1);
    ck_assert_uint_eq(b_leaf->calls, 4);
    /* No path where tr_leaf runs at top level. */
    ck_assert_ptr_null(NODE(snap, "tr_leaf"));
    /* The paths add up to the site, and each path's time fits in its parent's. */
    ck_assert_uint_eq(a_leaf->calls + b_leaf->calls, test_site(snap, "tr_leaf")->calls);
    ck_assert_uint_le(a_leaf->total_ns, a->total_ns);
    ck_assert_uint_le(a_leaf->total_ns + b_leaf->total_ns,
                      test_site(snap, "tr_leaf")->total_ns + 2);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(every_node_is_consistent)
{
    for (int i = 0; i < 5; i++) {
        tr_a();
        tr_b();
    }

    probe_snapshot *snap = test_snap();
    size_t n = probe_snapshot_node_count(snap);
    uint64_t *children = calloc(n, sizeof(*children));

    ck_assert_ptr_nonnull(children);
    for (size_t i = 0; i < n; i++) {
        const probe_node_info *node = probe_snapshot_node(snap, i);
        ck_assert_uint_eq(node->index, i);
        ck_assert_uint_le(node->self_ns, node->total_ns);
        ck_assert_ptr_nonnull(probe_snapshot_site(snap, node->site));
        if (node->parent != PROBE_NODE_ROOT) {
            ck_assert_uint_lt(node->parent, i); /* parents first */
            ck_assert_uint_eq(node->depth, probe_snapshot_node(snap, node->parent)->depth + 1);
            children[node->parent] += node->total_ns;
        }
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_le(children[i], probe_snapshot_node(snap, i)->total_ns);
    free(children);
    ck_assert_ptr_null(probe_snapshot_node(snap, n));
    probe_snapshot_free(snap);
}
END_TEST

static int
tr_rec(int n)
{
    PROBE_SCOPE("tr_rec");
    return n ? 1 + tr_rec(n - 1) : 0;
}

START_TEST(recursion_is_a_chain_of_paths)
{
    for (int i = 0; i < 3; i++)
        tr_rec(4); /* 5 deep */

    probe_snapshot *snap = test_snap();
    const probe_node_info *top = NODE(snap, "tr_rec");
    const probe_node_info *deepest =
        NODE(snap, "tr_rec", "tr_rec", "tr_rec", "tr_rec", "tr_rec");

    ck_assert_ptr_nonnull(top);
    ck_assert_ptr_nonnull(deepest);
    ck_assert_uint_eq(top->calls, 3);
    ck_assert_uint_eq(deepest->calls, 3);
    ck_assert_uint_eq(deepest->depth, 4);
    ck_assert_ptr_null(NODE(snap, "tr_rec", "tr_rec", "tr_rec", "tr_rec", "tr_rec", "tr_rec"));
    /* The recursive edge still counts every nested call, without time. */
    ck_assert_uint_eq(test_edge(snap, "tr_rec", "tr_rec")->calls, 12);
    probe_snapshot_free(snap);
}
END_TEST

/* A recursion whose every level also calls a leaf, and a leaf that alternates
 * between two parents: each scope's node comes from its site's cache, its parent's
 * last child, or the hash, in turns. Every path must keep exactly its own calls. */
static void
tr_mix_leaf(void)
{
    PROBE_SCOPE("tr_mix_leaf");
}

static void
tr_mix_rec(int n)
{
    PROBE_SCOPE("tr_mix_rec");
    tr_mix_leaf();
    if (n)
        tr_mix_rec(n - 1);
    tr_mix_leaf();
}

START_TEST(recursion_and_shared_leaf_keep_exact_paths)
{
    const unsigned rounds = 1000;

    for (unsigned i = 0; i < rounds; i++) {
        tr_mix_rec(3); /* 4 levels */
        tr_mix_leaf(); /* at the top level, between recursions */
    }
    probe_snapshot *snap = test_snap();
    const char *path[6] = {"tr_mix_rec", "tr_mix_rec", "tr_mix_rec", "tr_mix_rec"};
    for (size_t depth = 1; depth <= 4; depth++) {
        const probe_node_info *rec = tree_node(snap, path, depth);
        ck_assert_ptr_nonnull(rec);
        ck_assert_uint_eq(rec->calls, rounds);
        const char *leaf_path[6];
        memcpy(leaf_path, path, sizeof(path));
        leaf_path[depth] = "tr_mix_leaf";
        const probe_node_info *leaf = tree_node(snap, leaf_path, depth + 1);
        ck_assert_ptr_nonnull(leaf);
        ck_assert_uint_eq(leaf->calls, 2 * rounds);
    }
    ck_assert_ptr_null(NODE(snap, "tr_mix_rec", "tr_mix_rec", "tr_mix_rec", "tr_mix_rec",
                            "tr_mix_rec"));
    ck_assert_uint_eq(NODE(snap, "tr_mix_leaf")->calls, rounds);
    ck_assert_uint_eq(test_site(snap, "tr_mix_leaf")->calls, 9 * rounds);
    ck_assert_uint_eq(test_site(snap, "tr_mix_rec")->calls, 4 * rounds);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->edges_dropped, 0);
    probe_snapshot_free(snap);
}
END_TEST

static void *
tr_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 7; i++)
        tr_a();
    return NULL;
}

START_TEST(threads_merge_by_path)
{
    pthread_t th[3];

    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, tr_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(th[0], NULL), 0); /* one exits before the snapshot */
    for (int i = 0; i < 2; i++)
        tr_a();

    probe_snapshot *snap = test_snap();
    for (int i = 1; i < 3; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    probe_snapshot_free(snap);

    snap = test_snap();
    ck_assert_uint_eq(NODE(snap, "tr_a", "tr_leaf")->calls, 3 * 7 + 2);
    ck_assert_uint_eq(NODE(snap, "tr_a")->calls, 3 * 7 + 2);
    probe_snapshot_free(snap);
}
END_TEST

/* Live threads whose tables hold the same paths in other orders: a snapshot folds
 * each node into its own path, whatever index it has in the thread before. */
static pthread_barrier_t tr_order_done, tr_order_quit;

static void *
tr_order_thread(void *arg)
{
    int b_first = (int)(intptr_t)arg;

    if (b_first)
        tr_b();
    tr_a();
    tr_b();
    pthread_barrier_wait(&tr_order_done);
    pthread_barrier_wait(&tr_order_quit);
    return NULL;
}

START_TEST(live_threads_with_paths_in_other_orders)
{
    enum { N = 6 };
    pthread_t th[N];

    ck_assert_int_eq(pthread_barrier_init(&tr_order_done, NULL, N + 1), 0);
    ck_assert_int_eq(pthread_barrier_init(&tr_order_quit, NULL, N + 1), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, tr_order_thread,
                                        (void *)(intptr_t)(i % 2)), 0);
    pthread_barrier_wait(&tr_order_done);

    probe_snapshot *snap = test_snap();
    /* Threads 1, 3 and 5 call tr_b twice. */
    ck_assert_uint_eq(NODE(snap, "tr_a")->calls, N);
    ck_assert_uint_eq(NODE(snap, "tr_b")->calls, N + N / 2);
    ck_assert_uint_eq(NODE(snap, "tr_a", "tr_leaf")->calls, N);
    ck_assert_uint_eq(NODE(snap, "tr_b", "tr_leaf")->calls, 4 * (N + N / 2));
    ck_assert_ptr_null(NODE(snap, "tr_leaf"));
    ck_assert_uint_eq(test_site(snap, "tr_leaf")->calls, N + 4 * (N + N / 2));
    size_t nodes = 0;
    for (size_t i = 0; i < probe_snapshot_node_count(snap); i++) {
        const probe_node_info *n = probe_snapshot_node(snap, i);
        const probe_site_info *site = probe_snapshot_site(snap, n->site);
        nodes += strncmp(site->name, "tr_", 3) == 0;
    }
    ck_assert_uint_eq(nodes, 4); /* each path once */
    probe_snapshot_free(snap);

    pthread_barrier_wait(&tr_order_quit);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&tr_order_done);
    pthread_barrier_destroy(&tr_order_quit);
}
END_TEST

/* A scope's calls and times are kept by its nodes and summed at snapshot time:
 * a site's figures are its nodes' sums, from live and exited threads alike. */
static void *
tr_sum_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        tr_b();
    return NULL;
}

START_TEST(sites_are_the_sums_of_their_nodes)
{
    pthread_t th;

    ck_assert_int_eq(pthread_create(&th, NULL, tr_sum_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0); /* folded at its exit */
    for (int i = 0; i < 5; i++) {
        tr_a();
        tr_b();
    }
    probe_snapshot *snap = test_snap();
    const char *names[] = {"tr_a", "tr_b", "tr_leaf"};
    for (size_t k = 0; k < 3; k++) {
        const probe_site_info *si = test_site(snap, names[k]);
        uint64_t calls = 0, total = 0, self = 0, nodes = 0;
        for (size_t i = 0; i < probe_snapshot_node_count(snap); i++) {
            const probe_node_info *n = probe_snapshot_node(snap, i);
            if (n->site != si->index)
                continue;
            calls += n->calls;
            total += n->total_ns;
            self += n->self_ns;
            nodes++;
        }
        ck_assert_uint_eq(si->calls, calls);
        ck_assert_uint_eq(si->prim_calls, calls); /* no recursion here */
        /* Each node's ns is truncated on its own: up to 1 ns less a node. */
        ck_assert_uint_ge(si->total_ns, total);
        ck_assert_uint_le(si->total_ns, total + nodes);
        ck_assert_uint_ge(si->self_ns, self);
        ck_assert_uint_le(si->self_ns, self + nodes);
        ck_assert_uint_le(si->min_ns, si->p50_ns);
        ck_assert_uint_le(si->p50_ns, si->max_ns);
        ck_assert_uint_le(si->max_ns, si->total_ns);
    }
    ck_assert_uint_eq(test_site(snap, "tr_b")->calls, 8);
    ck_assert_uint_eq(test_site(snap, "tr_leaf")->calls, 5 + 4 * 8);
    probe_snapshot_free(snap);
}
END_TEST

/* 2^15 distinct paths through 30 scopes: more than a thread keeps (16384). */
static void
tr_end(void)
{
}
#define LEVEL(n, next_a, next_b)                                                         \
    static void tr_a##n(void)                                                            \
    {                                                                                    \
        PROBE_SCOPE("tr_a" #n);                                                          \
        next_a();                                                                        \
        next_b();                                                                        \
    }                                                                                    \
    __attribute__((unused)) static void tr_b##n(void)                                    \
    {                                                                                    \
        PROBE_SCOPE("tr_b" #n);                                                          \
        next_a();                                                                        \
        next_b();                                                                        \
    }
/* clang-format off */
LEVEL(14, tr_end, tr_end)
LEVEL(13, tr_a14, tr_b14) LEVEL(12, tr_a13, tr_b13) LEVEL(11, tr_a12, tr_b12)
LEVEL(10, tr_a11, tr_b11) LEVEL(9, tr_a10, tr_b10) LEVEL(8, tr_a9, tr_b9)
LEVEL(7, tr_a8, tr_b8) LEVEL(6, tr_a7, tr_b7) LEVEL(5, tr_a6, tr_b6)
LEVEL(4, tr_a5, tr_b5) LEVEL(3, tr_a4, tr_b4) LEVEL(2, tr_a3, tr_b3)
LEVEL(1, tr_a2, tr_b2) LEVEL(0, tr_a1, tr_b1)
/* clang-format on */

START_TEST(paths_are_bounded_and_losses_counted)
{
    tr_a0(); /* 2^15 - 1 scope calls along 2^15 - 1 distinct paths */

    probe_snapshot *snap = test_snap();
    uint64_t calls = 0;

    for (size_t i = 0; i < probe_snapshot_site_count(snap); i++) {
        const probe_site_info *s = probe_snapshot_site(snap, i);
        if (s->kind == PROBE_KIND_SCOPE && strncmp(s->name, "tr_", 3) == 0 &&
            (s->name[3] == 'a' || s->name[3] == 'b') && s->name[4] >= '0' &&
            s->name[4] <= '9')
            calls += s->calls;
    }
    /* The sites count every call; the tree keeps 16384 paths and counts the rest. */
    ck_assert_uint_eq(calls, (1u << 15) - 1);
    ck_assert_uint_eq(probe_snapshot_node_count(snap), 16384);
    /* So does the thread, on kept paths and dropped ones alike. */
    uint64_t tid = (uint64_t)syscall(SYS_gettid), thread_scopes = 0;
    for (size_t i = 0; i < probe_snapshot_thread_count(snap); i++)
        if (probe_snapshot_thread(snap, i)->tid == tid && probe_snapshot_thread(snap, i)->live)
            thread_scopes = probe_snapshot_thread(snap, i)->scopes;
    ck_assert_uint_eq(thread_scopes, (1u << 15) - 1);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->edges_dropped,
                      calls - probe_snapshot_node_count(snap));
    probe_snapshot_free(snap);
}
END_TEST

/* 1000 child sites, tr_kid000 .. tr_kid999, and 20 parents, tr_par00 .. tr_par19, each
 * calling every child once (in order). */
#define KIDS 1000
#define PARENTS 20
#define KID(n)                                                                           \
    static void tr_kid##n(void)                                                          \
    {                                                                                    \
        PROBE_SCOPE("tr_kid" #n);                                                        \
        __asm__ __volatile__("" ::: "memory");                                           \
    }
#define KID_PTR(n) tr_kid##n,
#define D1(F, p) F(p##0) F(p##1) F(p##2) F(p##3) F(p##4) F(p##5) F(p##6) F(p##7) F(p##8) F(p##9)
#define D2(F, p) D1(F, p##0) D1(F, p##1) D1(F, p##2) D1(F, p##3) D1(F, p##4) D1(F, p##5) \
    D1(F, p##6) D1(F, p##7) D1(F, p##8) D1(F, p##9)
#define D3(F) D2(F, 0) D2(F, 1) D2(F, 2) D2(F, 3) D2(F, 4) D2(F, 5) D2(F, 6) D2(F, 7)     \
    D2(F, 8) D2(F, 9)
D3(KID)
static void (*const tr_kids[KIDS])(void) = {D3(KID_PTR)};

#define PAR(n)                                                                           \
    static void tr_par##n(unsigned from, unsigned to)                                    \
    {                                                                                    \
        PROBE_SCOPE("tr_par" #n);                                                        \
        for (unsigned i = from; i < to; i++)                                             \
            tr_kids[i]();                                                                \
    }
#define PAR_PTR(n) tr_par##n,
D1(PAR, 0) D1(PAR, 1)
static void (*const tr_pars[PARENTS])(unsigned, unsigned) = {D1(PAR_PTR, 0) D1(PAR_PTR, 1)};

static char *
kid_name(char *buf, unsigned i)
{
    snprintf(buf, 16, "tr_kid%03u", i);
    return buf;
}

/* The number of nodes whose parent is @parent. */
static size_t
children_of(const probe_snapshot *snap, size_t parent)
{
    size_t n = 0;

    for (size_t i = 0; i < probe_snapshot_node_count(snap); i++)
        n += probe_snapshot_node(snap, i)->parent == parent;
    return n;
}

START_TEST(a_thousand_alternating_children)
{
    enum { ROUNDS = 7 };
    char name[16];

    /* Two parents take turns calling the same 1000 children: every child is entered
     * under the other parent than last time, and each parent's children alternate. */
    for (int r = 0; r < ROUNDS; r++) {
        tr_pars[0](0, KIDS);
        tr_pars[1](0, KIDS);
        tr_pars[0](0, KIDS);
    }
    tr_kids[KIDS - 1](); /* once at top level too */

    probe_snapshot *snap = test_snap();
    const probe_node_info *p0 = NODE(snap, "tr_par00"), *p1 = NODE(snap, "tr_par01");
    ck_assert_ptr_nonnull(p0);
    ck_assert_ptr_nonnull(p1);
    ck_assert_uint_eq(p0->calls, 2 * ROUNDS);
    ck_assert_uint_eq(p1->calls, ROUNDS);
    ck_assert_uint_eq(children_of(snap, p0->index), KIDS);
    ck_assert_uint_eq(children_of(snap, p1->index), KIDS);
    /* Nothing under the children, and one top-level child. */
    ck_assert_uint_eq(probe_snapshot_node_count(snap), 2 + 2 * KIDS + 1);
    uint64_t under0 = 0;
    for (unsigned i = 0; i < KIDS; i++) {
        const probe_node_info *a = NODE(snap, "tr_par00", kid_name(name, i));
        const probe_node_info *b = NODE(snap, "tr_par01", kid_name(name, i));
        ck_assert_msg(a && b, "no path to %s", name);
        ck_assert_uint_eq(a->calls, 2 * ROUNDS);
        ck_assert_uint_eq(b->calls, ROUNDS);
        ck_assert_uint_eq(a->depth, 1);
        ck_assert_uint_eq(test_site(snap, name)->calls, 3 * ROUNDS + (i == KIDS - 1));
        ck_assert_uint_eq(test_edge(snap, "tr_par00", name)->calls, 2 * ROUNDS);
        under0 += a->total_ns;
    }
    ck_assert_uint_le(under0, p0->total_ns);
    kid_name(name, KIDS - 1);
    ck_assert_uint_eq(NODE(snap, name)->calls, 1);
    ck_assert_ptr_null(NODE(snap, kid_name(name, 0)));
    ck_assert_uint_eq(probe_snapshot_losses(snap)->edges_dropped, 0);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(paths_beyond_the_limit_are_dropped_and_counted)
{
    /* 20 parents x (1 + 1000 children): 20,020 distinct paths on one thread, twice. */
    enum { PATHS = PARENTS * (1 + KIDS), KEPT = 16384 };
    char name[16], par[16];

    for (int pass = 0; pass < 2; pass++)
        for (unsigned p = 0; p < PARENTS; p++)
            tr_pars[p](0, KIDS);

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(probe_snapshot_node_count(snap), KEPT);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->edges_dropped, 2 * (PATHS - KEPT));
    /* The first paths are kept, in the order they were met: parent p's node is path
     * p * 1001 + 1, its children the next 1000. */
    unsigned last_par = (KEPT - 1) / (1 + KIDS), last_kid = KEPT - last_par * (1 + KIDS) - 2;
    snprintf(par, sizeof(par), "tr_par%02u", last_par);
    ck_assert_uint_eq(NODE(snap, "tr_par00", kid_name(name, KIDS - 1))->calls, 2);
    ck_assert_uint_eq(NODE(snap, par, kid_name(name, last_kid))->calls, 2);
    ck_assert_ptr_null(NODE(snap, par, kid_name(name, last_kid + 1)));
    snprintf(par, sizeof(par), "tr_par%02u", last_par + 1);
    ck_assert_ptr_null(NODE(snap, par));
    /* The sites still count every call. */
    ck_assert_uint_eq(test_site(snap, par)->calls, 2);
    ck_assert_uint_eq(test_site(snap, kid_name(name, 0))->calls, 2 * PARENTS);
    uint64_t kept_calls = 0;
    for (size_t i = 0; i < probe_snapshot_node_count(snap); i++)
        kept_calls += probe_snapshot_node(snap, i)->calls;
    ck_assert_uint_eq(kept_calls + probe_snapshot_losses(snap)->edges_dropped, 2 * PATHS);
    probe_snapshot_free(snap);
}
END_TEST

static void
tr_drec(int n)
{
    PROBE_SCOPE("tr_drec");
    test_spin_ns(20000);
    if (n > 1)
        tr_drec(n - 1);
}

/* With the thread's table full, a recursion has no node: whether each call is
 * primitive is read from its frames, so the site's figures stay exact. */
START_TEST(recursion_on_a_dropped_path)
{
    for (unsigned p = 0; p < PARENTS; p++)
        tr_pars[p](0, KIDS);
    uint64_t dropped = 0;
    probe_snapshot *snap = test_snap();
    dropped = probe_snapshot_losses(snap)->edges_dropped;
    probe_snapshot_free(snap);

    tr_drec(5);
    tr_drec(3);

    snap = test_snap();
    ck_assert_ptr_null(NODE(snap, "tr_drec"));
    const probe_site_info *r = test_site(snap, "tr_drec");
    ck_assert_uint_eq(r->calls, 8);
    ck_assert_uint_eq(r->prim_calls, 2);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->edges_dropped, dropped + 8);
    /* total counts the two outermost calls; self every call's own spin */
    ck_assert_uint_ge(r->total_ns, 8 * 20000);
    ck_assert_uint_ge(r->self_ns, 8 * 20000);
    ck_assert_uint_le(r->self_ns, r->total_ns);
    probe_snapshot_free(snap);
}
END_TEST

/* The owner adds paths while snapshots read them: every node a reader sees is whole. */
static volatile int tr_grow_done;

static void *
tr_grow(void *arg)
{
    (void)arg;
    for (unsigned p = 0; p < 16; p++)
        for (unsigned k = 0; k < KIDS; k += 50) {
            tr_pars[p](k, k + 50);
            tr_pars[p](k, k + 50);
        }
    __atomic_store_n(&tr_grow_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

START_TEST(snapshots_see_whole_nodes_while_paths_grow)
{
    pthread_t th;
    unsigned snaps = 0;

    ck_assert_int_eq(pthread_create(&th, NULL, tr_grow, NULL), 0);
    do {
        probe_snapshot *snap = test_snap();
        size_t n = probe_snapshot_node_count(snap);
        for (size_t i = 0; i < n; i++) {
            const probe_node_info *node = probe_snapshot_node(snap, i);
            const probe_site_info *site = probe_snapshot_site(snap, node->site);
            ck_assert_ptr_nonnull(site);
            ck_assert_uint_le(node->self_ns, node->total_ns);
            if (node->parent != PROBE_NODE_ROOT) {
                ck_assert_uint_lt(node->parent, i);
                ck_assert_uint_eq(node->depth, 1);
                /* A child's path is always under its own parent site. */
                ck_assert_int_eq(strncmp(site->name, "tr_kid", 6), 0);
                const probe_site_info *ps =
                    probe_snapshot_site(snap, probe_snapshot_node(snap, node->parent)->site);
                ck_assert_int_eq(strncmp(ps->name, "tr_par", 6), 0);
            }
        }
        probe_snapshot_free(snap);
        snaps++;
    } while (!__atomic_load_n(&tr_grow_done, __ATOMIC_ACQUIRE));
    ck_assert_int_eq(pthread_join(th, NULL), 0);

    probe_snapshot *snap = test_snap();
    ck_assert_uint_eq(probe_snapshot_node_count(snap), 16 + 16 * KIDS);
    ck_assert_uint_eq(NODE(snap, "tr_par15", "tr_kid999")->calls, 2);
    ck_assert_uint_ge(snaps, 1);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(reset_clears_paths)
{
    tr_a();
    probe_reset();
    tr_b();

    probe_snapshot *snap = test_snap();
    const probe_node_info *a = NODE(snap, "tr_a");

    ck_assert_ptr_null(a); /* no call on that path since the reset */
    ck_assert_uint_eq(NODE(snap, "tr_b", "tr_leaf")->calls, 4);
    probe_snapshot_free(snap);
}
END_TEST

static Suite *
tree_suite(void)
{
    Suite *s = suite_create("tree");
    TCase *tc = tcase_create("paths");

    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, paths_are_told_apart);
    tcase_add_test(tc, every_node_is_consistent);
    tcase_add_test(tc, recursion_is_a_chain_of_paths);
    tcase_add_test(tc, recursion_and_shared_leaf_keep_exact_paths);
    tcase_add_test(tc, threads_merge_by_path);
    tcase_add_test(tc, live_threads_with_paths_in_other_orders);
    tcase_add_test(tc, sites_are_the_sums_of_their_nodes);
    tcase_add_test(tc, paths_are_bounded_and_losses_counted);
    tcase_add_test(tc, reset_clears_paths);
    tcase_add_test(tc, a_thousand_alternating_children);
    tcase_add_test(tc, paths_beyond_the_limit_are_dropped_and_counted);
    tcase_add_test(tc, recursion_on_a_dropped_path);
    tcase_add_test(tc, snapshots_see_whole_nodes_while_paths_grow);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(tree_suite());
}
