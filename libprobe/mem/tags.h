/* Internal: the tag registry and each tag's counters (tags.c). */
#ifndef PROBE_MEM_TAGS_H
#define PROBE_MEM_TAGS_H

#include <stddef.h>
#include <stdint.h>

#include <probe/mem.h>

#include "attrs.h"

/* One tag. The counters are relaxed atomics on the tag's own cache lines: threads
 * tracking different tags never share a line (docs/memory.md has the measurements). */
struct mem_tag {
    char name[PROBE_MEM_TAG_MAX_LEN + 1];
    uint64_t allocs;          /* objects tracked */
    uint64_t alloc_bytes;     /* bytes tracked */
    uint64_t frees;           /* tracked objects freed */
    int64_t live_bytes;       /* alloc_bytes minus the bytes freed */
    uint64_t peak_bytes;      /* the largest live_bytes seen */
    uint64_t untracked_frees; /* frees naming this tag of pointers not tracked */
    uint64_t double_frees;    /* frees of this tag's pointers already freed */
} __attribute__((aligned(64)));

/* Ids run from 1 to mem_tag_count(); 0 is no tag. */
struct mem_tag *mem_tag_get(unsigned id);
unsigned mem_tag_count(void);

/* The id of @name, registering it on first use; 0 when the table is full (the call
 * is then counted in mem_tags_dropped). */
unsigned mem_tag_intern(const char *name);

/* The id a macro site cached in @cache, or looked up and cached now. */
static inline unsigned
mem_tag_cached(unsigned *cache, const char *name)
{
    unsigned id = __atomic_load_n(cache, __ATOMIC_RELAXED);

    if (likely(id))
        return id;
    id = mem_tag_intern(name);
    __atomic_store_n(cache, id, __ATOMIC_RELAXED);
    return id;
}

extern uint64_t mem_tags_dropped HIDDEN;

/* Take and release the registry's lock (snapshots, fork). */
void mem_tags_lock(void);
void mem_tags_unlock(void);

#endif
