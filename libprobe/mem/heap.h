/* The sampled heap profiler behind the malloc interposer (preload/malloc.c): which
 * allocations are sampled, the table of the sampled ones still live, the profile at
 * the peak, and the temporaries. Hidden; docs/memory.md "Heap profiling". */
#ifndef PROBE_MEM_HEAP_H
#define PROBE_MEM_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "attrs.h"

#define HEAP_SAMPLE_DEFAULT (512u << 10) /* mean bytes between samples */
#define HEAP_STACK_DEPTH 48              /* frames kept per sampled stack */
#define HEAP_MAX_STACKS 8192             /* distinct stacks; more are counted as dropped */
#define HEAP_MAX_LIVE (1u << 17)         /* live sampled blocks; more are dropped */
#define HEAP_FILTER_BITS 16              /* the free path's filter: 2^16 counters */
#define HEAP_TEMP_NS 1000000ull          /* freed by its thread within 1 ms: temporary */
#define HEAP_POINTS 4096                 /* points of the in-use estimate over time */

/* Nonzero once PROBE_MEM=1 turned the profiler on (read with relaxed loads). */
extern int heap_on HIDDEN;
/* Counters by address hash of the blocks still live that a free must look up: the
 * low half counts sampled blocks, the high half (HEAP_FILTER_TAGGED each) blocks
 * tracked by a PROBE_MEM_TAG scope. A free whose counter is 0 was neither and takes
 * no lock and no table lookup: one load for both. */
extern uint64_t *heap_filter HIDDEN;
#define HEAP_FILTER_TAGGED ((uint64_t)1 << 32)

static inline unsigned
heap_filter_slot(const void *p)
{
    return (unsigned)(((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull >> (64 - HEAP_FILTER_BITS));
}

/* Nonzero when @p may be a live sampled block (low half) or a tag scope's block
 * (high half): no false negatives. Only called once heap_on is set, and heap_init
 * maps the filter before it sets heap_on. */
static inline uint64_t
heap_filter_get(const void *p)
{
    return __atomic_load_n(&heap_filter[heap_filter_slot(p)], __ATOMIC_RELAXED);
}

/* PROBE_MEM, PROBE_MEM_SAMPLE, PROBE_MEM_OUTPUT, PROBE_MEM_FORMAT; at load. */
void heap_init(void);

/* The slow path of an allocation of @size bytes at @p, called by @caller (the
 * interposer's return address): draws the thread's next sample point and records
 * @p when it is sampled. */
void heap_alloc_slow(void *p, size_t size, uintptr_t caller);
/* The thread's byte countdown to its next sample (the interposer's fast path). */
extern __thread int64_t heap_tls_until __attribute__((tls_model("initial-exec")));

/* @p, about to be freed (or reallocated), maybe a sampled block. */
void heap_free_slow(void *p);

/* Held by the reports: allocations of the calling thread are not sampled. */
void heap_guard(int on);

/* A copy of the profile for the reports. Values are estimates scaled from the
 * samples: each sampled block of size s stands for 1/p blocks and s/p bytes, with
 * p = 1 - exp(-s / mean). */
struct heap_site {
    unsigned npcs;
    uintptr_t pcs[HEAP_STACK_DEPTH]; /* return addresses, the allocating call first */
    double alloc_objects, alloc_space;
    double inuse_objects, inuse_space;
    double peak_objects, peak_space;
    double temp_objects, temp_space;
};

struct heap_profile {
    uint64_t mean;                /* sampling interval, bytes */
    unsigned nsites;
    struct heap_site *sites;      /* malloc'd */
    double alloc_space, alloc_objects, inuse_space, inuse_objects, peak_space;
    uint64_t samples, dropped_stacks, dropped_live;
    int at_exit;                  /* the report at exit: what is in use leaked */
};

/* 0, PROBE_ENODATA when the profiler is off, PROBE_ENOMEM. */
int heap_profile_copy(struct heap_profile *out);
void heap_profile_free(struct heap_profile *p);

/* heapreport.c: "text", "json" or "pprof" of @p to @fd. */
int heapreport_fd(const struct heap_profile *p, int fd, const char *format);

#endif
