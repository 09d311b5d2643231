/* The malloc interposer of the heap profiler (docs/memory.md "Heap profiling").
 *
 * libprobe.so defines malloc and its relatives, so a program that preloads or links
 * it calls these, which call the next definition in the lookup order (glibc's, or
 * another allocator's), found with dlsym(RTLD_NEXT). Off (PROBE_MEM unset) each is
 * one extra call and a predictable branch. On, an allocation subtracts its size from
 * a thread-local countdown and goes to heap.c only when it reaches zero; a free
 * looks its address up in a filter of counters and goes there only when it may be
 * a sampled block. Results, errno and ENOMEM are the real allocator's.
 *
 * dlsym() itself allocates: until the real functions are known, requests are served
 * from a small static arena, whose blocks are never freed (free ignores them). */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <probe/common.h>

#include "core/memacct.h"
#include "mem/heap.h"
#include "mem/scope.h"

#define ARENA_SIZE (64u << 10)
#define ARENA_ALIGN 16

static struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
} real;

static int resolve_state; /* 0 not yet, 1 under way, 2 done */
static alignas(ARENA_ALIGN) unsigned char arena[ARENA_SIZE];
static size_t arena_used;

/* One unsigned comparison: free() asks it of every block. */
static inline int
in_arena(const void *p)
{
    return (uintptr_t)p - (uintptr_t)arena < ARENA_SIZE;
}

