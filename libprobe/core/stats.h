/* Per-site statistics as one thread records them, and the log-linear histogram of
 * call durations. Only the owning thread writes a site_stats; snapshots read it with
 * atomic loads (see atomics.h). All times are clock ticks. */
#ifndef PROBE_CORE_STATS_H
#define PROBE_CORE_STATS_H

#include <stdint.h>

#define STATS_HIST_SUB 4        /* buckets per power of two: 12.5% resolution */
#define STATS_HIST_BUCKETS 192  /* up to 2^49 ticks; longer calls land in the last */

/* The bucket of @ticks on the histogram's scale carried on past its last bucket (up
 * to 251 for 2^64 - 1): the scope's exit counts with it, and the group a count
 * moves to clamps it (stats_hist_bucket). */
static inline unsigned
stats_hist_bucket_any(uint64_t ticks)
{
    if (ticks < STATS_HIST_SUB)
        return (unsigned)ticks;
    /* 63 ^ clz is the index of the top bit: one bsr on x86-64. */
    unsigned msb = 63u ^ (unsigned)__builtin_clzll(ticks);
    return msb * STATS_HIST_SUB + (unsigned)((ticks >> (msb - 2u)) & 3u) - STATS_HIST_SUB;
}

static inline unsigned
stats_hist_bucket_clamp(unsigned b)
{
    return b < STATS_HIST_BUCKETS ? b : STATS_HIST_BUCKETS - 1u;
}

static inline unsigned
stats_hist_bucket(uint64_t ticks)
{
    return stats_hist_bucket_clamp(stats_hist_bucket_any(ticks));
}

/* A node of the thread's calling-context tree: one per distinct path of scopes
 * from the thread's top level. Node 0 is the root (no site). parent, site and idx
 * are written once, before the node is published. The owner finds a child through
 * its site's cache (site_stats.node) or its (parent, site) hash, never by walking
 * siblings. */
struct cct_node {
    uint32_t parent;
    uint32_t site;
    uint32_t idx;           /* its own index in the thread's table */
    /* Owner only: the child last found under this node, and its site. With the
     * site's own cache (site_stats.node) it makes recursion and a site called from
     * several places one compare too. */
    uint32_t kid_site;
    struct cct_node *kid;
    uint64_t calls;
    uint64_t total;         /* inclusive ticks of every call on this path */
    /* Ticks outside child scopes: the sum, modulo 2^64, of each call's duration
     * minus its children's, so a call whose children read a later clock than its
     * own end (a TSC that is not monotonic across CPUs) costs no branch; a reader
     * clamps the sum into [0, total]. Written after total. */
    uint64_t self;
    /* Written once, before the node is published: an ancestor is a node of the same
     * site, so every call on this path is nested in another call of its site (not
     * primitive, in cProfile's words). A path's calls are primitive or not by its
     * shape alone, so the scope's exit keeps no count of open frames per site. */
    uint32_t nested;
    uint32_t unused_;
    /* The path's calls in the two histogram buckets it was last seen in, not yet
     * added to the site's groups (stats_hot_*): the exit adds to this line, which
     * it writes anyway, instead of to a group's, a line more per site. A call in
     * another bucket moves the counts into the groups first. Written by the owner
     * only, and never while a signal handler's scope could be on the same path (the
     * exit lowers the depth last); a snapshot adds it to the site's histogram
     * (fold_nodes). */
    uint64_t hot;
};

_Static_assert(sizeof(struct cct_node) == 64, "a node is one cache line");

/* Heap profiling (memacct.h): allocations made while a path was the open scope,
 * exactly, by the owner with relaxed stores. Kept beside the nodes, in a table of
 * their own mapped on the first allocation counted, so that a node stays one cache
 * line for the scopes' hot path and programs without the heap profiler pay nothing. */
struct node_mem {
    uint64_t allocs, bytes, freed;
};

/* Resource usage spent inside PROBE_RUSAGE_SCOPE calls (rusage/scope.c measures it). */
struct usage_stats {
    uint64_t calls;         /* calls whose usage was read */
    uint64_t user_ns, system_ns;
    uint64_t minor_faults, major_faults;
    uint64_t voluntary_switches, involuntary_switches;
};

/* The histogram is stored by groups of 8 buckets (two powers of two, one cache line),
 * each taken from its chunk's pool the first time a call lands in it: a site whose
 * calls fall in one group costs 128 + 64 bytes, not 1,656. */
