/* Per-thread recording: the hot path of every macro, thread creation and exit, and
 * the generation scheme behind probe_reset().
 *
 * probe_reset() cannot clear another thread's statistics without racing with it, so
 * it bumps a global generation instead. A snapshot ignores threads whose statistics
 * belong to an older generation, and each thread zeroes its own the next time it
 * records. */
#include "thread.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <probe/probe.h>

#include "memacct.h"
#include "atomics.h"
#include "numfmt.h"
#include "clock.h"
#include "samples.h"
#include "sites.h"
#include "walk.h"
#include <probe/report.h>

#define COLD __attribute__((cold, noinline))
/* GCC's straight-line vectorizer pairs the frame's stores through SSE registers,
 * which takes more instructions than the plain stores (4 for 2). */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_SLP __attribute__((optimize("no-tree-slp-vectorize")))
#else
#define NO_SLP
#endif
#define NODE_HASH_MIN_BITS 6 /* 64 slots: a thread with a few paths keeps it small */

/* Not static: memacct.h reads it inline (thread_current_node). */
__thread struct thread_state *tls_thread __attribute__((tls_model("initial-exec")));
/* Set once the thread's state has been folded at exit: later hits are not kept. */
static __thread int tls_dead __attribute__((tls_model("initial-exec")));

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
/* Snapshots fold live threads' statistics without reg_lock; @folding counts them
 * (under reg_lock), and probe_reset() waits for none to run before it starts a new
 * generation, whose owners then clear their statistics (catch_up). */
static unsigned folding;
static pthread_cond_t fold_done = PTHREAD_COND_INITIALIZER;
static struct thread_state *live_head;
static struct aggregate retired;
static struct thread_listing retired_list[THREAD_RETIRED_LISTED];
static size_t nretired_list;
static uint32_t global_gen = 1;
/* What the scope's fast paths compare a thread's (or a frame's) generation with:
 * global_gen while the TSC times scopes and no trace is on, else a value no
 * generation takes (HOT_SLOW set), which sends every scope to the full paths. One
 * load and one compare stand for three checks. Set by thread_hot_refresh(). */
#define HOT_SLOW 0x80000000u
static uint32_t hot_key = HOT_SLOW;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

void (*thread_start_hook)(void);
void (*sampler_reset_hook)(void);
void (*thread_exit_hook)(void);
void (*fault_thread_start_hook)(void);
void (*fault_thread_exit_hook)(void);

/* ---- creation, exit, reset ------------------------------------------------------ */

static void thread_exit(void *arg);
static void limbo_drain(void);

static void
exit_key_create(void)
{
    (void)pthread_key_create(&exit_key, thread_exit);
}

/* Zeroed nodes on cache-line boundaries: a node is one line (stats.h). */
static COLD struct cct_node *
node_chunk_alloc(void)
{
    void *p = NULL;

    if (posix_memalign(&p, 64, THREAD_NODE_CHUNK * sizeof(struct cct_node)) != 0)
        return NULL;
    return memset(p, 0, THREAD_NODE_CHUNK * sizeof(struct cct_node));
}

static COLD struct thread_state *
thread_create(void)
{
    struct thread_state *t;

    if (tls_dead)
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, _Alignof(struct thread_state), sizeof(*t)) != 0)
        return NULL;
    t = memset(p, 0, sizeof(*t));
    t->node_chunks[0] = node_chunk_alloc();
    if (!t->node_chunks[0]) {
        free(t);
        return NULL;
    }
    t->root = t->node_chunks[0];
    t->stack[0].node = t->root;
    t->nnodes = 1; /* node 0: the root, parent of the top-level scopes */
    t->tid = (uint64_t)syscall(SYS_gettid);
    t->self = pthread_self();
    pthread_once(&exit_key_once, exit_key_create);
    pthread_mutex_lock(&reg_lock);
    limbo_drain();
    t->gen = global_gen;
    t->next = live_head;
    if (live_head)
        live_head->prev = t;
    store_release(&live_head, t); /* thread_walk() reads the list without the lock */
    pthread_mutex_unlock(&reg_lock);
    (void)pthread_setspecific(exit_key, t);
    tls_thread = t;
    void (*hook)(void) = load_acquire(&thread_start_hook);
    if (hook)
        hook();
    if ((hook = load_acquire(&fault_thread_start_hook)))
        hook();
    return t;
}

/* ---- reclaiming what a walk may still read ------------------------------------- */

/* Signal handlers walking the stacks (thread_walk) read other threads' state with no
 * lock and never wait. So what is unlinked from their reach (an exited thread's
 * state, a swapped-out timeline) is freed at once only when no walk is running;
 * else it waits in a limbo, freed by the next thread exit, thread start, snapshot or
 * reset that finds no walk running (like an RCU grace period, with no waiting).
 *
 * The order that makes this safe: the unlink is stored (under reg_lock), then an
 * atomic read-modify-write of @walkers reads the count; a walk increments @walkers
 * (seq_cst) before it loads live_head. The read-modify-writes of @walkers are totally
 * ordered: a walk whose increment comes later synchronizes with the reclaimer's
 * read-modify-write and so sees the unlink; one whose increment comes earlier is
 * counted, until its decrement, which synchronizes with a reclaimer reading 0 (its
 * reads happen before the free). The read-modify-write plays the role of a seq_cst
 * fence followed by the load, in a form ThreadSanitizer understands.
 *
 * What bounds the limbo: only what is retired while a walk runs goes there, and the
 * first look that finds no walk running empties it. Each walk is bounded (at most
 * WALK_MAX_THREADS threads, no lock, no wait) and walks come from the fault dumper
 * (a crash, the watchdog, a dump signal): the limbo holds at most what threads
 * retire during the dumps in progress, until the next thread start or exit, snapshot
 * or reset after them. An entry keeps only what a walk reads (the state itself and
 * its timeline); a state's statistics and call tree are freed at once. */
static int walkers;
static struct thread_state *limbo_states; /* under reg_lock, by ->limbo_next */
static struct trace_buf *limbo_traces;    /* under reg_lock, by ->next */
static size_t limbo_count;                /* under reg_lock */

/* After an unlink, with reg_lock held: can no walk still reach what was unlinked? */
static int
no_walkers(void)
{
    return __atomic_fetch_add(&walkers, 0, __ATOMIC_SEQ_CST) == 0;
}

/* Bytes of statistics allocated by all threads (chunks, histogram segments, usage
 * records), for tests and benchmarks. Changed on the cold paths only. */
static size_t stats_bytes;

unsigned thread_fail_allocs;

