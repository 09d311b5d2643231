/* Atomic access helpers. The owning thread is the only writer of its statistics;
 * readers (snapshots) use these loads so that every count is read whole. On x86-64
 * all of them compile to plain moves. */
#ifndef PROBE_CORE_ATOMICS_H
#define PROBE_CORE_ATOMICS_H

#define load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Single-writer add: a load and a store, no locked instruction. */
#define owner_add(p, v) store_relaxed((p), *(p) + (v))

#include "attrs.h" /* likely(), unlikely() */

#endif
