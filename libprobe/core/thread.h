/* Per-thread recording state: the scope stack and the statistics of every site the
 * thread touched. Only the owning thread writes it; the registry lists all of them
 * so that snapshots can read them and so that a thread's data is folded into the
 * retired aggregate when it exits. */
#ifndef PROBE_CORE_THREAD_H
#define PROBE_CORE_THREAD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <probe/probe.h>

#include "aggregate.h"
#include "attrs.h"
#include "stats.h"
#include "trace.h"

#define THREAD_MAX_DEPTH 256
#define THREAD_CHUNK_SITES STATS_CHUNK_SITES
#define THREAD_MAX_CHUNKS 2048      /* THREAD_CHUNK_SITES * THREAD_MAX_CHUNKS >= SITES_MAX */
#define THREAD_NODE_CHUNK 256
#define THREAD_MAX_NODES 16384      /* call paths per thread; more are counted as dropped */
/* The node table: the root, then the paths. */
#define THREAD_NODE_CHUNKS ((THREAD_MAX_NODES + THREAD_NODE_CHUNK) / THREAD_NODE_CHUNK)
#define THREAD_NAME_MAX 32
#define THREAD_RETIRED_LISTED 256   /* exited threads listed by name; the rest counted */

/* One cache line, so that a frame is found with a shift and touches one line. */
struct frame {
    struct site_stats *st;      /* NULL: an unrecorded PROBE_BEGIN */
    struct cct_node *node;      /* parent of child frames' nodes; NULL when the
                                 * path was dropped. An unrecorded PROBE_BEGIN's
                                 * frame holds its parent's. */
    uint64_t start;
    uint64_t child;             /* ticks spent in child scopes */
    uint32_t id;
    uint32_t gen;               /* recording generation at entry (see probe_reset),
                                 * with FRAME_BEGIN and FRAME_OVERFLOW */
    uint64_t unused_[3];
};

_Static_assert(sizeof(struct frame) == 64, "a frame is one cache line");

/* Marks in frame.gen, never in a generation: opened by PROBE_BEGIN; the top frame
 * while scopes beyond THREAD_MAX_DEPTH are open; a function's (-finstrument-functions,
 * thread_state.fns); a function's not recorded (recording off). */
#define FRAME_BEGIN 0x40000000u
#define FRAME_OVERFLOW 0x20000000u
#define FRAME_FUNC 0x10000000u
#define FRAME_NOREC 0x08000000u
#define FRAME_MARKS (FRAME_BEGIN | FRAME_OVERFLOW | FRAME_FUNC | FRAME_NOREC)
#define FRAME_GEN_MASK 0x07ffffffu  /* the generations: they wrap within it */

struct thread_state {
    /* stack[0] is the root's frame, never popped (its node is the root), so that
     * every open scope has a frame below it; the open scopes are stack[1..depth].
     * First, so that a frame's address is the state's plus a shift (thread_create
     * aligns the state to a line). */
    _Alignas(64) struct frame stack[THREAD_MAX_DEPTH + 1];
    struct thread_state *next, *prev;
    uint32_t gen;               /* the generation its statistics belong to */
    uint32_t depth;
    uint32_t overflow_open;     /* scopes entered beyond THREAD_MAX_DEPTH, still open */
    /* Set while a function hook's slow path runs: a function it calls (a user's
     * instrumented allocator) is not recorded, and cannot change the stack that
     * the slow path is changing. */
    uint32_t fn_busy;
    uint64_t tid;
    pthread_t self;             /* for the sampler's stack bounds */
    char name[THREAD_NAME_MAX];
    /* Completed scopes on a dropped path (no node); the thread's scope count is
     * these and its nodes' calls, summed by the fold. */
    uint64_t scopes_unpathed;
    struct loss_acc loss;
    uint32_t nnodes;            /* published with release */
    struct trace_buf *trace;    /* the timeline; swapped under the registry lock,
                                 * stored with release (thread_walk reads it) */
    struct thread_state *limbo_next; /* exited, waiting for walks to end */
    uint32_t pins;              /* under the registry lock: snapshots folding it */
    uint32_t exited;            /* under the registry lock: unlinked, to be retired
                                 * by the last snapshot that unpins it */
    struct cct_node *root;      /* node 0 */
    uint32_t *node_hash;        /* owner only: (parent, site) -> node index, 0 = empty;
                                 * open addressing, at most half full */
    uint32_t node_hash_bits;
    struct cct_node *node_chunks[THREAD_NODE_CHUNKS];
    /* Node i's heap figures: mem_chunks[i / THREAD_NODE_CHUNK][i % THREAD_NODE_CHUNK];
     * mapped by the owner on first use (memacct.c), stored with release. */
    struct node_mem *mem_chunks[THREAD_NODE_CHUNKS];
    uint32_t chunks_end;        /* 1 + the highest chunk allocated; release */
    struct stats_chunk *chunks[THREAD_MAX_CHUNKS];
    /* fns[d]: the function whose frame stack[d] is, when it has FRAME_FUNC. */
    uintptr_t fns[THREAD_MAX_DEPTH + 1];
};

