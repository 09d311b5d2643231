/* Tagged tracking (<probe/mem.h>): the cost of a track + free pair, and of a free on
 * another thread than the allocation, for libprobe's design (one lock-free pointer
 * table, per-tag atomic counters) beside the alternative it was chosen over:
 * per-thread tables merged at snapshot, where each thread owns a pointer table and
 * plain counters behind its own (normally uncontended) mutex, and a free whose
 * pointer another thread tracked searches the other tables.
 *
 * Figures are thread CPU time per operation, median over rounds; docs/memory.md
 * shows a table and says why the design won. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <probe/mem.h>

#include "harness.h"

#define MAX_THREADS 32
#define WINDOW 64           /* live objects per thread in the pair loop */
#define PAIRS 200000        /* track + free pairs per thread per round */
#define CROSS 4096          /* objects each thread frees for its neighbour */
#define ROUNDS 7

/* ---- the alternative: per-thread tables --------------------------------------- */

#define PT_SLOTS (1u << 16)
#define PT_TOMB ((uintptr_t)1)

struct pt_table {
    pthread_mutex_t mutex;
    uintptr_t key[PT_SLOTS];
    uint64_t size[PT_SLOTS];
    uint64_t allocs, frees, live_bytes, peak_bytes, untracked;
} __attribute__((aligned(64)));

static struct pt_table *pt[MAX_THREADS];
static unsigned pt_threads;

static size_t
pt_hash(uintptr_t k)
{
    uint64_t h = k;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    return (size_t)(h ^ h >> 33);
}

static void
pt_alloc(struct pt_table *t, uintptr_t k, uint64_t size)
{
    pthread_mutex_lock(&t->mutex);
    for (size_t i = pt_hash(k);; i++) {
        size_t s = i & (PT_SLOTS - 1);
        if (t->key[s] == 0 || t->key[s] == PT_TOMB) {
            t->key[s] = k;
            t->size[s] = size;
            break;
        }
    }
    t->allocs++;
    t->live_bytes += size;
    if (t->live_bytes > t->peak_bytes) /* per thread only: no exact global peak */
        t->peak_bytes = t->live_bytes;
    pthread_mutex_unlock(&t->mutex);
}