#define STATS_HIST_GROUP 8
#define STATS_HIST_GROUPS (STATS_HIST_BUCKETS / STATS_HIST_GROUP)
#define STATS_CHUNK_SITES 32
/* The first groups of a chunk's pool are in the chunk itself (one per site on
 * average, so the common case needs no pointer to load); the rest in segments. */
#define STATS_INLINE_GROUPS STATS_CHUNK_SITES
#define STATS_SEG_GROUPS 16     /* groups per pool segment (1 KiB) */
#define STATS_SEGS ((STATS_CHUNK_SITES * STATS_HIST_GROUPS - STATS_INLINE_GROUPS) / \
                    STATS_SEG_GROUPS)

struct stats_group {
    uint64_t n[STATS_HIST_GROUP];
} __attribute__((aligned(64)));

/* A scope's calls, prim_calls, total and self are kept by its call-tree nodes (the
 * site's are their sums, made at snapshot time): the scope's exit updates one of the
 * two. The site's own fields count lines, counters, and scope calls on a dropped
 * path (no node). */
struct site_stats {
    /* The first cache line holds all a scope's entry and exit touch here, beside
     * the path's node; and, for a call shorter than 2^33 ticks (histogram groups
     * 0-15), what a call in another bucket than the path's last reads. */
    /* Owner only: the node this site last got under node_parent. Zeroed memory
     * maps a dropped parent (NULL) to a dropped child (NULL), which is right. */
    struct cct_node *node_parent, *node;
    uint64_t min;           /* UINT64_MAX until a call (stats_site_init) */
    uint64_t max;
    /* Group g of the histogram: 0 while no call was added to it, else where it is
     * (stats_hist_ref). Stored with release once the group is taken (zeroed). */
    uint16_t hist[STATS_HIST_GROUPS];
    /* Bit g set once hist[g] is (release, after it): a snapshot reads the groups in
     * use without scanning all of hist[]. */
    uint32_t groups;
    uint64_t calls;         /* line hits; counter updates; scope calls without a node */
    uint64_t prim_calls;    /* calls not nested in the same site */
    uint64_t total;         /* inclusive ticks of primitive calls */
    uint64_t self;          /* as cct_node.self (written after total) */
    int64_t value;          /* counters: sum of deltas */
};

_Static_assert(__builtin_offsetof(struct site_stats, hist) + 16 * sizeof(uint16_t) <= 64,
               "a scope's hot fields and histogram groups 0-15 share the first line");

/* A site with no call yet: min above any duration, the rest zero. */
static inline void
stats_site_init(struct site_stats *st)
{
    __builtin_memset(st, 0, sizeof(*st));
    st->min = UINT64_MAX;
}

/* THREAD_CHUNK_SITES sites of one thread, allocated together (aligned to a cache
 * line), and what they share. sites[] comes first: a site's chunk is its address
 * minus its index in it. */
struct stats_chunk {
    struct site_stats sites[STATS_CHUNK_SITES];
    struct stats_group groups[STATS_INLINE_GROUPS]; /* pool indices 1..32 */
    struct usage_stats *usage;  /* [STATS_CHUNK_SITES], on first use; release */
    uint32_t ngroups;           /* owner only: groups handed out */
    struct stats_group *segs[STATS_SEGS]; /* allocated on demand; release */
};

_Static_assert(sizeof(struct site_stats) == 128, "a site's fixed part is two lines");
_Static_assert(STATS_HIST_GROUPS <= 32, "site_stats.groups has a bit per group");
_Static_assert(__builtin_offsetof(struct stats_chunk, groups) ==
                   STATS_CHUNK_SITES * sizeof(struct site_stats),
               "the inline groups follow the sites (stats_hist_ref)");
_Static_assert(STATS_INLINE_GROUPS + STATS_SEGS * STATS_SEG_GROUPS >=
                   STATS_CHUNK_SITES * STATS_HIST_GROUPS,
               "every group of every site of a chunk has room in its pool");

/* What site_stats.hist[] holds for a group in use (0: none yet). A group in the
 * chunk itself is named by its distance from the site in cache lines, so the scope's
 * exit finds it with a shift and an add (no chunk address, no pool index); one in a
 * segment is STATS_HIST_SEG | its index among the segments' groups. */
#define STATS_HIST_SEG 0x8000u

_Static_assert(STATS_CHUNK_SITES * 128 % sizeof(struct stats_group) == 0,
               "the inline groups start on a cache line after the sites");

