/* Internal: the layout of a snapshot, shared by the core that takes one and the
 * loader and merger (format/load.c, format/merge.c) that build one from saved
 * reports. Formatters use the public accessors, and snapshot_site_hist(). */
#ifndef PROBE_CORE_SNAPSHOT_H
#define PROBE_CORE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include <probe/report.h>

#include "attrs.h"

/* One non-empty bucket of a site's duration histogram (stats.h: log-linear, in
 * clock ticks); saved in reports so merged percentiles stay true. */
struct snap_bucket {
    uint32_t bucket;
    uint64_t count;
};

/* Set by preload/children.c in the first process of PROBE_CHILDREN=follow: fills a
 * malloc'd list of the descendants' report files, as probe_snapshot.children. */
extern int (*snapshot_children_hook)(char **ret_buf, size_t *ret_len);

struct probe_snapshot {
    probe_site_info *sites;
    size_t nsites;
    probe_edge_info *edges;
    size_t nedges;
    probe_node_info *nodes;
    size_t nnodes;
    probe_event_info *events;
    size_t nevents;
    probe_thread_info *threads;
    struct thread_listing *listing; /* owns the thread names (taken snapshots) */
    size_t nthreads;
    probe_loss_info losses;
    probe_clock_info clock;
    probe_rusage rusage;
    char *strings;                  /* every site string, back to back */
    struct sample_set *samples;     /* NULL when the sampler never ran */
    /* Site i's histogram is buckets[hist_at[i] .. hist_at[i + 1]), by bucket. */
    struct snap_bucket *buckets;
    size_t *hist_at;                /* nsites + 1 entries; NULL: no histograms */
    uint64_t pid;                   /* the process it was taken in; 0 if unknown */
    /* The program's argv, each argument NUL-terminated, back to back (as in
     * /proc/self/cmdline, at most SNAPSHOT_COMMAND_MAX bytes); NULL if unknown. */
    char *command;
    size_t command_len;             /* bytes of command, the last NUL included */
    /* probe run --follow-fork (PROBE_CHILDREN=follow), in the first process: the
     * descendants' report files written so far, NUL-terminated back to back; NULL
     * when none or not following. */
    char *children;
    size_t children_len;
    char *extra;                    /* loaded snapshots: more owned strings */
    void *mem;                      /* probe_mem_snapshot; NULL when nothing tracked */
    void (*mem_free)(void *);
    struct heapsum *heap;           /* the sampled heap (core/heapsum.h); or NULL */
    /* Set by probe_snapshot_merge() of several reports (and kept by a report saved
     * from one), for the formatters to say what a merge could not keep exactly:
     * the heap's and the tags' peaks (not known: dropped), and the heap's top sites
     * (each report carries only its own top HEAPSUM_SITES: summed over those). */
    int peaks_unknown;
    int heap_sites_partial;
};

/* The most of /proc/self/cmdline a snapshot keeps: whole arguments only. */
#define SNAPSHOT_COMMAND_MAX 4096

/* Site @i's histogram: sets *@ret and returns the number of buckets (0 if none). */
size_t snapshot_site_hist(const probe_snapshot *snap, size_t i,
                          const struct snap_bucket **ret) HIDDEN;

/* A percentile of a histogram, in ns, exactly as probe_snapshot_take() computes it:
 * the bucket's middle tick, clamped to [min_ns, max_ns]. */
uint64_t snapshot_percentile_ns(const struct snap_bucket *b, size_t nb, uint64_t calls,
                                double q, double ns_per_tick, uint64_t min_ns,
                                uint64_t max_ns) HIDDEN;

#endif
