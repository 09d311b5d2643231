/* The pointer table: open addressing with linear probing over a fixed array, changed
 * with compare-and-swap only, so that tracking takes no lock and a pointer may be
 * freed on another thread than the one that tracked it.
 *
 * A slot is two words. The key word is EMPTY, BUSY (a thread owns the slot for a
 * moment), DEAD (lost at fork, reusable) or the pointer. The value word, written
 * only while the key is BUSY, holds the size (48 bits), the tag id (15 bits) and a
 * freed bit. A freed entry keeps its pointer, so that a second free of it is told
 * apart from a free of a pointer never tracked, until an insert reuses the slot.
 * Keys 0 to 2 cannot be tracked (probe_mem_track_alloc() ignores NULL). */
#include "table.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <probe/common.h>

#define KEY_EMPTY ((uintptr_t)0)
#define KEY_BUSY ((uintptr_t)1)
#define KEY_DEAD ((uintptr_t)2)

#define VAL_FREED ((uint64_t)1 << 63)
#define VAL_TAG_SHIFT 48
#define VAL_TAG_MASK ((uint64_t)0x7fff)

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

/* Spins a lookup waits for a BUSY slot to settle before going on past it. */
#define BUSY_SPINS 1000

struct slot {
    uintptr_t key;
    uint64_t val;
};

static struct slot *table;
static size_t table_mask;
static pthread_mutex_t table_mutex = PTHREAD_MUTEX_INITIALIZER;
uint64_t table_full_count;
uint64_t table_fork_lost;
/* Set in a forked child: the table may hold slots the parent's other threads left
 * busy. Scanned at the child's first use, so that a child that never tracks (a
 * fork before exec) does not pay for it. */
static int scan_pending;

static size_t
slots_from_env(void)
{
    const char *s = secure_getenv("PROBE_MEM_TABLE");
    char *end;
    unsigned long long v;
    size_t n = TABLE_MIN_SLOTS;

    if (!s || !*s)
        return TABLE_DEFAULT_SLOTS;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v == 0)
        return TABLE_DEFAULT_SLOTS;
    while (n < v && n < TABLE_MAX_SLOTS)
        n <<= 1; /* a power of two at or above the request */
    return n;
}

static COLD int
table_map(void)
{
    int rc = 0;

    pthread_mutex_lock(&table_mutex);
    if (!__atomic_load_n(&table, __ATOMIC_ACQUIRE)) {
        size_t n = slots_from_env();
        /* Pages are touched as entries land on them. */
        void *p = mmap(NULL, n * sizeof(struct slot), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            rc = PROBE_ENOMEM;
        } else {
            table_mask = n - 1;
            __atomic_store_n(&table, (struct slot *)p, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&table_mutex);
    return rc;
}

static inline void fork_check(void);

int
table_ensure(void)
{
    if (likely(__atomic_load_n(&table, __ATOMIC_ACQUIRE) != NULL)) {
        fork_check();
        return 0;
    }
    return table_map();
}

size_t
table_slots(void)
{
    return __atomic_load_n(&table, __ATOMIC_ACQUIRE) ? table_mask + 1 : 0;
}

static inline size_t
hash(uintptr_t key)
{
    uint64_t h = (uint64_t)key;

    /* Allocations are aligned: mix the high bits into the low ones. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h;
}

static inline uintptr_t
key_load(struct slot *s)
{
    return __atomic_load_n(&s->key, __ATOMIC_ACQUIRE);
}

static inline int
key_claim(struct slot *s, uintptr_t seen)
{
    return __atomic_compare_exchange_n(&s->key, &seen, KEY_BUSY, 0, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static inline void
key_release(struct slot *s, uintptr_t key, uint64_t val)
{
    __atomic_store_n(&s->val, val, __ATOMIC_RELAXED);
    __atomic_store_n(&s->key, key, __ATOMIC_RELEASE);
}

static inline uintptr_t
key_settled(struct slot *s)
{
    uintptr_t k = key_load(s);

    for (int i = 0; k == KEY_BUSY && i < BUSY_SPINS; i++) {
        cpu_relax();
        k = key_load(s);
    }
    return k;
}

enum table_result
table_insert(uintptr_t key, unsigned tag, uint64_t size)
{
    struct slot *t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    uint64_t val = size | ((uint64_t)tag & VAL_TAG_MASK) << VAL_TAG_SHIFT;
    size_t h = hash(key);

    for (size_t i = 0; i < TABLE_PROBES; i++) {
        struct slot *s = &t[(h + i) & table_mask];
        uintptr_t k = key_load(s);

        while (k == KEY_EMPTY || k == KEY_DEAD ||
               (k != KEY_BUSY && (__atomic_load_n(&s->val, __ATOMIC_RELAXED) & VAL_FREED))) {
            if (!key_claim(s, k)) {
                k = key_load(s);
                continue;
            }
            /* Another thread may have revived the freed entry between our two
             * loads (its key went k, BUSY, k): check again while we own it. */
            uint64_t old = __atomic_load_n(&s->val, __ATOMIC_RELAXED);
            if (k > KEY_DEAD && !(old & VAL_FREED)) {
                key_release(s, k, old);
                break;
            }
            key_release(s, key, val);
            return TABLE_OK;
        }
    }
    __atomic_fetch_add(&table_full_count, 1, __ATOMIC_RELAXED);
    return TABLE_FULL;
}

enum table_result
table_remove(uintptr_t key, unsigned *tag, uint64_t *size)
{
    struct slot *t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    size_t h = hash(key);
    enum table_result r = TABLE_MISSING;

    if (!t)
        return TABLE_MISSING;
    fork_check();
    for (size_t i = 0; i < TABLE_PROBES; i++) {
        struct slot *s = &t[(h + i) & table_mask];
        uintptr_t k = key_settled(s);

        if (k == KEY_EMPTY)
            break;
        if (k != key)
            continue;
        if (!key_claim(s, k)) {
            i--; /* changed under us: look at this slot again */
            continue;
        }
        uint64_t val = __atomic_load_n(&s->val, __ATOMIC_RELAXED);
        *tag = (unsigned)(val >> VAL_TAG_SHIFT & VAL_TAG_MASK);
        *size = val & TABLE_MAX_SIZE;
        if (val & VAL_FREED) {
            /* A live entry for the same pointer may follow (tracked twice). */
            key_release(s, k, val);
            r = TABLE_FREED;
            continue;
        }
        key_release(s, k, val | VAL_FREED);
        return TABLE_OK;
    }
    return r;
}

void
table_after_fork(void)
{
    /* A thread of the parent may have been mapping the table. */
    pthread_mutex_init(&table_mutex, NULL);
    if (table)
        scan_pending = 1;
}

/* Busy slots left by the parent's threads become reusable; counted as lost. Every
 * table access of the child waits here first, so no child thread holds a slot. */
static COLD void
table_fork_scan(void)
{
    pthread_mutex_lock(&table_mutex);
    if (__atomic_load_n(&scan_pending, __ATOMIC_ACQUIRE)) {
        uint64_t n = 0;
        for (size_t i = 0; i <= table_mask; i++) {
            if (table[i].key == KEY_BUSY) {
                table[i].key = KEY_DEAD;
                n++;
            }
        }
        __atomic_fetch_add(&table_fork_lost, n, __ATOMIC_RELAXED);
        __atomic_store_n(&scan_pending, 0, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&table_mutex);
}

static inline void
fork_check(void)
{
    if (unlikely(__atomic_load_n(&scan_pending, __ATOMIC_ACQUIRE)))
        table_fork_scan();
}
