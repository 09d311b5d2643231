/* PROBE_MEM_TAG: a scope whose allocations, made by any code on its thread while it
 * is open, count for a tag (docs/memory.md "Tag scopes"). Entering and leaving set a
 * thread-local tag id; the malloc interposer reads it after its heap_on test, so a
 * thread with no tag scope open pays one thread-local load per allocation. */
#include <stdint.h>

#include <probe/mem.h>

#include "heap.h"
#include "scope.h"
#include "tags.h"

__thread unsigned mem_scope_tag __attribute__((tls_model("initial-exec")));

PROBE_EXPORT unsigned
probe__mem_tag_enter(unsigned *cache, const char *tag)
{
    unsigned prev = mem_scope_tag;

    /* An unknown tag (the table full) leaves the allocations untagged: 0. */
    mem_scope_tag = tag ? mem_tag_cached(cache, tag) : 0;
    return prev;
}

PROBE_EXPORT void
probe__mem_tag_leave(unsigned *prev)
{
    mem_scope_tag = *prev;
}

void
mem_scope_alloc(void *p, size_t size)
{
    /* Counted in the filter first: a free racing on another thread must find it. */
    uint64_t *slot = &heap_filter[heap_filter_slot(p)];

    __atomic_add_fetch(slot, HEAP_FILTER_TAGGED, __ATOMIC_RELAXED);
    if (mem_track_id(mem_scope_tag, (uintptr_t)p | 1, size) < 0)
        __atomic_sub_fetch(slot, HEAP_FILTER_TAGGED, __ATOMIC_RELAXED);
}

void
mem_scope_free(void *p)
{
    if (mem_untrack_key((uintptr_t)p | 1))
        __atomic_sub_fetch(&heap_filter[heap_filter_slot(p)], HEAP_FILTER_TAGGED,
                           __ATOMIC_RELAXED);
}
