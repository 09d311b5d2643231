/* Atomic access helpers. The owning thread is the only writer of its statistics;
 * readers (snapshots) use these loads so that every count is read whole. On x86-64
 * all of them compile to plain moves. */
#ifndef PROBE_CORE_ATOMICS_H
#define PROBE_CORE_ATOMICS_H

#include <stdint.h>

#define load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Single-writer add: a load and a store, no locked instruction. */
#define owner_add(p, v) store_relaxed((p), *(p) + (v))

/* The same for the scope's hot counters (uint64_t), and with release (what the owner
 * stored before is visible to a reader that loads this with acquire). On x86-64 one
 * add to memory, where the C form is a load, an add and a store: the add is not
 * atomic as a read-modify-write, which one writer does not need, and an aligned
 * 8-byte store is seen whole by readers; x86 orders stores, and the asm statements
 * are volatile, so the compiler keeps them in order too. Being one instruction, it
 * also keeps the add of a signal handler's scope on the same path, which can run
 * between a load and a store. The sanitizers get an atomic add, which they can see
 * and which is one instruction too; elsewhere the C form. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define ATOMICS_SANITIZED 1
#elif defined(__x86_64__)
#define ATOMICS_X86_ADD 1
#endif

static inline __attribute__((always_inline)) void
owner_add64(uint64_t *p, uint64_t v)
{
#if defined(ATOMICS_X86_ADD)
    __asm__ volatile("addq %1, %0" : "+m"(*p) : "er"(v));
#elif defined(ATOMICS_SANITIZED)
    __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
#else
    store_relaxed(p, *p + v);
#endif
}

static inline __attribute__((always_inline)) void
owner_add64_release(uint64_t *p, uint64_t v)
{
#if defined(ATOMICS_X86_ADD)
    __asm__ volatile("addq %1, %0" : "+m"(*p) : "er"(v) : "memory");
#elif defined(ATOMICS_SANITIZED)
    __atomic_fetch_add(p, v, __ATOMIC_RELEASE);
#else
    store_release(p, *p + v);
#endif
}

#include "attrs.h" /* likely(), unlikely() */

#endif
