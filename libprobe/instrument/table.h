/* Internal: the table from a function's address to the site that times it. Readers
 * (every instrumented call) take no lock: a slot's site is written before its key is
 * published with release, and a published slot never changes. Only the first call of
 * a function, in any thread, takes the table's lock to add it. */
#ifndef PROBE_INSTRUMENT_TABLE_H
#define PROBE_INSTRUMENT_TABLE_H

#include <stdint.h>

#include <probe/probe.h>

#include "attrs.h"

#define NOINSTR __attribute__((no_instrument_function))

#define TABLE_BITS 16
#define TABLE_SLOTS (1u << TABLE_BITS)
/* At most 3/4 full, so that a probe ends soon and a miss always finds a free slot;
 * later functions share one site, OVERFLOW_NAME, whose calls count them. */
#define TABLE_MAX_FUNCS (TABLE_SLOTS / 4 * 3)
#define TABLE_OVERFLOW_NAME "(instrumented functions over the limit)"

struct table_slot {
    uintptr_t fn;               /* 0: free */
    struct probe__site *site;
};

extern struct table_slot table_slots[TABLE_SLOTS] HIDDEN;

NOINSTR static inline uint32_t
table_hash(uintptr_t fn)
{
    return (uint32_t)((fn * 0x9e3779b97f4a7c15ull) >> (64 - TABLE_BITS));
}

/* The site of @fn, or NULL when no thread has called it yet. */
NOINSTR static inline struct probe__site *
table_find(uintptr_t fn)
{
    for (uint32_t i = table_hash(fn);; i = (i + 1) & (TABLE_SLOTS - 1)) {
        uintptr_t k = __atomic_load_n(&table_slots[i].fn, __ATOMIC_ACQUIRE);
        if (likely(k == fn))
            return table_slots[i].site;
        if (!k)
            return NULL;
    }
}

/* The site of @fn, created (named from the symbol tables) if no thread has made it
 * yet; the overflow site when the table is full or memory short. Never NULL. Takes
 * the loader's lock and the table's: not async-signal-safe. */
struct probe__site *table_add(uintptr_t fn) HIDDEN;

#endif