static int
pt_remove(struct pt_table *t, uintptr_t k)
{
    int found = 0;

    pthread_mutex_lock(&t->mutex);
    for (size_t i = pt_hash(k);; i++) {
        size_t s = i & (PT_SLOTS - 1);
        if (t->key[s] == 0)
            break;
        if (t->key[s] == k) {
            t->key[s] = PT_TOMB;
            t->frees++;
            t->live_bytes -= t->size[s];
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&t->mutex);
    return found;
}

static void
pt_free(unsigned self, uintptr_t k)
{
    if (pt_remove(pt[self], k))
        return;
    /* Which thread tracked it is not known: look in index order, as a real
     * implementation would (the neighbour is on average half way). */
    for (unsigned i = 0; i < pt_threads; i++) {
        if (i != self && pt_remove(pt[i], k))
            return;
    }
    pt[self]->untracked++;
}

/* ---- the runs ----------------------------------------------------------------- */

enum variant { V_FLOOR, V_LIB_SHARED_TAG, V_LIB_OWN_TAG, V_PER_THREAD };
static const char *const variant_names[] = {
    "loop only (floor)", "libprobe, one tag for all threads",
    "libprobe, 8 tags (thread % 8)", "per-thread tables (alternative)",
};
/* Eight tags, each its own macro site (which caches the tag's id). */
#define BY_TAG(self, MACRO, ...)                                                       \
    switch ((self) % 8) {                                                              \
    case 0: MACRO("t0", __VA_ARGS__); break;                                           \
    case 1: MACRO("t1", __VA_ARGS__); break;                                           \
    case 2: MACRO("t2", __VA_ARGS__); break;                                           \
    case 3: MACRO("t3", __VA_ARGS__); break;                                           \
    case 4: MACRO("t4", __VA_ARGS__); break;                                           \
    case 5: MACRO("t5", __VA_ARGS__); break;                                           \
    case 6: MACRO("t6", __VA_ARGS__); break;                                           \
    default: MACRO("t7", __VA_ARGS__); break;                                          \
    }

struct run {
    enum variant v;
    unsigned self, threads;
    char *arena;            /* this thread's fake objects: distinct addresses */
    pthread_barrier_t *barrier;
    double pair_ns, cross_ns;
};

static struct run runs[MAX_THREADS];

static uint64_t
cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
track(const struct run *r, void *p, size_t size)
{
    switch (r->v) {
    case V_FLOOR: __asm__ __volatile__("" : : "r"(p) : "memory"); break;
    case V_LIB_SHARED_TAG: PROBE_TRACK_ALLOC("Shared", p, size); break;
    case V_LIB_OWN_TAG: BY_TAG(r->self, PROBE_TRACK_ALLOC, p, size); break;
    case V_PER_THREAD: pt_alloc(pt[r->self], (uintptr_t)p, size); break;
    }
}

static void
untrack(const struct run *r, void *p)
{
    switch (r->v) {
    case V_FLOOR: __asm__ __volatile__("" : : "r"(p) : "memory"); break;
    case V_LIB_SHARED_TAG: PROBE_TRACK_FREE("Shared", p); break;
    case V_LIB_OWN_TAG: BY_TAG(r->self, PROBE_TRACK_FREE, p); break;
    case V_PER_THREAD: pt_free(r->self, (uintptr_t)p); break;
    }
}

static void *
worker(void *arg)
{
    struct run *r = arg;
    char *next = runs[(r->self + 1) % r->threads].arena;
    uint64_t t0;

    pthread_barrier_wait(r->barrier);
    t0 = cpu_ns();
    for (unsigned i = 0; i < PAIRS / WINDOW; i++) {
        for (unsigned k = 0; k < WINDOW; k++)
            track(r, r->arena + 16 * k, 16);
        for (unsigned k = 0; k < WINDOW; k++)
            untrack(r, r->arena + 16 * k);
    }
    r->pair_ns = (double)(cpu_ns() - t0) / (PAIRS / WINDOW * WINDOW);

    for (unsigned k = 0; k < CROSS; k++)
        track(r, r->arena + 16 * k, 16);
    pthread_barrier_wait(r->barrier);
    t0 = cpu_ns();
    for (unsigned k = 0; k < CROSS; k++)
        untrack(r, next + 16 * k); /* the neighbour's objects */
    r->cross_ns = (double)(cpu_ns() - t0) / CROSS;
    return NULL;
}

static void
run_once(enum variant v, unsigned threads, double *pair, double *cross)
{
    pthread_t th[MAX_THREADS];
    pthread_barrier_t barrier;

    pthread_barrier_init(&barrier, NULL, threads);
    pt_threads = threads;
    for (unsigned t = 0; t < threads; t++) {
        runs[t] = (struct run){v, t, threads, runs[t].arena, &barrier, 0, 0};
        if (v == V_PER_THREAD)
            memset(pt[t]->key, 0, sizeof(pt[t]->key));
    }
    for (unsigned t = 0; t < threads; t++)
        pthread_create(&th[t], NULL, worker, &runs[t]);
    *pair = *cross = 0;
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        *pair += runs[t].pair_ns / threads;
        *cross += runs[t].cross_ns / threads;
    }
    pthread_barrier_destroy(&barrier);
}

int
main(void)
{
    static const unsigned thread_counts[] = {1, 2, 8, 32};
    char cpu[128];

    for (unsigned t = 0; t < MAX_THREADS; t++) {
        runs[t].arena = malloc(16 * (CROSS > WINDOW ? CROSS : WINDOW));
        pt[t] = calloc(1, sizeof(*pt[t]));
        if (!runs[t].arena || !pt[t])
            return 1;
        pthread_mutex_init(&pt[t]->mutex, NULL);
    }
    printf("mem_track: thread CPU ns per operation, median of %d rounds (%s)\n", ROUNDS,
           bench_cpu_model(cpu, sizeof(cpu)));
    printf("%-36s %7s %14s %14s\n", "variant", "threads", "track+free", "remote free");
    for (unsigned v = 0; v < 4; v++) {
        for (unsigned c = 0; c < sizeof(thread_counts) / sizeof(thread_counts[0]); c++) {
            double pair[ROUNDS], cross[ROUNDS];
            for (unsigned r = 0; r < ROUNDS; r++)
                run_once((enum variant)v, thread_counts[c], &pair[r], &cross[r]);
            printf("%-36s %7u %14.1f %14.1f\n", variant_names[v], thread_counts[c],
                   bench_median(pair, ROUNDS), bench_median(cross, ROUNDS));
        }
    }
    return 0;
}
