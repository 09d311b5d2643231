/* The seam between the core and the heap profiler (libprobe/mem/heap.c): what a
 * report snapshot carries of the sampled heap, for the formatters (chrome's counter
 * track, tree's and json's top allocation sites). Plain data, names already
 * resolved, so that formatters need nothing from the memory module. */
#ifndef PROBE_CORE_HEAPSUM_H
#define PROBE_CORE_HEAPSUM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "attrs.h"

#define HEAPSUM_SITES 20     /* top allocation sites carried */
#define HEAPSUM_FRAMES 3     /* frames of each: the allocating function, two callers */
#define HEAPSUM_NAME 128     /* longest frame name kept */

struct heapsum_site {
    char frames[HEAPSUM_FRAMES][HEAPSUM_NAME];
    unsigned nframes;
    double bytes, blocks;    /* estimated, allocated over the run */
};

/* The estimated bytes in use at a time, since the library loaded (the timeline's
 * base, probe_event_info.ts_ns). */
struct heapsum_point {
    uint64_t ts_ns;
    double inuse;
};

struct heapsum {
    uint64_t mean, samples;
    double alloc_space, alloc_objects, inuse_space, peak_space;
    size_t nsites;           /* largest allocated bytes first */
    struct heapsum_site *sites;
    size_t npoints;          /* in time order */
    struct heapsum_point *points;
};

/* Set by the heap profiler when it is on; a snapshot takes what it returns (NULL
 * when out of memory). */
extern struct heapsum *(*heap_collect_hook)(void) HIDDEN;

static inline void
heapsum_free(struct heapsum *h)
{
    if (h) {
        free(h->sites);
        free(h->points);
        free(h);
    }
}

#endif
