/* The seams between the core and the sampler (libprobe/sampler/). The core knows
 * nothing of signals or timers: it calls hooks the sampler installs at load time,
 * and offers the sampler a few read-only views of its thread registry. */
#ifndef PROBE_CORE_SAMPLES_H
#define PROBE_CORE_SAMPLES_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <probe/report.h>

#include "attrs.h"
#include "walk.h"

/* Called by a thread right after it registers with libprobe (its first use), and by
 * an exiting thread before its state is unlinked; never under the registry lock. */
extern void (*thread_start_hook)(void) HIDDEN;
extern void (*thread_exit_hook)(void) HIDDEN;

/* Call @fn for every live thread, under the registry lock: @fn must not take locks
 * that are held while calling into the core. */
void thread_for_each_live(void (*fn)(void *arg, uint64_t tid, pthread_t self), void *arg);

/* Register the calling thread if it is not yet (runs thread_start_hook). */
void thread_ensure(void);

/* The site ids of the calling thread's open scopes, innermost first, at most @max.
 * Returns how many were copied. */
PROBE_SIGSAFE unsigned thread_scope_ids(uint32_t *out, unsigned max);

/* The same for the live thread @tid, read from another thread (the wall-clock
 * sampler): best effort while @tid pushes and pops. Not for signal handlers. */
unsigned thread_scope_ids_of(uint64_t tid, uint32_t *out, unsigned max);

/* The samples a snapshot holds, built by the sampler; freed with @free. The frame
 * and mapping tables are what the samples' frame_ids (and the frames' mapping) index:
 * with them a formatter needs nothing of the live process. */
struct sample_set {
    probe_sample_info *v;
    size_t n;
    probe_frame_info *frames;
    size_t nframes;
    probe_mapping_info *mappings;
    size_t nmappings;
    probe_sampler_info info;
    void (*free)(struct sample_set *);
};

/* Set by the sampler: aggregate everything sampled so far (NULL when nothing was,
 * or out of memory). */
extern struct sample_set *(*sampler_collect_hook)(void) HIDDEN;

/* Set by the sampler: forget everything sampled so far (probe_reset). */
extern void (*sampler_reset_hook)(void) HIDDEN;

/* For the fleet module's windows (delta profiles): a snapshot's samples, to subtract
 * an earlier snapshot's from (NULL when it has none), and its elapsed time, to set to
 * the window's. */
struct sample_set *snapshot_sample_set(probe_snapshot *snap);
void snapshot_set_elapsed(probe_snapshot *snap, uint64_t ns);

#endif