/* The reference of pool group @g (1-based) for site @j of its chunk. */
static inline unsigned
stats_hist_ref(unsigned j, unsigned g)
{
    if (g > STATS_INLINE_GROUPS)
        return STATS_HIST_SEG | (g - STATS_INLINE_GROUPS - 1u);
    /* sites[] is STATS_CHUNK_SITES lines of 128 bytes, then groups[] (stats.h asserts
     * the layout): never 0, at most 2 * STATS_CHUNK_SITES + STATS_INLINE_GROUPS. */
    return (STATS_CHUNK_SITES - j) * 2u + g - 1u;
}

/* cct_node.hot is kept only where a 64-bit word is read and written whole (else
 * every call adds to its group). It counts the path's calls in two buckets, so that
 * durations that straddle a bucket's bound (12.5 % apart), or that fall in two
 * places (a scope that returns early, or an empty one whose two clock reads the
 * processor overlaps now and then), count without moving. Its bits, from the
 * lowest: slot 0's bucket and slot 1's (stats_hist_bucket_any), the calls both
 * slots hold (which the exit tests for full, one bit), and each slot's calls. Zero
 * is two slots of bucket 0 with no calls, so a new node needs no setting. */
#if defined(__GCC_ATOMIC_LLONG_LOCK_FREE) && __GCC_ATOMIC_LLONG_LOCK_FREE == 2
#define STATS_HOT 1
#else
#define STATS_HOT 0
#endif
#define STATS_HOT_SLOTS 2
#define STATS_HOT_BUCKET(h, s) ((unsigned)((h) >> (8 * (s)) & 0xffu))
/* The slots' calls reaching this many move to their groups, as if their buckets had
 * been replaced: a snapshot that reads the groups before the move and the node
 * after it misses at most this many calls of the path (fold_nodes). */
#define STATS_HOT_MAX_LOG 12
#define STATS_HOT_FULL (1ull << (16 + STATS_HOT_MAX_LOG))
#define STATS_HOT_COUNT(h, s) ((h) >> (29 + 13 * (s)) & 0x1fffu)
/* A call in slot @s: one more for both slots, and for the slot. */
#define STATS_HOT_ONE(s) (1ull << 16 | 1ull << (29 + 13 * (s)))

/* cct_node.hot with buckets @k and calls @c in its slots. */
static inline uint64_t
stats_hot(const unsigned k[STATS_HOT_SLOTS], const uint64_t c[STATS_HOT_SLOTS])
{
    return k[0] | k[1] << 8 | (c[0] + c[1]) << 16 | c[0] << 29 | c[1] << 42;
}

/* The calls @hot holds: counts[s] in bucket buckets[s]. */
static inline void
stats_hot_pending(uint64_t hot, unsigned buckets[STATS_HOT_SLOTS],
                  uint64_t counts[STATS_HOT_SLOTS])
{
    for (unsigned s = 0; s < STATS_HOT_SLOTS; s++) {
        buckets[s] = stats_hist_bucket_clamp(STATS_HOT_BUCKET(hot, s));
        counts[s] = STATS_HOT_COUNT(hot, s);
    }
}

/* The group @ref refers to when it is in site @st's own chunk (not STATS_HIST_SEG):
 * @ref cache lines from the site. */
static inline struct stats_group *
stats_group_in_chunk(struct site_stats *st, unsigned ref)
{
    return (struct stats_group *)((char *)st + (size_t)ref * 64u);
}

/* The group @ref (nonzero) refers to, for site @j of chunk @c. */
static inline struct stats_group *
stats_group_of(struct stats_chunk *c, unsigned j, unsigned ref)
{
    if (__builtin_expect(!(ref & STATS_HIST_SEG), 1))
        return stats_group_in_chunk(&c->sites[j], ref);
    ref &= ~STATS_HIST_SEG;
    return &__atomic_load_n(&c->segs[ref / STATS_SEG_GROUPS], __ATOMIC_RELAXED)
                [ref % STATS_SEG_GROUPS];
}

/* The smallest value that falls in bucket @idx, and the bucket's width. */
static inline uint64_t
stats_hist_lower(unsigned idx)
{
    if (idx < STATS_HIST_SUB)
        return idx;
    unsigned msb = idx / STATS_HIST_SUB + 1u;
    return (1ull << msb) + ((uint64_t)(idx % STATS_HIST_SUB) << (msb - 2u));
}

static inline uint64_t
stats_hist_width(unsigned idx)
{
    return idx < STATS_HIST_SUB ? 1u : 1ull << (idx / STATS_HIST_SUB - 1u);
}

#endif
