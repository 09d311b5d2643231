/* Tracking: the public calls and the macros' entry points. The hot path is a tag
 * id (cached per call site), one pointer-table compare-and-swap and relaxed atomic
 * adds on the tag's counters; no lock, no allocation, no system call. */
#include <pthread.h>
#include <stdint.h>

#include <probe/mem.h>

#include "msnap.h"
#include "scope.h"
#include "table.h"
#include "tags.h"

static inline void
add(uint64_t *c, uint64_t v)
{
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static void
peak_raise(struct mem_tag *t, int64_t live)
{
    uint64_t peak = __atomic_load_n(&t->peak_bytes, __ATOMIC_RELAXED);

    while (live > 0 && (uint64_t)live > peak &&
           !__atomic_compare_exchange_n(&t->peak_bytes, &peak, (uint64_t)live, 1,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static int
track_alloc(unsigned id, const void *ptr, size_t size)
{
    struct mem_tag *t = mem_tag_get(id);
    int rc;

    if (unlikely(!t))
        return PROBE_ENOSPC;
    if (unlikely((rc = table_ensure()) < 0))
        return rc;
    if (unlikely(table_insert((uintptr_t)ptr, id, size) != TABLE_OK))
        return PROBE_ENOSPC;
    add(&t->allocs, 1);
    add(&t->alloc_bytes, size);
    int64_t live = __atomic_add_fetch(&t->live_bytes, (int64_t)size, __ATOMIC_RELAXED);
    if (unlikely((uint64_t)live > __atomic_load_n(&t->peak_bytes, __ATOMIC_RELAXED)))
        peak_raise(t, live);
    return 0;
}

static int
track_free(unsigned id, const void *ptr)
{
    unsigned owner = 0;
    uint64_t size = 0;
    struct mem_tag *t;

    switch (table_remove((uintptr_t)ptr, &owner, &size)) {
    case TABLE_OK:
        t = mem_tag_get(owner);
        add(&t->frees, 1);
        __atomic_sub_fetch(&t->live_bytes, (int64_t)size, __ATOMIC_RELAXED);
        return 0;
    case TABLE_FREED:
        add(&mem_tag_get(owner)->double_frees, 1);
        return PROBE_EALREADY;
    default:
        t = mem_tag_get(id);
        if (!t)
            return PROBE_ENOSPC;
        add(&t->untracked_frees, 1);
        return PROBE_ENOENT;
    }
}

int
mem_track_id(unsigned id, uintptr_t key, size_t size)
{
    return track_alloc(id, (const void *)key, size);
}

int
mem_untrack_key(uintptr_t key)
{
    unsigned owner = 0;
    uint64_t size = 0;

    if (table_remove(key, &owner, &size) != TABLE_OK)
        return 0;
    struct mem_tag *t = mem_tag_get(owner);
    add(&t->frees, 1);
    __atomic_sub_fetch(&t->live_bytes, (int64_t)size, __ATOMIC_RELAXED);
    return 1;
}

static int
check_alloc(const char *tag, const void *ptr, size_t size)
{
    if (!tag || (uint64_t)size > TABLE_MAX_SIZE)
        return PROBE_EINVAL;
    return ptr ? 1 : 0;
}

PROBE_EXPORT int
probe__mem_alloc(unsigned *cache, const char *tag, const void *ptr, size_t size)
{
    int rc = check_alloc(tag, ptr, size);

    return rc <= 0 ? rc : track_alloc(mem_tag_cached(cache, tag), ptr, size);
}

PROBE_EXPORT int
probe__mem_free(unsigned *cache, const char *tag, const void *ptr)
{
    if (!tag)
        return PROBE_EINVAL;
    if (!ptr)
        return 0;
    return track_free(mem_tag_cached(cache, tag), ptr);
}

PROBE_EXPORT int
probe_mem_track_alloc(const char *tag, const void *ptr, size_t size)
{
    int rc = check_alloc(tag, ptr, size);

    return rc <= 0 ? rc : track_alloc(mem_tag_intern(tag), ptr, size);
}

PROBE_EXPORT int
probe_mem_track_free(const char *tag, const void *ptr)
{
    if (!tag)
        return PROBE_EINVAL;
    if (!ptr)
        return 0;
    return track_free(mem_tag_intern(tag), ptr);
}

/* fork(): the child keeps the parent's table and counters, since it holds a copy of
 * every object the parent tracked and may free them (docs/memory.md). Entries other
 * threads were changing are lost; the locks are held across fork so that the child
 * gets them free. */
static void
fork_prepare(void)
{
    mem_tags_lock();
}

static void
fork_parent(void)
{
    mem_tags_unlock();
}

static void
fork_child(void)
{
    mem_tags_unlock();
    table_after_fork();
}

__attribute__((constructor)) static void
track_init(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}