/* A block of the bootstrap arena, its size in the 16 bytes before it. */
static void *
arena_alloc(size_t size, size_t align)
{
    if (align < ARENA_ALIGN)
        align = ARENA_ALIGN;
    if (size > ARENA_SIZE || (align & (align - 1)))
        return NULL;
    size_t used = __atomic_load_n(&arena_used, __ATOMIC_RELAXED), start;
    do {
        start = (used + ARENA_ALIGN + align - 1) & ~(align - 1);
        if (start + size > ARENA_SIZE)
            return NULL;
    } while (!__atomic_compare_exchange_n(&arena_used, &used, start + size, 1,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    memcpy(arena + start - sizeof(size_t), &size, sizeof(size));
    return arena + start; /* static storage: already zero, as calloc needs */
}

static size_t
arena_size_of(const void *p)
{
    size_t n;

    memcpy(&n, (const unsigned char *)p - sizeof(size_t), sizeof(n));
    return n;
}

/* Through a data pointer: ISO C has no conversion from void * to a function's. */
#define RESOLVE(f)                                                                    \
    do {                                                                              \
        void *sym_ = dlsym(RTLD_NEXT, #f);                                            \
        memcpy(&real.f, &sym_, sizeof(sym_));                                         \
    } while (0)

static void
resolve(void)
{
    int expected = 0;

    if (!__atomic_compare_exchange_n(&resolve_state, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return; /* under way (dlsym's own calls land in the arena) or done */
    RESOLVE(malloc);
    RESOLVE(calloc);
    RESOLVE(realloc);
    RESOLVE(free);
    RESOLVE(posix_memalign);
    RESOLVE(aligned_alloc);
    RESOLVE(memalign);
    RESOLVE(valloc);
    RESOLVE(pvalloc);
    RESOLVE(malloc_usable_size);
    __atomic_store_n(&resolve_state, 2, __ATOMIC_RELEASE);
}

/* Whether the real functions are there; resolves them on first use. */
static inline int
ready(void)
{
    if (__builtin_expect(__atomic_load_n(&resolve_state, __ATOMIC_ACQUIRE) == 2, 1))
        return 1;
    resolve();
    return __atomic_load_n(&resolve_state, __ATOMIC_ACQUIRE) == 2 && real.malloc &&
           real.free;
}

/* Always inlined, and with the caller read on the sampled path only: malloc's own
 * return address (__builtin_return_address names the function this is inlined in)
 * then needs no register kept across the real call. */
#define CALLER ((uintptr_t)__builtin_return_address(0))
static inline __attribute__((always_inline)) void
note_alloc(void *p, size_t size)
{
    if (__builtin_expect(!__atomic_load_n(&heap_on, __ATOMIC_RELAXED), 1) || !p)
        return;
    memacct_alloc(size);
    if (__builtin_expect(mem_scope_tag != 0, 0))
        mem_scope_alloc(p, size);
    if ((heap_tls_until -= (int64_t)(size ? size : 1)) > 0)
        return;
    heap_alloc_slow(p, size, CALLER);
}

static inline void
note_free(void *p)
{
    if (__builtin_expect(!__atomic_load_n(&heap_on, __ATOMIC_RELAXED), 1))
        return;
    memacct_free(p, real.malloc_usable_size);
    uint64_t f = heap_filter_get(p);
    if (__builtin_expect(f != 0, 0)) {
        if (f & (HEAP_FILTER_TAGGED - 1))
            heap_free_slow(p);
        if (f >= HEAP_FILTER_TAGGED)
            mem_scope_free(p);
    }
}

PROBE_EXPORT void *
malloc(size_t size)
{
    if (!ready())
        return arena_alloc(size, ARENA_ALIGN);
    void *p = real.malloc(size);
    note_alloc(p, size);
    return p;
}

PROBE_EXPORT void *
calloc(size_t n, size_t size)
{
    if (!ready()) {
        if (size && n > SIZE_MAX / size)
            return NULL;
        return arena_alloc(n * size, ARENA_ALIGN);
    }
    void *p = real.calloc(n, size);
    if (p)
        note_alloc(p, n * size);
    return p;
}

PROBE_EXPORT void
free(void *p)
{
    if (!p || in_arena(p))
        return;
    if (!ready())
        return; /* not reached: p came from somewhere, so malloc ran */
    note_free(p);
    real.free(p);
}

/* Inlined, so that CALLER is realloc's or reallocarray's return address. */
static inline __attribute__((always_inline)) void *
realloc_at(void *p, size_t size)
{
    if (p && in_arena(p)) {
        void *q = size ? malloc(size) : NULL;
        size_t old = arena_size_of(p);
        if (q)
            memcpy(q, p, old < size ? old : size);
        return q;
    }
    if (!ready())
        return arena_alloc(size, ARENA_ALIGN);
    /* Forgotten before the block can be given to another thread; a failed realloc
     * leaves it live and unsampled, which only loses a sample. */
    if (p)
        note_free(p);
    void *q = real.realloc(p, size);
    if (q)
        note_alloc(q, size);
    return q;
}

PROBE_EXPORT void *
realloc(void *p, size_t size)
{
    return realloc_at(p, size);
}

PROBE_EXPORT void *
reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc_at(p, n * size);
}

PROBE_EXPORT int
posix_memalign(void **out, size_t align, size_t size)
{
    if (!ready()) {
        void *p = arena_alloc(size, align);
        if (!p)
            return ENOMEM;
        *out = p;
        return 0;
    }
    int rc = real.posix_memalign(out, align, size);
    if (rc == 0)
        note_alloc(*out, size);
    return rc;
}

PROBE_EXPORT void *
aligned_alloc(size_t align, size_t size)
{
    if (!ready())
        return arena_alloc(size, align);
    void *p = real.aligned_alloc(align, size);
    note_alloc(p, size);
    return p;
}

PROBE_EXPORT void *
memalign(size_t align, size_t size)
{
    if (!ready())
        return arena_alloc(size, align);
    void *p = real.memalign(align, size);
    note_alloc(p, size);
    return p;
}

PROBE_EXPORT void *
valloc(size_t size)
{
    if (!ready())
        return arena_alloc(size, 4096);
    void *p = real.valloc(size);
    note_alloc(p, size);
    return p;
}

PROBE_EXPORT void *
pvalloc(size_t size)
{
    if (!ready())
        return arena_alloc((size + 4095) & ~(size_t)4095, 4096);
    void *p = real.pvalloc(size);
    note_alloc(p, size);
    return p;
}

PROBE_EXPORT size_t
malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (in_arena(p))
        return arena_size_of(p);
    if (!ready() || !real.malloc_usable_size)
        return 0;
    return real.malloc_usable_size(p);
}