/* A thread listed in a snapshot. */
struct thread_listing {
    uint64_t tid;
    char name[THREAD_NAME_MAX];
    int live;
    uint64_t scopes;
    uint64_t events_dropped;
    struct trace_buf *trace;    /* exited threads' rings, kept for reports (owned) */
};

void thread_init(void);
/* Forget everything recorded (probe_reset). */
void thread_reset_all(void);
/* The retired aggregate merged with every live thread, and the thread listing. The
 * registry lock is held only to list the threads (and pin their states); they are
 * folded without it, so threads start and exit meanwhile. Returns 0, or -1 when out
 * of memory. */
int thread_collect(struct aggregate *out, struct thread_listing **ret_list,
                   size_t *ret_count, struct raw_events *events);
/* States and timelines retired while a walk ran, not freed yet (for tests). */
size_t thread_limbo_count(void);
/* Free the exited thread's timeline @b (the stream writer drained it) once no walk
 * that may have read it is running. Takes the registry lock. */
void thread_retire_trace(struct trace_buf *b);
/* For tests: the next this many allocations of histogram segments and usage records
 * fail, as if memory were short. */
extern unsigned thread_fail_allocs;
/* Bytes of per-thread statistics allocated now, all threads (for tests, benches). */
size_t thread_stats_bytes(void);
/* For tests: one call of @site lasting @ticks clock ticks on the calling thread,
 * through the scope's own entry and exit. */
void thread_record_ticks(struct probe__site *site, uint64_t ticks);
/* Timeline support for trace.c. */
void thread_swap_trace(struct thread_state *t, struct trace_buf *b);
void thread_trace_forget(void);
void thread_emit_instant(const char *interned);
int thread_trace_drain(int final, double npt, struct raw_events *out,
                       struct trace_thread_name **names, size_t *nnames,
                       uint64_t *ret_dropped);
static inline uint64_t
thread_tid(const struct thread_state *t)
{
    return t->tid;
}
static inline struct trace_buf *
thread_trace(const struct thread_state *t)
{
    return t->trace;
}
int thread_set_name(const char *name);
/* A thread's name as reports show it: @set (its probe_thread_name()) if not empty,
 * else its /proc comm, else "thread TID". Async-signal-safe. */
PROBE_SIGSAFE void thread_display_name(uint64_t tid, const char *set,
                                       char out[THREAD_NAME_MAX]);
/* The calling thread's state (thread.c), or NULL before its first scope. */
extern __thread struct thread_state *tls_thread __attribute__((tls_model("initial-exec")));
/* The calling thread's innermost open scope's node, or NULL (none, or dropped): for
 * the allocator's per-scope bytes (memacct.h), inline in it. */
static inline struct cct_node *
thread_current_node(struct thread_state **ret_t)
{
    struct thread_state *t = tls_thread;

    if (!t || !t->depth || t->overflow_open || t->depth > THREAD_MAX_DEPTH)
        return NULL;
    *ret_t = t;
    return t->stack[t->depth].node;
}
/* The -finstrument-functions hooks' entry and exit (libprobe-instrument), a scope
 * each: @site times function @fn (NULL: not recorded, the hooks could not make it
 * one). The exit pairs with the innermost entry of @fn still open; entries above it
 * (a longjmp) are closed as unbalanced. */
PROBE_EXPORT void probe__func_enter(struct probe__site *site, void *fn);
PROBE_EXPORT void probe__func_exit(void *fn);
/* Add usage measured around a call of @site to the calling thread's statistics. */
void thread_add_usage(struct probe__site *site, const struct usage_stats *d);

#endif