/* The cold allocations a test may make fail (thread_fail_allocs). */
static int
alloc_fails(void)
{
    unsigned n = __atomic_load_n(&thread_fail_allocs, __ATOMIC_RELAXED);

    return n && __atomic_compare_exchange_n(&thread_fail_allocs, &n, n - 1, 0,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

#define SEG_BYTES (STATS_SEG_GROUPS * sizeof(struct stats_group))
#define USAGE_BYTES (THREAD_CHUNK_SITES * sizeof(struct usage_stats))

size_t
thread_stats_bytes(void)
{
    return __atomic_load_n(&stats_bytes, __ATOMIC_RELAXED);
}

static void
stats_bytes_add(size_t n)
{
    __atomic_add_fetch(&stats_bytes, n, __ATOMIC_RELAXED);
}

static void
chunk_free(struct stats_chunk *c)
{
    if (!c)
        return;
    size_t n = sizeof(*c);
    for (size_t i = 0; i < STATS_SEGS; i++) {
        n += c->segs[i] ? SEG_BYTES : 0;
        free(c->segs[i]);
    }
    n += c->usage ? USAGE_BYTES : 0;
    free(c->usage);
    free(c);
    __atomic_sub_fetch(&stats_bytes, n, __ATOMIC_RELAXED);
}

static void
free_state(struct thread_state *t)
{
    trace_buf_free(t->trace);
    for (size_t i = 0; i < THREAD_MAX_CHUNKS; i++)
        chunk_free(t->chunks[i]);
    for (size_t i = 0; i < THREAD_NODE_CHUNKS; i++)
        free(t->node_chunks[i]);
    memacct_unmap(t);
    free(t->node_hash);
    free(t);
}

/* Free everything in the limbo if no walk is running. Called with reg_lock held. */
static void
limbo_drain(void)
{
    if (!limbo_count || !no_walkers())
        return;
    for (struct thread_state *t = limbo_states, *next; t; t = next) {
        next = t->limbo_next;
        free_state(t);
    }
    for (struct trace_buf *b = limbo_traces, *next; b; b = next) {
        next = b->next;
        trace_buf_free(b);
    }
    limbo_states = NULL;
    limbo_traces = NULL;
    limbo_count = 0;
}

/* @t was unlinked from live_head (reg_lock held): free it, or what a walk does not
 * read of it and put the rest in the limbo. */
static void
retire_state(struct thread_state *t)
{
    if (no_walkers()) {
        limbo_drain();
        free_state(t);
        return;
    }
    for (size_t i = 0; i < THREAD_MAX_CHUNKS; i++) {
        chunk_free(t->chunks[i]);
        t->chunks[i] = NULL;
    }
    for (size_t i = 0; i < THREAD_NODE_CHUNKS; i++) {
        free(t->node_chunks[i]);
        t->node_chunks[i] = NULL;
    }
    memacct_unmap(t);
    free(t->node_hash);
    t->node_hash = NULL;
    t->limbo_next = limbo_states;
    limbo_states = t;
    limbo_count++;
}

/* A timeline no thread state points to any more (reg_lock held). */
static void
retire_trace(struct trace_buf *b)
{
    if (!b)
        return;
    if (no_walkers()) {
        limbo_drain();
        trace_buf_free(b);
        return;
    }
    b->next = limbo_traces; /* not on the orphan list: a live thread's, or a listing's */
    limbo_traces = b;
    limbo_count++;
}

void
thread_retire_trace(struct trace_buf *b)
{
    pthread_mutex_lock(&reg_lock);
    retire_trace(b);
    pthread_mutex_unlock(&reg_lock);
}

size_t
thread_limbo_count(void)
{
    size_t n;

    pthread_mutex_lock(&reg_lock);
    n = limbo_count;
    pthread_mutex_unlock(&reg_lock);
    return n;
}

/* Called with reg_lock held. A walk may have read an exited thread's timeline before
 * it was listed here. */
static void
free_retired_traces(void)
{
    for (size_t i = 0; i < nretired_list; i++) {
        retire_trace(retired_list[i].trace);
        retired_list[i].trace = NULL;
    }
}

static inline struct cct_node *
node_at(const struct thread_state *t, uint32_t idx)
{
    return &t->node_chunks[idx / THREAD_NODE_CHUNK][idx % THREAD_NODE_CHUNK];
}

/* Add @t's calling-context tree to @agg's, path by path. Parents come before their
 * children in a thread's table, so one pass maps every node. @map has room for
 * every node of every thread folded with it and is kept from thread to thread: what
 * it holds for node i before it is overwritten is where the previous thread's node i
 * went, the hint for this one (agg_add_node_hint). */
static int
fold_nodes(struct aggregate *agg, const struct thread_state *t, uint32_t *map,
           uint64_t *ret_calls)
{
    uint32_t n = load_acquire(&t->nnodes);
    uint64_t calls = 0;

    map[0] = 0;
    for (uint32_t i = 1; i < n; i++) {
        const struct cct_node *c = node_at(t, i);
        struct node_acc a;
        uint32_t parent = map[c->parent];
        /* The histogram's counts first (acquire): the calls read next include
         * every call they hold. */
        uint64_t hot = load_acquire(&c->hot);
        /* self is written after total (release): read first, with acquire, so
         * that the total read next includes every call self does. */
        a.self = load_acquire(&c->self);
        a.total = load_relaxed(&c->total);
        a.calls = load_relaxed(&c->calls);
        /* A path's calls are all primitive or all nested (stats.h). */
        a.prim_calls = c->nested ? 0 : a.calls;
        a.total_prim = c->nested ? 0 : a.total;
        const struct node_mem *m = load_acquire(&t->mem_chunks[i / THREAD_NODE_CHUNK]);
        if (m) {
            m += i % THREAD_NODE_CHUNK;
            a.mem_allocs = load_relaxed(&m->allocs);
            a.mem_bytes = load_relaxed(&m->bytes);
            a.mem_freed = load_relaxed(&m->freed);
        } else {
            a.mem_allocs = a.mem_bytes = a.mem_freed = 0;
        }
        a.site = c->site;
        /* The path's calls in its two buckets, not in the site's groups yet. */
        unsigned buckets[STATS_HOT_SLOTS];
        uint64_t pending[STATS_HOT_SLOTS];
        stats_hot_pending(hot, buckets, pending);
        for (unsigned s = 0; s < STATS_HOT_SLOTS; s++)
            if (pending[s] && agg_add_hist(agg, a.site, buckets[s], pending[s]) < 0)
                return -1;
        calls += a.calls;
        map[i] = parent == AGG_NODE_DROPPED ? AGG_NODE_DROPPED
                                            : agg_add_node_hint(agg, parent, &a, map[i]);
        /* The site's figures are its nodes' sums: keep them without the path. */
        if (map[i] == AGG_NODE_DROPPED && agg_node_to_site(agg, &a) < 0)
            return -1;
    }
    *ret_calls = calls;
    return 0;
}

/* Ask for the histogram groups site @j of @c uses, as its line (asked for earlier)
 * tells. A racy read of another thread's site, for a hint only: a group not
 * published yet is skipped. */
static inline void
prefetch_groups(const struct stats_chunk *c, unsigned j)
{
    const struct site_stats *st = &c->sites[j];

    for (uint32_t m = load_relaxed(&st->groups); m; m &= m - 1) {
        unsigned ref = load_relaxed(&st->hist[__builtin_ctz(m)]);
        if (!ref)
            continue;
        if (!(ref & STATS_HIST_SEG)) {
            __builtin_prefetch((const char *)st + (size_t)ref * 64u);
            continue;
        }
        ref &= ~STATS_HIST_SEG;
        const struct stats_group *seg = load_relaxed(&c->segs[ref / STATS_SEG_GROUPS]);
        if (seg)
            __builtin_prefetch(&seg[ref % STATS_SEG_GROUPS]);
    }
}

/* Add chunk @i of @n threads' statistics to @agg. Reading other threads' statistics
 * is a cache miss per line, so the reads run ahead as a pipeline: while thread k's
 * site j is added, thread k+2's same site (both lines) is asked for, and thread
 * k+1's histogram groups, from its site's line asked for a chunk earlier. */
static int
fold_chunk(struct aggregate *agg, struct thread_state *const *ts, size_t n, uint32_t i)
{
    const struct stats_chunk *c = n > 0 ? load_acquire(&ts[0]->chunks[i]) : NULL;
    const struct stats_chunk *next = n > 1 ? load_acquire(&ts[1]->chunks[i]) : NULL;

    for (size_t k = 0; k < n; k++) {
        const struct stats_chunk *after = k + 2 < n ? load_acquire(&ts[k + 2]->chunks[i])
                                                    : NULL;
        for (uint32_t j = 0; c && j < THREAD_CHUNK_SITES; j++) {
            if (after) {
                __builtin_prefetch(&after->sites[j]);
                __builtin_prefetch((const char *)&after->sites[j] + 64);
            }
            if (next)
                prefetch_groups(next, j);
            if (agg_add_site(agg, i * THREAD_CHUNK_SITES + j, c, j) < 0)
                return -1;
        }
        c = next;
        next = after;
    }
    return 0;
}

/* Add everything @t recorded but its statistics of sites to @agg; its completed
 * scopes to @ret_scopes. */
static int
fold_rest(struct aggregate *agg, const struct thread_state *t, uint32_t *map,
          uint64_t *ret_scopes)
{
    uint64_t calls = 0;

    if (fold_nodes(agg, t, map, &calls) < 0)
        return -1;
    *ret_scopes = calls + load_relaxed(&t->scopes_unpathed);
    agg->loss.depth_overflow += load_relaxed(&t->loss.depth_overflow);
    agg->loss.unbalanced += load_relaxed(&t->loss.unbalanced);
    agg->loss.edges_dropped += load_relaxed(&t->loss.edges_dropped);
    agg->loss.sites_dropped += load_relaxed(&t->loss.sites_dropped);
    agg->loss.stats_dropped += load_relaxed(&t->loss.stats_dropped);
    agg->scopes += *ret_scopes;
    return 0;
}

/* Add everything @n threads recorded to @agg. Safe while their owners keep
 * recording. Chunk by chunk across the threads, so that the sums of a chunk's sites
 * (1.6 KB each) stay in the cache while every thread adds to them. */
static int
fold_all(struct aggregate *agg, struct thread_state *const *ts, size_t n,
         uint64_t *scopes)
{
    /* Zeroed: hint 0 (the root) never matches. */
    uint32_t *map = calloc(THREAD_MAX_NODES + 1, sizeof(*map));
    int rc = -1;

    if (!map)
        return -1;
    uint32_t end = 0;

    for (size_t k = 0; k < n; k++) {
        uint32_t e = load_acquire(&ts[k]->chunks_end);
        end = e > end ? e : end;
    }
    /* A chunk allocated meanwhile holds calls newer than the snapshot. */
    for (uint32_t i = 0; i < end; i++)
        if (fold_chunk(agg, ts, n, i) < 0)
            goto out;
    /* The nodes after the histogram groups: calls that move from a node to a group
     * between the two reads are then read in neither place (at most the 4,096 a
     * node holds), never in both (hist_move). The fence orders the groups' relaxed
     * reads before the nodes', and pairs with the release of a move's add. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    for (size_t k = 0; k < n; k++)
        if (fold_rest(agg, ts[k], map, &scopes[k]) < 0)
            goto out;
    rc = 0;
out:
    free(map);
    return rc;
}

/* The one rule for a thread's name in every report: the name set with
 * probe_thread_name(), else the kernel's (/proc/self/task/TID/comm: the program's
 * name for the main thread), else "thread TID". Only open/read/close: the fault
 * dumper calls it from its handler. */
PROBE_SIGSAFE void
thread_display_name(uint64_t tid, const char *set, char out[THREAD_NAME_MAX])
{
    char path[64] = "/proc/self/task/";
    size_t n = strlen(path);

    if (set && set[0]) {
        memccpy(out, set, '\0', THREAD_NAME_MAX - 1);
        out[THREAD_NAME_MAX - 1] = '\0';
        return;
    }
    n += numfmt_u64(path + n, tid, 1);
    memcpy(path + n, "/comm", 6);
    int saved = errno;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t r = fd >= 0 ? read(fd, out, THREAD_NAME_MAX - 1) : -1;
    if (fd >= 0)
        close(fd);
    errno = saved;
    if (r > 0 && out[r - 1] == '\n')
        r--;
    if (r > 0) {
        out[r] = '\0';
        return;
    }
    memcpy(out, "thread ", 7);
    numfmt_u64(out + 7, tid, 1);
}

/* @name: the thread's name as reports show it, when the caller has it; else NULL. */
static void
listing_of(const struct thread_state *t, const char *name, int live, int current,
           struct thread_listing *out)
{
    out->tid = t->tid;
    if (name)
        memcpy(out->name, name, sizeof(out->name));
    else
        thread_display_name(t->tid, t->name, out->name);
    out->live = live;
    out->scopes = 0; /* the fold's count, for a current thread */
    out->events_dropped = 0;
    out->trace = NULL;
}

static void
thread_exit(void *arg)
{
    struct thread_state *t = arg;
    void (*hook)(void) = load_acquire(&thread_exit_hook);

    if (hook)
        hook();
    if ((hook = load_acquire(&fault_thread_exit_hook)))
        hook();
    /* Read before the lock: it costs three system calls. */
    char name[THREAD_NAME_MAX];

    thread_display_name(t->tid, t->name, name);
    pthread_mutex_lock(&reg_lock);
    /* The timeline does not follow the statistics' generation: hand it off first. */
    if (trace_thread_exit(t->trace, t->tid, name))
        store_release(&t->trace, NULL); /* the stream writer drains and frees it */
    if (t->gen == global_gen) {
        /* Scopes still open at exit are lost: say so. */
        owner_add(&t->loss.unbalanced, t->depth + t->overflow_open);
        /* Out of memory leaves the sums partial, no more. */
        uint64_t scopes = 0;
        (void)fold_all(&retired, &t, 1, &scopes);
        if (nretired_list < THREAD_RETIRED_LISTED) {
            struct thread_listing *l = &retired_list[nretired_list++];
            listing_of(t, name, 0, 1, l);
            l->scopes = scopes;
            if (trace_current(t->trace)) { /* its timeline stays for reports */
                l->trace = t->trace;
                store_release(&t->trace, NULL);
            }
        } else {
            retired.loss.threads_unlisted++;
        }
    }
    if (t->prev)
        store_release(&t->prev->next, t->next);
    else
        store_release(&live_head, t->next);
    if (t->next)
        t->next->prev = t->prev;
    /* Before it may be freed: a signal handler on this thread reads tls_thread. */
    tls_thread = NULL;
    tls_dead = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (t->pins)
        t->exited = 1; /* a snapshot is folding it: the last one retires it */
    else
        retire_state(t);
    pthread_mutex_unlock(&reg_lock);
}

void
thread_reset_all(void)
{
    pthread_mutex_lock(&reg_lock);
    while (folding)
        pthread_cond_wait(&fold_done, &reg_lock);
    store_release(&global_gen, (global_gen + 1) & FRAME_GEN_MASK);
    thread_hot_refresh();
    agg_free(&retired);
    free_retired_traces();
    limbo_drain();
    nretired_list = 0;
    trace_reset();
    pthread_mutex_unlock(&reg_lock);
    void (*reset)(void) = load_acquire(&sampler_reset_hook);
    if (reset)
        reset(); /* outside the registry lock, like every sampler hook */
}

/* The owner noticed a reset: zero its own statistics, keep its open frames. No
 * snapshot reads them meanwhile, since its generation is not the current one. */
static COLD void
catch_up(struct thread_state *t, uint32_t gen)
{
    for (size_t i = 0; i < THREAD_MAX_CHUNKS; i++) {
        struct stats_chunk *c = t->chunks[i];
        if (!c)
            continue;
        /* The histogram groups stay where they are, zeroed. */
        for (size_t j = 0; j < THREAD_CHUNK_SITES; j++) {
            struct site_stats *st = &c->sites[j];
            uint16_t hist[STATS_HIST_GROUPS];
            uint32_t groups = st->groups;
            struct cct_node *np = st->node_parent, *n = st->node;
            memcpy(hist, st->hist, sizeof(hist));
            stats_site_init(st);
            st->node_parent = np;
            st->node = n;
            memcpy(st->hist, hist, sizeof(hist));
            st->groups = groups;
        }
        memset(c->groups, 0, sizeof(c->groups));
        for (size_t k = 0; k < STATS_SEGS; k++)
            if (c->segs[k])
                memset(c->segs[k], 0, SEG_BYTES);
        if (c->usage)
            memset(c->usage, 0, USAGE_BYTES);
    }
    for (uint32_t i = 1; i < t->nnodes; i++) {
        struct cct_node *n = node_at(t, i);
        n->calls = n->total = n->self = n->hot = 0;
    }
    memacct_clear(t);
    t->scopes_unpathed = 0;
    memset(&t->loss, 0, sizeof(t->loss));
    store_release(&t->gen, gen);
}

/* The acquire pairs with the release in thread_reset_all(): the snapshots that read
 * the old statistics are then ordered before catch_up() clears them. */
static inline void
catch_up_if_reset(struct thread_state *t)
{
    uint32_t gen = load_acquire(&global_gen);

    if (unlikely(t->gen != gen))
        catch_up(t, gen);
}

static COLD struct stats_chunk *
chunk_alloc(struct thread_state *t, uint32_t idx)
{
    void *p = NULL;

    if (posix_memalign(&p, sizeof(struct stats_group), sizeof(struct stats_chunk)) != 0)
        return NULL;
    struct stats_chunk *c = memset(p, 0, sizeof(*c));
    for (unsigned j = 0; j < THREAD_CHUNK_SITES; j++)
        stats_site_init(&c->sites[j]);
    stats_bytes_add(sizeof(*c));
    store_release(&t->chunks[idx], c);
    if (idx >= t->chunks_end)
        store_release(&t->chunks_end, idx + 1);
    return c;
}

/* Everything the fast paths do not handle: a thread's first use, a reset to catch up
 * with, a site not registered yet, a chunk to allocate, a full registry. */
static COLD struct site_stats *
stats_slow(struct probe__site *site, struct thread_state **ret_t, uint32_t *ret_id)
{
    struct thread_state *t = tls_thread;
    uint32_t id;

    if (!t && !(t = thread_create()))
        return NULL;
    *ret_t = t;
    catch_up_if_reset(t);
    id = load_acquire(&site->id);
    if (!id)
        id = sites_register_one(site);
    if (id == SITES_ID_DROPPED || id / THREAD_CHUNK_SITES >= THREAD_MAX_CHUNKS) {
        owner_add(&t->loss.sites_dropped, 1);
        return NULL;
    }
    struct stats_chunk *c = t->chunks[id / THREAD_CHUNK_SITES];
    if (!c && !(c = chunk_alloc(t, id / THREAD_CHUNK_SITES)))
        return NULL;
    *ret_id = id;
    return &c->sites[id % THREAD_CHUNK_SITES];
}

/* The fast lookup: NULL sends the caller to stats_slow(). The unsigned subtraction
 * sends id 0 (not registered) and SITES_ID_DROPPED there too. */
static inline struct site_stats *
stats_fast_key(struct thread_state *t, uint32_t id, uint32_t key)
{
    if (unlikely(!t || id - 1u >= SITES_MAX - 1u || t->gen != key))
        return NULL;
    struct stats_chunk *c = t->chunks[id / THREAD_CHUNK_SITES];
    return likely(c) ? &c->sites[id % THREAD_CHUNK_SITES] : NULL;
}

static inline struct site_stats *
stats_fast(struct thread_state *t, uint32_t id)
{
    return stats_fast_key(t, id, load_relaxed(&global_gen));
}

/* ---- the calling-context tree --------------------------------------------------- */

static inline uint32_t
node_hash_slot(uint32_t parent, uint32_t site, uint32_t bits)
{
    return (uint32_t)(((uint64_t)parent << 32 | site) * 0x9e3779b97f4a7c15ull >> (64 - bits));
}

/* Make the (parent, site) hash twice as large (or the first one), placing every node
 * again. -1 when out of memory. */
static COLD int
node_hash_grow(struct thread_state *t)
{
    uint32_t bits = t->node_hash ? t->node_hash_bits + 1 : NODE_HASH_MIN_BITS;
    uint32_t mask = (1u << bits) - 1, *h = calloc((size_t)mask + 1, sizeof(*h));

    if (!h)
        return -1;
    for (uint32_t i = 1; i < t->nnodes; i++) {
        const struct cct_node *n = node_at(t, i);
        uint32_t s = node_hash_slot(n->parent, n->site, bits);
        while (h[s])
            s = (s + 1) & mask;
        h[s] = i;
    }
    free(t->node_hash);
    t->node_hash = h;
    t->node_hash_bits = bits;
    return 0;
}

/* A new child of node @parent for @site, published to readers (parent and site are
 * written before the release of nnodes). NULL when the table is full or memory short. */
static COLD struct cct_node *
node_add(struct thread_state *t, uint32_t parent, uint32_t site)
{
    uint32_t idx = t->nnodes;

    if (idx > THREAD_MAX_NODES)
        return NULL; /* the root and THREAD_MAX_NODES paths */
    /* At most half full once it holds nodes 1..idx. */
    if ((!t->node_hash || idx * 2 > 1u << t->node_hash_bits) && node_hash_grow(t) < 0)
        return NULL;
    struct cct_node **chunk = &t->node_chunks[idx / THREAD_NODE_CHUNK];
    if (!*chunk && !(*chunk = node_chunk_alloc()))
        return NULL;
    struct cct_node *n = node_at(t, idx);
    n->parent = parent;
    n->site = site;
    n->idx = idx;
    /* Nested when an ancestor has the same site: the path's depth in steps, once. */
    for (uint32_t a = parent; a && !n->nested; a = node_at(t, a)->parent)
        n->nested = node_at(t, a)->site == site;
    uint32_t mask = (1u << t->node_hash_bits) - 1;
    uint32_t s = node_hash_slot(parent, site, t->node_hash_bits);
    while (t->node_hash[s])
        s = (s + 1) & mask;
    t->node_hash[s] = idx;
    store_release(&t->nnodes, idx + 1);
    return n;
}

/* The child of @p (NULL: a dropped path) for @site when @st's cache holds another
 * parent's: found in the hash or added, then cached. Out of line, so that the scope's
 * fast path saves no registers for it; not cold: recursion and a site called from
 * several places come here often. */
static __attribute__((noinline)) struct cct_node *
node_miss(struct thread_state *t, struct site_stats *st, struct cct_node *p, uint32_t site)
{
    struct cct_node *n = NULL;

    if (!p)
        return NULL; /* under a dropped path */
    uint32_t parent = p->idx;
    if (t->node_hash) {
        uint32_t mask = (1u << t->node_hash_bits) - 1;
        for (uint32_t s = node_hash_slot(parent, site, t->node_hash_bits), i;
             (i = t->node_hash[s]); s = (s + 1) & mask) {
            struct cct_node *c = node_at(t, i);
            if (c->parent == parent && c->site == site) {
                n = c;
                break;
            }
        }
    }
    if (!n && !(n = node_add(t, parent, site)))
        return NULL; /* not cached: memory may come back */
    st->node_parent = p;
    st->node = n;
    p->kid_site = site;
    p->kid = n;
    return n;
}

/* ---- scopes --------------------------------------------------------------------- */

/* A frame's generation with its marks: neither ever equals hot_key, so a marked
 * frame's scope exit leaves the fast path without a check of its own. */
static inline uint32_t
frame_gen(const struct frame *f)
{
    return f->gen & ~FRAME_MARKS;
}

/* @marks: FRAME_BEGIN or FRAME_FUNC, or 0; with FRAME_FUNC, @fn is the function
 * (thread_state.fns). */
static inline __attribute__((always_inline)) probe__token
push(struct thread_state *t, struct site_stats *st, uint32_t id, uint32_t marks,
     uintptr_t fn)
{
    uint32_t d = t->depth;
    /* The site's cached node, if it was last entered under the same parent: whatever
     * the parent's other children, one compare. */
    struct cct_node *parent = t->stack[d].node;
    struct cct_node *n;
    if (likely(st->node_parent == parent))
        n = st->node;
    else if (parent && parent->kid_site == id)
        n = parent->kid; /* recursion, or a site under several parents */
    else
        n = node_miss(t, st, parent, id);
    /* The depth before the frame, as in push_fast(). */
    t->depth = d + 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (marks & FRAME_FUNC)
        t->fns[d + 1] = fn;
    struct frame *f = &t->stack[d + 1];
    f->st = st;
    f->id = id;
    f->gen = t->gen | marks;
    f->child = 0;
    f->node = n; /* NULL: counted as a dropped edge when the scope ends */
    f->start = clock_ticks(); /* last: the bookkeeping above is not timed */
    if (unlikely(load_relaxed(&trace_on)))
        trace_emit(t, PROBE_EVENT_BEGIN, id, f->start, 0);
    return (probe__token)(d + 1);
}

/* The fast paths read the TSC themselves and make no call but tail calls, so that
 * they save no registers: anything else (a node to look up, tracing, another clock)
 * goes to the out-of-line versions. */
#ifdef CLOCK_HAVE_TSC
#define tsc_ok() likely(load_relaxed(&clock_tsc))
#define tsc_now() __rdtsc()
#else
#define tsc_ok() 0
#define tsc_now() 0
#endif

static __attribute__((noinline)) probe__token
push_full(struct thread_state *t, struct site_stats *st, uint32_t id, uint32_t marks,
          uintptr_t fn)
{
    return push(t, st, id, marks, fn);
}

/* @gen is the thread's generation (the caller compared it with hot_key): the TSC
 * and no trace. */
static inline __attribute__((always_inline)) probe__token
push_fast(struct thread_state *t, struct site_stats *st, uint32_t id, uint32_t gen,
          uint32_t marks, uintptr_t fn)
{
    uint32_t d = t->depth;
    struct frame *f = &t->stack[d];
    struct cct_node *parent = f->node, *n;

    if (likely(st->node_parent == parent))
        n = st->node; /* NULL under a dropped path (stats.h) */
    else if (parent && parent->kid_site == id)
        n = parent->kid; /* recursion, or a site under several parents */
    else
        return push_full(t, st, id, marks, fn);
    /* The exit adds to the node: ask for its line now, while the scope runs. */
    __builtin_prefetch(n);
    /* The depth first: a signal handler's scope in between opens above this frame
     * (pop_maybe_traced), and so do its instrumented functions, which would
     * otherwise overwrite this one's in fns[]. */
    t->depth = d + 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (marks & FRAME_FUNC)
        t->fns[d + 1] = fn;
    f[1].st = st;
    f[1].node = n;
    f[1].id = id;
    f[1].gen = gen | marks;
    f[1].child = 0;
    f[1].start = tsc_now(); /* last: the bookkeeping above is not timed */
    return (probe__token)(d + 1);
}

/* A scope beyond THREAD_MAX_DEPTH: not recorded, its exit only counted. The top
 * frame is marked while such scopes are open, so that its own exit, which would be
 * out of turn, leaves the fast path. */
static COLD probe__token
overflow(struct thread_state *t)
{
    if (!t->overflow_open++)
        t->stack[t->depth].gen |= FRAME_OVERFLOW;
    owner_add(&t->loss.depth_overflow, 1);
    return -1;
}

/* The innermost scope beyond the depth limit ended (or all of them, @all). */
static COLD void
overflow_close(struct thread_state *t, int all)
{
    if (!t->overflow_open)
        return;
    t->overflow_open = all ? 0 : t->overflow_open - 1;
    if (!t->overflow_open)
        t->stack[t->depth].gen &= ~FRAME_OVERFLOW;
}

/* A frame that records nothing (an unrecorded PROBE_BEGIN or function, @marks),
 * so that its END or exit still finds it. The caller checked the depth. */
static COLD probe__token
push_unrecorded(struct thread_state *t, uint32_t marks, uintptr_t fn)
{
    uint32_t d = t->depth + 1;

    /* The depth before the frame, as in push_fast(). */
    t->depth = d;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (marks & FRAME_FUNC)
        t->fns[d] = fn;
    t->stack[d] = (struct frame){.gen = t->gen | marks, .node = t->stack[d - 1].node};
    return (probe__token)d;
}

static COLD probe__token
enter_slow(struct probe__site *site, uint32_t begin)
{
    struct thread_state *t = NULL;
    uint32_t id = 0;
    struct site_stats *st = stats_slow(site, &t, &id);

    if (!t)
        return 0;
    if (t->depth >= THREAD_MAX_DEPTH)
        return overflow(t);
    if (!st) {
        if (!begin)
            return 0;
        /* A PROBE_BEGIN that is not recorded still needs a frame for its END. */
        return push_unrecorded(t, FRAME_BEGIN, 0);
    }
    return push(t, st, id, begin, 0);
}

/* probe__scope_enter() when hot_key sends it off its fast path: a trace, another
 * clock, a reset to catch up with, or what enter_slow() does. */
static __attribute__((noinline)) probe__token
enter_full(struct probe__site *site)
{
    struct thread_state *t = tls_thread;
    uint32_t id = load_relaxed(&site->id);
    struct site_stats *st = stats_fast(t, id);

    if (unlikely(!st || t->depth >= THREAD_MAX_DEPTH))
        return enter_slow(site, 0);
    return push(t, st, id, 0, 0);
}

PROBE_EXPORT NO_SLP probe__token
probe__scope_enter(struct probe__site *site)
{
    struct thread_state *t = tls_thread;
    uint32_t id = load_relaxed(&site->id), key = load_relaxed(&hot_key);
    struct site_stats *st = stats_fast_key(t, id, key);

    if (unlikely(!st || t->depth >= THREAD_MAX_DEPTH))
        return enter_full(site);
    return push_fast(t, st, id, key, 0, 0);
}

static inline struct stats_chunk *
chunk_of(struct site_stats *st, uint32_t id)
{
    return (struct stats_chunk *)(st - id % THREAD_CHUNK_SITES);
}

/* The first call of @st in histogram bucket @b's group: the group is taken from the
 * chunk's pool (a segment allocated if needed) and published. Returns the bucket's
 * counter, or NULL without memory. */
static COLD uint64_t *
hist_first(struct site_stats *st, uint32_t id, unsigned b)
{
    struct stats_chunk *c = chunk_of(st, id);
    unsigned g = c->ngroups + 1u; /* never beyond STATS_SEGS segments: see stats.h */
    struct stats_group **seg =
        g > STATS_INLINE_GROUPS ? &c->segs[(g - 1u - STATS_INLINE_GROUPS) / STATS_SEG_GROUPS]
                                : NULL;

    if (seg && !*seg) {
        void *p = NULL;
        if (alloc_fails() || posix_memalign(&p, sizeof(struct stats_group), SEG_BYTES) != 0)
            return NULL;
        memset(p, 0, SEG_BYTES);
        stats_bytes_add(SEG_BYTES);
        store_release(seg, (struct stats_group *)p);
    }
    c->ngroups = g;
    unsigned j = id % THREAD_CHUNK_SITES, ref = stats_hist_ref(j, g);
    store_release(&st->hist[b / STATS_HIST_GROUP], (uint16_t)ref);
    store_release(&st->groups, st->groups | 1u << (b / STATS_HIST_GROUP));
    return &stats_group_of(c, j, ref)->n[b % STATS_HIST_GROUP];
}

/* The counter of @st's histogram bucket @b, its group taken if needed; NULL when
 * there was no memory for it. */
static uint64_t *
hist_counter(struct site_stats *st, uint32_t id, unsigned b)
{
    unsigned ref = st->hist[b / STATS_HIST_GROUP];

    if (!ref)
        return hist_first(st, id, b);
    return &stats_group_of(chunk_of(st, id), id % THREAD_CHUNK_SITES, ref)
                ->n[b % STATS_HIST_GROUP];
}

/* hist_add() for a group in a pool segment or not taken yet. */
static __attribute__((noinline)) void
hist_add_other(struct thread_state *t, struct site_stats *st, uint32_t id, unsigned b,
               uint64_t count)
{
    uint64_t *c = hist_counter(st, id, b);

    if (c)
        owner_add64_release(c, count); /* after the node's word (hist_move) */
    else
        owner_add(&t->loss.stats_dropped, count);
}

/* Add @count calls in bucket @b (at most the last) to @st's group; without memory
 * for the group, count them as lost (their other figures are kept). A group in the
 * site's chunk is found inline, from the site's line. */
static inline __attribute__((always_inline)) void
hist_add(struct thread_state *t, struct site_stats *st, uint32_t id, unsigned b,
         uint64_t count)
{
    unsigned ref = st->hist[b / STATS_HIST_GROUP];

    if (likely(ref && !(ref & STATS_HIST_SEG))) {
        owner_add64_release(&stats_group_in_chunk(st, ref)->n[b % STATS_HIST_GROUP], count);
        return;
    }
    hist_add_other(t, st, id, b, count);
}

static inline uint64_t
hot_load(const struct cct_node *n)
{
#if STATS_HOT
    return __atomic_load_n(&n->hot, __ATOMIC_RELAXED);
#else
    (void)n;
    return 0;
#endif
}

static inline void
hot_store(struct cct_node *n, uint64_t hot)
{
#if STATS_HOT
    /* After the node's calls (fold_nodes reads them after it, with acquire). */
    __atomic_store_n(&n->hot, hot, __ATOMIC_RELEASE);
#else
    (void)n;
    (void)hot;
#endif
}

/* The last step of a scope's exit: its frame is free. Until then a signal handler's
 * scope opens above it, as a child of the ending scope, and so never on its path:
 * only the owner between two of its handlers' scopes writes a node. */
static inline __attribute__((always_inline)) void
depth_down(struct thread_state *t)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t->depth--;
}

/* hist_move() with the slots full, or without slots: every count moves out, and a
 * bucket in neither slot takes slot 0 as in hist_move(). */
static COLD void
hist_move_full(struct thread_state *t, struct site_stats *st, struct cct_node *n,
               unsigned b)
{
    if (!STATS_HOT) {
        depth_down(t);
        hist_add(t, st, n->site, stats_hist_bucket_clamp(b), 1);
        return;
    }
    uint64_t h = hot_load(n);
    unsigned k[STATS_HOT_SLOTS] = {STATS_HOT_BUCKET(h, 0), STATS_HOT_BUCKET(h, 1)};
    uint64_t c[STATS_HOT_SLOTS] = {0, 0};

    if (b != k[0] && b != k[1]) {
        k[1] = k[0];
        k[0] = b;
    }
    c[b == k[0] ? 0 : 1] = 1;
    hot_store(n, stats_hot(k, c));
    depth_down(t);
    for (unsigned s = 0; s < STATS_HOT_SLOTS; s++)
        if (STATS_HOT_COUNT(h, s))
            hist_add(t, st, n->site, stats_hist_bucket_clamp(STATS_HOT_BUCKET(h, s)),
                     STATS_HOT_COUNT(h, s));
}

/* A call of path @n (of site @st) in bucket @b (stats_hist_bucket_any), in neither
 * of the path's buckets, or with the slots full (STATS_HOT_FULL). A new bucket
 * takes slot 0, slot 0's bucket and calls go to slot 1, and slot 1's calls move to
 * their group: two buckets that alternate settle in one move, and a bucket no
 * longer seen leaves in two. Full slots move to their groups and restart.
 *
 * The node's word is stored before the calls it gave up are added to the group
 * (with release): a snapshot, which reads the groups before the nodes, then finds
 * them in one place or, when the move falls between its two reads, in neither;
 * never in both. The exit ends (depth_down) before the group's add, which is then a
 * tail call: a signal handler's call on this path may run from there. Its adds to a
 * group are single instructions, as the owner's are; taking a new group is not
 * async-signal-safe (a handler's first calls, see PROBE_SCOPE). */
static __attribute__((noinline)) void
hist_move(struct thread_state *t, struct site_stats *st, struct cct_node *n, unsigned b)
{
    uint64_t h = hot_load(n);
    unsigned k0 = STATS_HOT_BUCKET(h, 0), k1 = STATS_HOT_BUCKET(h, 1);

    if (unlikely(!STATS_HOT || (h & STATS_HOT_FULL) || b == k0 || b == k1)) {
        hist_move_full(t, st, n, b);
        return;
    }
    const unsigned k[STATS_HOT_SLOTS] = {b, k0};
    const uint64_t c[STATS_HOT_SLOTS] = {1, STATS_HOT_COUNT(h, 0)};
    uint64_t out = STATS_HOT_COUNT(h, 1);
    hot_store(n, stats_hot(k, c));
    depth_down(t);
    if (out)
        hist_add(t, st, n->site, stats_hist_bucket_clamp(k1), out);
}

/* The site's shortest and longest call. */
static inline __attribute__((always_inline)) void
site_min_max(struct site_stats *st, uint64_t dur)
{
    if (dur > st->max)
        store_relaxed(&st->max, dur);
    if (dur < st->min)
        store_relaxed(&st->min, dur);
}

/* The end of a call on a dropped path (no node: the thread's table was full, or
 * memory short): its calls and times go to the site. Whether it is primitive is
 * read from the frames below it, which costs the depth but happens only here. */
static __attribute__((noinline)) void
pop_unpathed(struct thread_state *t, const struct frame *f, struct site_stats *st,
             uint32_t id, uint64_t dur, uint64_t self)
{
    int prim = 1;

    for (const struct frame *g = &t->stack[1]; g < f && prim; g++)
        prim = g->st != st;
    /* calls before prim_calls, total before self (release): see aggregate.c */
    owner_add(&st->calls, 1);
    if (prim) {
        owner_add(&st->total, dur);
        store_release(&st->prim_calls, st->prim_calls + 1);
    }
    store_release(&st->self, st->self + self);
    owner_add(&t->scopes_unpathed, 1);
    owner_add(&t->loss.edges_dropped, 1);
    site_min_max(st, dur);
    hist_add(t, st, id, stats_hist_bucket(dur), 1);
}

/* Close frame @f, the top of @t's stack, at @now. @full: any frame (a PROBE_BEGIN's
 * too, a trace on, a generation to compare); else the exit's fast path, for a frame
 * of the thread's generation, not marked, with no trace.
 *
 * A signal handler's scopes may run between any two instructions here and in
 * push_fast(), on the same stack: the depth goes down last here (depth_down), and
 * goes up before the frame is written there, so that a handler uses only a slot no
 * longer read, and never the path being closed. The signal fences cost no
 * instruction; they keep the compiler from moving the frame's reads and writes
 * across the depth's. */
static __attribute__((noinline)) void pop_full(struct thread_state *t, uint64_t now);

static inline __attribute__((always_inline)) void
pop_maybe_traced(struct thread_state *t, struct frame *f, uint64_t now, int full)
{
    struct cct_node *n = f->node;

    /* A dropped path leaves the fast path before the rest is read: the site's id is
     * then needed only out of line. */
    if (!full && unlikely(!n)) {
        pop_full(t, now);
        return;
    }
    struct site_stats *st = f->st;
    uint64_t dur = now - f->start, self = dur - f->child;
    uint32_t id = f->id, gen = frame_gen(f);

    if (full) {
        if (unlikely(!st)) {
            depth_down(t);
            return; /* an unrecorded PROBE_BEGIN or function */
        }
        if (unlikely(load_relaxed(&trace_on)))
            trace_emit(t, PROBE_EVENT_END, id, now, 0);
    }
    f[-1].child += dur; /* the root's frame too: never read */
    if (full && unlikely(gen != t->gen)) {
        depth_down(t);
        return; /* opened before probe_reset(): not counted */
    }
    /* The path's own figures; the site's calls and times are its nodes' sums
     * (stats.h), made at snapshot time, as is which calls were primitive. */
    if (unlikely(!n)) {
        /* No node to write: the frame is free first, as it was read whole, so that
         * a handler's scope in between runs at this depth, not on a dropped path. */
        depth_down(t);
        pop_unpathed(t, f, st, id, dur, self);
        return;
    }
    /* calls, then total, then self (release): aggregate.c reads them backwards */
    owner_add64(&n->calls, 1);
    owner_add64(&n->total, dur);
    owner_add64_release(&n->self, self);
    site_min_max(st, dur);
    /* The histogram: in the path's count when the bucket is one of its two. */
    unsigned b = stats_hist_bucket_any(dur);
    uint64_t h = hot_load(n);
    /* Branch-free but for one test, which fails only on a move: a path's calls may
     * alternate between its two buckets. */
    unsigned x = ((unsigned)h ^ b * 0x101u) & 0xffffu; /* 0 in a byte: that slot */
    if (likely(STATS_HOT && (x & 0xffu) * (x >> 8) == 0 && !(h & STATS_HOT_FULL))) {
        hot_store(n, h + ((x & 0xffu) ? STATS_HOT_ONE(1) : STATS_HOT_ONE(0)));
        depth_down(t);
        return;
    }
    hist_move(t, st, n, b);
}

static inline __attribute__((always_inline)) void
pop(struct thread_state *t, uint64_t now)
{
    pop_maybe_traced(t, &t->stack[t->depth], now, 1);
}

static __attribute__((noinline)) void
pop_full(struct thread_state *t, uint64_t now)
{
    pop(t, now);
}

/* Close frame @k once the frames above it, left open (a longjmp, a PROBE_BEGIN
 * without END), are dropped as unbalanced. */
static COLD void
pop_down_to(struct thread_state *t, uint32_t k, uint64_t now)
{
    while (t->depth > k) {
        t->depth--;
        owner_add(&t->loss.unbalanced, 1);
    }
    pop(t, now);
}

/* A token that does not match the top of the stack: frames above it were left open
 * (a longjmp, a PROBE_BEGIN without END), or its frame is already gone. */
static COLD void
exit_slow(struct thread_state *t, probe__token token, uint64_t now)
{
    if (!t)
        return;
    if (token < 0) {
        overflow_close(t, 0);
        return;
    }
    if ((uint32_t)token > t->depth) {
        owner_add(&t->loss.unbalanced, 1);
        return;
    }
    owner_add(&t->loss.unbalanced, t->overflow_open);
    overflow_close(t, 1);
    pop_down_to(t, (uint32_t)token, now);
}

/* probe__scope_exit() for everything but an untraced scope timed by the TSC. */
static __attribute__((noinline)) void
exit_full(probe__token token, uint64_t now)
{
    struct thread_state *t = tls_thread;

    if (unlikely(!t || token < 0 || (uint32_t)token != t->depth || t->overflow_open)) {
        exit_slow(t, token, now);
        return;
    }
    pop(t, now);
}

void
thread_record_ticks(struct probe__site *site, uint64_t ticks)
{
    probe__token token = probe__scope_enter(site);
    struct thread_state *t = tls_thread;

    if (token <= 0 || !t)
        return;
    exit_full(token, t->stack[token].start + ticks);
}

static __attribute__((noinline)) void
exit_clock(probe__token token)
{
    exit_full(token, clock_ticks());
}

/* probe__scope_exit() off its fast path, with the TSC's reading @tsc. */
static __attribute__((noinline)) void
exit_other(probe__token token, uint64_t tsc)
{
    if (!tsc_ok()) {
        exit_clock(token);
        return;
    }
    exit_full(token, tsc);
}

PROBE_EXPORT void
probe__scope_exit(probe__token token)
{
    /* First, so that the checks are not timed; ignored when the TSC is not the
     * clock (then hot_key has HOT_SLOW, which no frame's generation has). */
    uint64_t now = tsc_now();
    struct thread_state *t = tls_thread;

    /* A negative token is never the depth. The frame's generation is hot_key when it
     * is the thread's, with no trace, the TSC, and no mark (frame_gen). */
    if (unlikely(!t || (uint32_t)token != t->depth)) {
        exit_other(token, now);
        return;
    }
    struct frame *f = &t->stack[t->depth];
    if (unlikely(f->gen != load_relaxed(&hot_key))) {
        exit_other(token, now);
        return;
    }
    pop_maybe_traced(t, f, now, 0);
}

PROBE_EXPORT probe__token
probe__scope_begin(struct probe__site *site)
{
    if (!load_relaxed(&probe__recording)) {
        /* Not recorded, but its PROBE_END must find a frame to close. */
        struct thread_state *t = tls_thread;
        if (!t && !(t = thread_create()))
            return 0;
        if (t->depth >= THREAD_MAX_DEPTH)
            return overflow(t);
        return push_unrecorded(t, FRAME_BEGIN, 0);
    }
    struct thread_state *t = tls_thread;
    uint32_t id = load_relaxed(&site->id);
    struct site_stats *st = stats_fast(t, id);

    if (unlikely(!st || t->depth >= THREAD_MAX_DEPTH))
        return enter_slow(site, FRAME_BEGIN);
    if (unlikely(load_relaxed(&trace_on) || !tsc_ok()))
        return push_full(t, st, id, FRAME_BEGIN, 0);
    return push_fast(t, st, id, t->gen, FRAME_BEGIN, 0);
}

PROBE_EXPORT void
probe__scope_end(void)
{
    uint64_t now = clock_ticks();
    struct thread_state *t = tls_thread;

    /* Even an END on a thread that never began anything is counted. */
    if (!t && !(t = thread_create()))
        return;
    catch_up_if_reset(t);
    if (t->overflow_open) {
        overflow_close(t, 0);
        return;
    }
    if (!t->depth || !(t->stack[t->depth].gen & FRAME_BEGIN)) {
        owner_add(&t->loss.unbalanced, 1);
        return;
    }
    pop(t, now);
}

/* ---- functions (-finstrument-functions) ----------------------------------------- */

/* A frame for @fn that records nothing, so that its exit still pairs. */
static COLD void
func_push_unrecorded(struct thread_state *t, void *fn)
{
    if (t->depth >= THREAD_MAX_DEPTH) {
        (void)overflow(t);
        return;
    }
    (void)push_unrecorded(t, FRAME_FUNC | FRAME_NOREC, (uintptr_t)fn);
}

static __attribute__((noinline)) void
func_enter_slow(struct probe__site *site, void *fn)
{
    struct thread_state *t = tls_thread;

    if (!t) {
        static __thread int creating __attribute__((tls_model("initial-exec")));
        if (creating)
            return; /* an instrumented allocator, called while the state is made */
        creating = 1;
        t = thread_create();
        creating = 0;
        if (!t)
            return; /* its exit finds no state either */
    }
    if (t->fn_busy)
        return; /* its exit is ignored too (func_exit_slow) */
    t->fn_busy = 1;
    uint32_t id = 0;
    struct site_stats *st = NULL;
    if (site && load_relaxed(&probe__recording))
        st = stats_slow(site, &t, &id);
    if (!st)
        func_push_unrecorded(t, fn);
    else if (t->depth >= THREAD_MAX_DEPTH)
        (void)overflow(t);
    else
        (void)push(t, st, id, FRAME_FUNC, (uintptr_t)fn);
    t->fn_busy = 0;
}

PROBE_EXPORT NO_SLP void
probe__func_enter(struct probe__site *site, void *fn)
{
    struct thread_state *t = tls_thread;
    uint32_t key = load_relaxed(&hot_key);

    /* hot_key is HOT_SLOW while recording is off: stats_fast_key() fails then. */
    if (unlikely(!site)) {
        func_enter_slow(site, fn);
        return;
    }
    uint32_t id = load_relaxed(&site->id);
    struct site_stats *st = stats_fast_key(t, id, key);
    if (unlikely(!st || t->depth >= THREAD_MAX_DEPTH || t->fn_busy)) {
        func_enter_slow(site, fn);
        return;
    }
    (void)push_fast(t, st, id, key, FRAME_FUNC, (uintptr_t)fn);
}

/* The innermost open entry of @fn is not on top, or is not one the fast path
 * closes: find it, close what is above it as unbalanced, and close it. */
static __attribute__((noinline)) void
func_exit_slow(void *fn, uint64_t tsc)
{
    struct thread_state *t = tls_thread;

    if (!t || t->fn_busy)
        return;
    if (t->overflow_open) {
        overflow_close(t, 0); /* the innermost entry, beyond the depth limit */
        return;
    }
    uint64_t now = tsc_ok() ? tsc : clock_ticks();
    for (uint32_t k = t->depth; k > 0; k--) {
        if (!(t->stack[k].gen & FRAME_FUNC) || t->fns[k] != (uintptr_t)fn)
            continue;
        pop_down_to(t, k, now);
        return;
    }
    /* An exit with no entry (the hooks were not yet there, or busy): nothing. */
}

PROBE_EXPORT void
probe__func_exit(void *fn)
{
    uint64_t now = tsc_now();
    struct thread_state *t = tls_thread;

    if (unlikely(!t)) {
        func_exit_slow(fn, now);
        return;
    }
    struct frame *f = &t->stack[t->depth];
    if (unlikely(t->fns[t->depth] != (uintptr_t)fn ||
                 f->gen != (load_relaxed(&hot_key) | FRAME_FUNC))) {
        func_exit_slow(fn, now);
        return;
    }
    pop_maybe_traced(t, f, now, 0);
}

/* ---- lines and counters --------------------------------------------------------- */

PROBE_EXPORT void
probe__line_hit(struct probe__site *site)
{
    struct thread_state *t = tls_thread;
    uint32_t id = load_relaxed(&site->id);
    struct site_stats *st = stats_fast(t, id);

    if (unlikely(!st) && !(st = stats_slow(site, &t, &id)))
        return;
    owner_add(&st->calls, 1);
}

PROBE_EXPORT void
probe__count_add(struct probe__site *site, int64_t delta)
{
    struct thread_state *t = tls_thread;
    uint32_t id = load_relaxed(&site->id);
    struct site_stats *st = stats_fast(t, id);

    if (unlikely(!st) && !(st = stats_slow(site, &t, &id)))
        return;
    owner_add(&st->calls, 1);
    /* Unsigned arithmetic: a counter that wraps must not be undefined behaviour. */
    store_relaxed(&st->value, (int64_t)((uint64_t)st->value + (uint64_t)delta));
    if (unlikely(load_relaxed(&trace_on)))
        trace_emit(t, PROBE_EVENT_COUNTER, id, clock_ticks(), st->value);
}

void
thread_add_usage(struct probe__site *site, const struct usage_stats *d)
{
    struct thread_state *t = tls_thread;
    uint32_t id = load_relaxed(&site->id);
    struct site_stats *st = stats_fast(t, id);

    if (unlikely(!st) && !(st = stats_slow(site, &t, &id)))
        return;
    /* Usage records are per chunk and rare: allocated on the first use. */
    struct stats_chunk *c = chunk_of(st, id);
    struct usage_stats *u = c->usage;
    if (!u) {
        if (alloc_fails() || !(u = calloc(THREAD_CHUNK_SITES, sizeof(*u)))) {
            owner_add(&t->loss.stats_dropped, 1);
            return;
        }
        stats_bytes_add(USAGE_BYTES);
        store_release(&c->usage, u);
    }
    u += id % THREAD_CHUNK_SITES;
    owner_add(&u->calls, d->calls);
    owner_add(&u->user_ns, d->user_ns);
    owner_add(&u->system_ns, d->system_ns);
    owner_add(&u->minor_faults, d->minor_faults);
    owner_add(&u->major_faults, d->major_faults);
    owner_add(&u->voluntary_switches, d->voluntary_switches);
    owner_add(&u->involuntary_switches, d->involuntary_switches);
}

/* ---- names, snapshots, fork ----------------------------------------------------- */

int
thread_set_name(const char *name)
{
    struct thread_state *t = tls_thread;

    if (!t && !(t = thread_create()))
        return PROBE_ENOMEM;
    pthread_mutex_lock(&reg_lock);
    strncpy(t->name, name, sizeof(t->name) - 1);
    t->name[sizeof(t->name) - 1] = '\0';
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

void
thread_swap_trace(struct thread_state *t, struct trace_buf *b)
{
    pthread_mutex_lock(&reg_lock);
    struct trace_buf *old = t->trace;
    store_release(&t->trace, b); /* thread_walk() reads it without the lock */
    retire_trace(old);
    pthread_mutex_unlock(&reg_lock);
}

void
thread_trace_forget(void)
{
    pthread_mutex_lock(&reg_lock);
    free_retired_traces();
    pthread_mutex_unlock(&reg_lock);
}

void
thread_emit_instant(const char *interned)
{
    struct thread_state *t = tls_thread;

    if (!t && !(t = thread_create()))
        return;
    trace_emit(t, PROBE_EVENT_INSTANT, 0, clock_ticks(), (int64_t)(intptr_t)interned);
}

int
thread_trace_drain(int final, double npt, struct raw_events *out,
                   struct trace_thread_name **names, size_t *nnames, uint64_t *ret_dropped)
{
    int rc = 0;

    pthread_mutex_lock(&reg_lock);
    for (struct thread_state *t = live_head; t && rc == 0; t = t->next) {
        struct trace_buf *b = t->trace;
        if (!b || !b->stream || !trace_current(b))
            continue;
        rc = trace_drain_buf(b, final, npt, out);
        *ret_dropped += load_relaxed(&b->dropped);
        if (final && names && rc == 0) {
            struct trace_thread_name *v = realloc(*names, (*nnames + 1) * sizeof(*v));
            if (!v) {
                rc = -1;
                break;
            }
            *names = v;
            v[*nnames].tid = t->tid;
            thread_display_name(t->tid, t->name, v[*nnames].name);
            (*nnames)++;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

/* The timeline of listing @i: copied into @events, its losses noted. */
static int
collect_trace(const struct trace_buf *b, size_t i, struct thread_listing *l,
              struct raw_events *events)
{
    int64_t lost = trace_copy(b, i, events);

    if (lost < 0)
        return -1;
    l->events_dropped = (uint64_t)lost;
    events->dropped += (uint64_t)lost;
    return 0;
}

int
thread_collect(struct aggregate *out, struct thread_listing **ret_list, size_t *ret_count,
               struct raw_events *events)
{
    size_t n, i = 0, npinned = 0, *at = NULL;
    struct thread_listing *list = NULL;
    struct thread_state **pinned = NULL;
    uint64_t *scopes = NULL;
    int rc = -1;

    pthread_mutex_lock(&reg_lock);
    folding++;
    limbo_drain();
    n = nretired_list;
    for (const struct thread_state *t = live_head; t; t = t->next)
        n++;
    list = calloc(n ? n : 1, sizeof(*list));
    pinned = calloc(n ? n : 1, sizeof(*pinned));
    at = calloc(n ? n : 1, sizeof(*at));             /* a pinned thread's listing */
    scopes = calloc(n ? n : 1, sizeof(*scopes));
    if (!list || !pinned || !at || !scopes || agg_merge(out, &retired) < 0)
        goto out;
    /* Oldest first: threads listed in the order they exited, then live ones. */
    memcpy(list, retired_list, nretired_list * sizeof(*list));
    for (i = 0; i < nretired_list; i++) {
        list[i].trace = NULL; /* the snapshot's copy owns nothing */
        if (collect_trace(retired_list[i].trace, i, &list[i], events) < 0)
            goto out;
    }
    /* The live threads are pinned, to be folded after the lock is dropped: one that
     * exits meanwhile adds itself to the retired sums this snapshot already has
     * copied, and its state stays until it is unpinned. */
    for (struct thread_state *t = live_head; t; t = t->next, i++) {
        int current = load_acquire(&t->gen) == global_gen;
        if (current) {
            t->pins++;
            at[npinned] = i;
            pinned[npinned++] = t;
        }
        listing_of(t, NULL, 1, current, &list[i]);
        if (collect_trace(t->trace, i, &list[i], events) < 0)
            goto out;
    }
    rc = 0;
out:
    pthread_mutex_unlock(&reg_lock);
    if (rc == 0 && fold_all(out, pinned, npinned, scopes) < 0)
        rc = -1;
    for (size_t k = 0; rc == 0 && k < npinned; k++)
        list[at[k]].scopes = scopes[k];
    pthread_mutex_lock(&reg_lock);
    for (size_t k = 0; k < npinned; k++) {
        struct thread_state *t = pinned[k];
        if (--t->pins == 0 && t->exited)
            retire_state(t);
    }
    if (--folding == 0)
        pthread_cond_broadcast(&fold_done);
    pthread_mutex_unlock(&reg_lock);
    free(pinned);
    free(at);
    free(scopes);
    if (rc < 0) {
        free(list);
        return -1;
    }
    *ret_list = list;
    *ret_count = i;
    return 0;
}

static void
atfork_prepare(void)
{
    trace_atfork_prepare();
    sites_lock();
    pthread_mutex_lock(&reg_lock);
}

static void
atfork_parent(void)
{
    pthread_mutex_unlock(&reg_lock);
    sites_unlock();
    trace_atfork_parent();
}

/* The child has one thread: drop every other thread's state and start clean. */
static void
atfork_child(void)
{
    struct thread_state *self = tls_thread, *t, *next;

    /* The forking thread took the locks in atfork_prepare(): it still owns them. */
    pthread_mutex_unlock(&reg_lock);
    /* Snapshots folding in other threads of the parent are not in the child; the
     * states they pinned (exited ones too) are left behind. */
    folding = 0;
    if (self)
        self->pins = 0;
    sites_atfork_child();
    trace_atfork_child(); /* no timeline in the child, and not the parent's file */
    for (t = live_head; t; t = next) {
        next = t->next;
        if (t != self)
            free_state(t);
    }
    /* No walk runs in the child: one in another thread of the parent is not here. */
    walkers = 0;
    limbo_drain();
    live_head = self;
    if (self) {
        self->next = self->prev = NULL;
        self->tid = (uint64_t)syscall(SYS_gettid);
    }
    walkers = 0; /* walks of threads that are not here */
    global_gen = (global_gen + 1) & FRAME_GEN_MASK;
    thread_hot_refresh();
    agg_free(&retired);
    free_retired_traces();
    nretired_list = 0;
    trace_reset();
}

void
thread_init(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    thread_hot_refresh();
}

/* Lock-free, so that a forked child can call it: a refresh that read its inputs
 * before another's change fails its exchange and reads them again. */
void
thread_hot_refresh(void)
{
    uint32_t old = __atomic_load_n(&hot_key, __ATOMIC_SEQ_CST), key;

    do {
        key = __atomic_load_n(&global_gen, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&trace_on, __ATOMIC_SEQ_CST) || !load_relaxed(&clock_tsc) ||
            !__atomic_load_n(&probe__recording, __ATOMIC_SEQ_CST))
            key |= HOT_SLOW;
    } while (!__atomic_compare_exchange_n(&hot_key, &old, key, 0, __ATOMIC_SEQ_CST,
                                          __ATOMIC_SEQ_CST));
}

/* ---- the sampler's views -------------------------------------------------------- */

void
thread_for_each_live(void (*fn)(void *arg, uint64_t tid, pthread_t self), void *arg)
{
    pthread_mutex_lock(&reg_lock);
    for (struct thread_state *t = live_head; t; t = t->next)
        fn(arg, t->tid, t->self);
    pthread_mutex_unlock(&reg_lock);
}

void
thread_ensure(void)
{
    if (!tls_thread)
        (void)thread_create();
}

PROBE_SIGSAFE unsigned
thread_scope_ids(uint32_t *out, unsigned max)
{
    const struct thread_state *t = tls_thread;
    unsigned n = 0, depth;

    if (!t)
        return 0;
    depth = load_relaxed(&t->depth);
    if (depth > THREAD_MAX_DEPTH)
        depth = THREAD_MAX_DEPTH;
    for (unsigned i = depth; i-- > 0 && n < max;) {
        uint32_t id = t->stack[i + 1].id;
        if (id)
            out[n++] = id;
    }
    return n;
}

/* Another thread's open scopes, read while it runs: a deliberate race, like the fault
 * dumper's walk (a frame being pushed may show its predecessor's id; ids are whole
 * words, never torn). The registry lock keeps the state from being freed. */
__attribute__((noinline, no_sanitize_thread)) unsigned
thread_scope_ids_of(uint64_t tid, uint32_t *out, unsigned max)
{
    unsigned n = 0;

    pthread_mutex_lock(&reg_lock);
    for (const struct thread_state *t = live_head; t; t = t->next) {
        if (t->tid != tid)
            continue;
        unsigned depth = t->depth;
        if (depth > THREAD_MAX_DEPTH)
            depth = THREAD_MAX_DEPTH;
        for (unsigned i = depth; i-- > 0 && n < max;) {
            uint32_t id = t->stack[i + 1].id;
            if (id)
                out[n++] = id;
        }
        break;
    }
    pthread_mutex_unlock(&reg_lock);
    return n;
}

/* ---- walking stacks from a signal handler --------------------------------------- */

/* The thread's stack, read while it runs: a deliberate race, as in
 * thread_scope_ids_of() (hence no TSan here; thread_walk's list and the reclamation
 * stay checked). */
static PROBE_SIGSAFE __attribute__((no_sanitize_thread)) void
walk_one(const struct thread_state *t, int current, walk_fn fn, void *arg,
         struct walk_frame *frames)
{
    struct walk_thread wt = {0};
    unsigned depth = load_relaxed(&t->depth);
    unsigned n = 0;

    if (depth > THREAD_MAX_DEPTH)
        depth = THREAD_MAX_DEPTH;
    for (unsigned i = depth; i-- > 0;) {
        uint32_t id = t->stack[i + 1].id;
        struct walk_frame *f = &frames[n];
        if (!id)
            continue; /* an unrecorded PROBE_BEGIN */
        if (sites_describe_unlocked(id, f) < 0)
            *f = (struct walk_frame){0};
        n++;
    }
    wt.tid = t->tid;
    wt.name = t->name;
    wt.current = current;
    wt.depth = n;
    wt.overflow = t->overflow_open;
    wt.trace = load_acquire(&t->trace);
    fn(arg, &wt, frames, n);
}

PROBE_SIGSAFE unsigned
thread_walk(walk_fn fn, void *arg)
{
    struct walk_frame frames[THREAD_MAX_DEPTH];
    const struct thread_state *self = tls_thread;
    unsigned walked = 1;

    /* Before live_head is loaded: see "reclaiming" above. */
    __atomic_add_fetch(&walkers, 1, __ATOMIC_SEQ_CST);

    if (self) {
        walk_one(self, 1, fn, arg, frames);
    } else {
        struct walk_thread wt = {.tid = (uint64_t)syscall(SYS_gettid), .name = "", .current = 1};
        fn(arg, &wt, frames, 0);
    }
    /* Bounded: WALK_MAX_THREADS (and the limbo's bound with it). What was unlinked
     * meanwhile is still there, and its next pointer leads on along the list. */
    const struct thread_state *t = load_acquire(&live_head);
    for (unsigned k = 0; t && k < WALK_MAX_THREADS; k++, t = load_acquire(&t->next)) {
        if (t == self)
            continue;
        walk_one(t, 0, fn, arg, frames);
        walked++;
    }
    __atomic_sub_fetch(&walkers, 1, __ATOMIC_RELEASE);
    return walked;
}
