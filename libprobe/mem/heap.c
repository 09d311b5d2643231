/* The sampled heap profiler (docs/memory.md "Heap profiling").
 *
 * Sampling: a Poisson process on allocated bytes, as jemalloc and Go do. Each thread
 * counts down an exponentially distributed number of bytes (mean PROBE_MEM_SAMPLE,
 * 512 KiB by default); the allocation that reaches zero is sampled. A block of size
 * s is then sampled with probability p = 1 - exp(-s / mean) and stands for 1/p
 * blocks and s/p bytes: unbiased for every size, and a block much larger than the
 * mean counts once at its size (golang/go#26618 scaled by the wrong p).
 *
 * A sampled block's native stack is interned in a bounded table of stacks; the block
 * stays in a bounded table of live blocks until freed, so the profile knows what is
 * live (in use), what was live at the peak (each time the estimated live total
 * passes the last copy by one sampling interval, every stack's in-use figures are
 * copied), and what was temporary (freed by the thread that allocated it within
 * HEAP_TEMP_NS). Tables are mmap'd, never malloc'd; one mutex covers them, taken
 * only on sampled allocations and on frees the filter cannot rule out. */
#include "mem/heap.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <probe/common.h>
#include <probe/mem.h>

#include "core/clock.h"
#include "core/heapsum.h"
#include "stack/modules.h"
#include "stack/symbolize.h"
#include "stack/unwind.h"

int heap_on;
uint64_t *heap_filter;
__thread int64_t heap_tls_until __attribute__((tls_model("initial-exec")));

#define STACK_BUCKETS (HEAP_MAX_STACKS * 2)
#define LIVE_BUCKETS HEAP_MAX_LIVE

struct stack_entry {
    uint64_t hash;
    uint32_t next;                   /* 1-based index in the chain, 0 ends it */
    struct heap_site s;
};

struct live_entry {
    uintptr_t ptr;
    uint32_t next;                   /* chain, or free list; 1-based */
    uint32_t stack;                  /* 0-based */
    double objects, space;
    uint64_t t_ns;
    pid_t tid;
};

static struct {
    pthread_mutex_t lock;
    uint64_t mean;
    double inv_mean;
    uintptr_t self_lo, self_hi;      /* libprobe's code: its own allocations */
    struct stack_entry *stacks;
    uint32_t *stack_buckets;
    unsigned nstacks;
    struct live_entry *live;
    uint32_t *live_buckets;
    uint32_t live_free, live_used;   /* free list head (1-based), high water */
    double alloc_space, alloc_objects, inuse_space, inuse_objects;
    double peak_space, peak_copied;  /* the largest live estimate; at the last copy */
    uint64_t samples, dropped_stacks, dropped_live;
    /* The in-use estimate over time, for the chrome trace's counter track: a point
     * each time it moved by point_step since the last; when the array is full,
     * every other point goes and the step doubles, so it stays bounded. */
    struct { uint64_t ticks; double inuse; } *points;
    unsigned npoints;
    double point_step, point_last;
} H = {.lock = PTHREAD_MUTEX_INITIALIZER};

struct heap_tls {
    int init, guard;
    uint64_t rng;
    pid_t tid;
    uintptr_t stack_lo, stack_hi;
};
static __thread struct heap_tls tls __attribute__((tls_model("initial-exec")));

void
heap_guard(int on)
{
    tls.guard += on ? 1 : -1;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: the thread's own generator, seeded from its id and the clock. */
static double
rng_uniform(void)
{
    uint64_t x = tls.rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    tls.rng = x;
    return ((x * 0x2545f4914f6cdd1dull) >> 11) * (1.0 / 9007199254740992.0);
}

/* An exponentially distributed count of bytes with mean H.mean, at least 1. */
static int64_t
draw_interval(void)
{
    double u = rng_uniform();
    double d = -log(u > 0 ? u : 1e-300) * (double)H.mean;

    return d < 1 ? 1 : d > 4e18 ? (int64_t)4e18 : (int64_t)d;
}

static void
tls_init(void)
{
    tls.tid = (pid_t)syscall(SYS_gettid);
    tls.rng = (now_ns() ^ ((uint64_t)tls.tid << 32) ^ (uintptr_t)&tls) | 1;
    tls.init = 1;
}

/* The calling thread's stack, innermost first, from the call at @caller out. */
static unsigned
capture(uintptr_t caller, uintptr_t *pcs, unsigned max)
{
    uintptr_t raw[HEAP_STACK_DEPTH + 16];
    ucontext_t uc;
    uintptr_t sp = (uintptr_t)&uc;

    if (sp < tls.stack_lo || sp >= tls.stack_hi) {
        if (unwind_stack_bounds(sp, &tls.stack_lo, &tls.stack_hi) < 0)
            tls.stack_lo = tls.stack_hi = 0;
    }
    unsigned n = 0, k = 0;
    if (tls.stack_hi && getcontext(&uc) == 0)
        n = unwind_context(&uc, tls.stack_lo, tls.stack_hi, raw,
                           sizeof(raw) / sizeof(raw[0]));
    while (k < n && raw[k] != caller)
        k++;
    if (k == n) { /* the unwinder lost it: the allocating call alone */
        pcs[0] = caller;
        return 1;
    }
    unsigned m = 0;
    for (; k < n && m < max; k++)
        pcs[m++] = raw[k];
    return m;
}

static uint32_t
stack_intern(const uintptr_t *pcs, unsigned n)
{
    uint64_t h = 1469598103934665603ull;

    for (unsigned i = 0; i < n; i++)
        h = (h ^ pcs[i]) * 1099511628211ull;
    uint32_t *b = &H.stack_buckets[h % STACK_BUCKETS];
    for (uint32_t i = *b; i; i = H.stacks[i - 1].next) {
        struct stack_entry *e = &H.stacks[i - 1];
        if (e->hash == h && e->s.npcs == n && !memcmp(e->s.pcs, pcs, n * sizeof(*pcs)))
            return i - 1;
    }
    if (H.nstacks >= HEAP_MAX_STACKS)
        return UINT32_MAX;
    struct stack_entry *e = &H.stacks[H.nstacks++];
    e->hash = h;
    e->s.npcs = n;
    memcpy(e->s.pcs, pcs, n * sizeof(*pcs));
    e->next = *b;
    *b = H.nstacks;
    return H.nstacks - 1;
}

/* Under H.lock, after the in-use estimate changed. */
static void
point_note(void)
{
    if (fabs(H.inuse_space - H.point_last) < H.point_step && H.npoints)
        return;
    if (H.npoints == HEAP_POINTS) {
        for (unsigned i = 0; i < HEAP_POINTS / 2; i++)
            H.points[i] = H.points[2 * i + 1];
        H.npoints = HEAP_POINTS / 2;
        H.point_step *= 2;
    }
    H.points[H.npoints].ticks = clock_ticks();
    H.points[H.npoints++].inuse = H.inuse_space;
    H.point_last = H.inuse_space;
}

/* Each stack's in-use figures become its at-peak figures. */
static void
copy_peak(void)
{
    for (unsigned i = 0; i < H.nstacks; i++) {
        H.stacks[i].s.peak_objects = H.stacks[i].s.inuse_objects;
        H.stacks[i].s.peak_space = H.stacks[i].s.inuse_space;
    }
    H.peak_copied = H.inuse_space;
}

void
heap_alloc_slow(void *p, size_t size, uintptr_t caller)
{
    if (!tls.init) { /* the thread's first allocation: start its countdown */
        tls_init();
        heap_tls_until = draw_interval() - (int64_t)(size ? size : 1);
        if (heap_tls_until > 0)
            return;
    }
    if (tls.guard || !H.live) {
        heap_tls_until = draw_interval();
        return;
    }
    /* Sampled: a point of the process fell inside this block. The process is
     * memoryless, so the next point is a fresh draw from the block's end. */
    heap_tls_until = draw_interval();
    if (caller >= H.self_lo && caller < H.self_hi)
        return; /* libprobe's own */

    uintptr_t pcs[HEAP_STACK_DEPTH];
    double s = (double)(size ? size : 1);
    double prob = -expm1(-s * H.inv_mean);
    double objects = prob > 0 ? 1.0 / prob : 1.0, space = s * objects;

    tls.guard++;
    unsigned n = capture(caller, pcs, HEAP_STACK_DEPTH);
    uint64_t t = now_ns();

    /* Made for libprobe (libdw reading debuginfo for a report, say): not the
     * program's. */
    for (unsigned i = 1; i < n; i++) {
        if (pcs[i] >= H.self_lo && pcs[i] < H.self_hi) {
            tls.guard--;
            return;
        }
    }

    pthread_mutex_lock(&H.lock);
    H.samples++;
    H.alloc_space += space;
    H.alloc_objects += objects;
    uint32_t st = stack_intern(pcs, n);
    if (st == UINT32_MAX) {
        H.dropped_stacks++;
        goto out;
    }
    struct heap_site *site = &H.stacks[st].s;
    site->alloc_objects += objects;
    site->alloc_space += space;
    uint32_t idx = H.live_free;
    if (idx) {
        H.live_free = H.live[idx - 1].next;
    } else if (H.live_used < HEAP_MAX_LIVE) {
        idx = ++H.live_used;
    } else {
        H.dropped_live++;
        goto out;
    }
    struct live_entry *e = &H.live[idx - 1];
    uint32_t *b = &H.live_buckets[heap_filter_slot(p) % LIVE_BUCKETS];
    *e = (struct live_entry){.ptr = (uintptr_t)p, .next = *b, .stack = st,
                             .objects = objects, .space = space, .t_ns = t, .tid = tls.tid};
    *b = idx;
    __atomic_add_fetch(&heap_filter[heap_filter_slot(p)], 1, __ATOMIC_RELAXED);
    site->inuse_objects += objects;
    site->inuse_space += space;
    H.inuse_objects += objects;
    H.inuse_space += space;
    if (H.inuse_space > H.peak_space)
        H.peak_space = H.inuse_space;
    if (H.inuse_space >= H.peak_copied + (double)H.mean)
        copy_peak();
    point_note();
out:
    pthread_mutex_unlock(&H.lock);
    tls.guard--;
}

void
heap_free_slow(void *p)
{
    if (!H.live)
        return;
    if (!tls.init)
        tls_init();
    unsigned slot = heap_filter_slot(p);

    pthread_mutex_lock(&H.lock);
    for (uint32_t *link = &H.live_buckets[slot % LIVE_BUCKETS]; *link;
         link = &H.live[*link - 1].next) {
        struct live_entry *e = &H.live[*link - 1];
        if (e->ptr != (uintptr_t)p)
            continue;
        struct heap_site *site = &H.stacks[e->stack].s;
        site->inuse_objects -= e->objects;
        site->inuse_space -= e->space;
        H.inuse_objects -= e->objects;
        H.inuse_space -= e->space;
        point_note();
        /* Temporary: freed by its own thread soon after. */
        if (e->tid == tls.tid && now_ns() - e->t_ns < HEAP_TEMP_NS) {
            site->temp_objects += e->objects;
            site->temp_space += e->space;
        }
        uint32_t idx = *link;
        *link = e->next;
        e->next = H.live_free;
        e->ptr = 0;
        H.live_free = idx;
        __atomic_sub_fetch(&heap_filter[slot], 1, __ATOMIC_RELAXED);
        break;
    }
    pthread_mutex_unlock(&H.lock);
}

static void
atfork_prepare(void)
{
    pthread_mutex_lock(&H.lock);
}

static void
atfork_parent(void)
{
    pthread_mutex_unlock(&H.lock);
}

static void
atfork_child(void)
{
    pthread_mutex_unlock(&H.lock);
    tls.tid = (pid_t)syscall(SYS_gettid);
}

static void *
map(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static char out_path[4096];
static char out_format[16] = "text";
static pid_t out_pid;
static int exiting;

static const char *
format_of(const char *path)
{
    size_t n = strlen(path);

    if ((n > 6 && !strcmp(path + n - 6, ".pb.gz")) || (n > 6 && !strcmp(path + n - 6, ".pprof")))
        return "pprof";
    if (n > 5 && !strcmp(path + n - 5, ".json"))
        return "json";
    return "text";
}

static void
report_at_exit(void)
{
    if (getpid() != out_pid)
        return; /* a forked child that did not exec */
    exiting = 1;
    int rc = probe_mem_heap_write(out_path[0] ? out_path : "stderr", out_format);
    if (rc < 0)
        dprintf(STDERR_FILENO, "libprobe: cannot write the heap profile to %s: %s\n",
                out_path[0] ? out_path : "stderr", probe_strerror(rc));
}

static int
by_alloc_desc(const void *a, const void *b)
{
    double x = (*(const struct heap_site *const *)a)->alloc_space;
    double y = (*(const struct heap_site *const *)b)->alloc_space;

    return x < y ? 1 : x > y ? -1 : 0;
}

/* What a report snapshot carries (core/heapsum.h): the top sites by bytes allocated,
 * named, and the in-use estimate over time, with a last point for now. */
static struct heapsum *
heap_summary(void)
{
    struct heap_profile p;
    struct heapsum *h = calloc(1, sizeof(*h));
    const struct heap_site **v = NULL;

    if (!h || heap_profile_copy(&p) < 0) {
        free(h);
        return NULL;
    }
    tls.guard++;
    h->mean = p.mean;
    h->samples = p.samples;
    h->alloc_space = p.alloc_space;
    h->alloc_objects = p.alloc_objects;
    h->inuse_space = p.inuse_space;
    h->peak_space = p.peak_space;
    v = malloc((p.nsites ? p.nsites : 1) * sizeof(*v));
    h->sites = calloc(HEAPSUM_SITES, sizeof(*h->sites));
    pthread_mutex_lock(&H.lock);
    unsigned np = H.npoints;
    h->points = malloc((np + 1) * sizeof(*h->points));
    for (unsigned i = 0; h->points && i < np; i++)
        h->points[i] = (struct heapsum_point){.ts_ns = H.points[i].ticks,
                                              .inuse = H.points[i].inuse};
    pthread_mutex_unlock(&H.lock);
    if (!v || !h->sites || !h->points) {
        free(v);
        heap_profile_free(&p);
        tls.guard--;
        heapsum_free(h);
        return NULL;
    }
    double npt = clock_ns_per_tick();
    for (unsigned i = 0; i < np; i++)
        h->points[i].ts_ns = clock_since_load_ns(h->points[i].ts_ns, npt);
    h->points[np] = (struct heapsum_point){clock_since_load_ns(clock_ticks(), npt),
                                           p.inuse_space};
    h->npoints = np + 1;
    for (unsigned i = 0; i < p.nsites; i++)
        v[i] = &p.sites[i];
    qsort(v, p.nsites, sizeof(*v), by_alloc_desc);
    for (unsigned i = 0; i < p.nsites && h->nsites < HEAPSUM_SITES; i++) {
        struct heapsum_site *o = &h->sites[h->nsites++];
        o->bytes = v[i]->alloc_space;
        o->blocks = v[i]->alloc_objects;
        for (unsigned k = 0; k < v[i]->npcs && k < HEAPSUM_FRAMES; k++) {
            const char *name = symbolize_pc(v[i]->pcs[k], 1, o->frames[k], HEAPSUM_NAME);
            if (name != o->frames[k])
                snprintf(o->frames[k], HEAPSUM_NAME, "%s", name);
            o->nframes++;
        }
    }
    free(v);
    heap_profile_free(&p);
    tls.guard--;
    return h;
}

void
heap_init(void)
{
    const char *on = secure_getenv("PROBE_MEM");
    const char *mean = secure_getenv("PROBE_MEM_SAMPLE");
    const char *path = secure_getenv("PROBE_MEM_OUTPUT");
    const char *fmt = secure_getenv("PROBE_MEM_FORMAT");
    struct module self;

    if (!on || strcmp(on, "1") != 0)
        return;
    tls.guard++;
    H.mean = HEAP_SAMPLE_DEFAULT;
    if (mean && *mean) {
        char *end;
        unsigned long long v = strtoull(mean, &end, 10);
        if (*end || end == mean || v < 1 || v > (1ull << 40) || mean[0] == '-')
            dprintf(STDERR_FILENO, "libprobe: PROBE_MEM_SAMPLE=%s: use a byte count from 1 "
                                   "to 2^40; sampling every %u bytes\n", mean,
                    HEAP_SAMPLE_DEFAULT);
        else
            H.mean = v;
    }
    H.inv_mean = 1.0 / (double)H.mean;
    if (path && *path)
        snprintf(out_path, sizeof(out_path), "%s", path);
    snprintf(out_format, sizeof(out_format), "%s",
             fmt && *fmt ? fmt : path && *path ? format_of(path) : "text");
    modules_refresh();
    if (modules_find((uintptr_t)&heap_init, &self) == 0) {
        H.self_lo = self.text_lo;
        H.self_hi = self.text_hi;
    }
    H.stacks = map(sizeof(*H.stacks) * HEAP_MAX_STACKS);
    H.stack_buckets = map(sizeof(*H.stack_buckets) * STACK_BUCKETS);
    H.live_buckets = map(sizeof(*H.live_buckets) * LIVE_BUCKETS);
    uint64_t *filter = map(sizeof(*heap_filter) << HEAP_FILTER_BITS);
    H.points = map(sizeof(*H.points) * HEAP_POINTS);
    H.point_step = (double)H.mean;
    struct live_entry *live = map(sizeof(*H.live) * HEAP_MAX_LIVE);
    if (!H.stacks || !H.stack_buckets || !H.live_buckets || !filter || !live ||
        !H.points) {
        dprintf(STDERR_FILENO, "libprobe: PROBE_MEM: out of memory; heap profiling off\n");
        tls.guard--;
        return;
    }
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    out_pid = getpid();
    atexit(report_at_exit);
    heap_filter = filter;
    __atomic_store_n(&heap_collect_hook, heap_summary, __ATOMIC_RELEASE);
    __atomic_store_n(&H.live, live, __ATOMIC_RELEASE);
    __atomic_store_n(&heap_on, 1, __ATOMIC_RELEASE);
    tls.guard--;
}

int
heap_profile_copy(struct heap_profile *out)
{
    if (!__atomic_load_n(&heap_on, __ATOMIC_ACQUIRE))
        return PROBE_ENODATA;
    tls.guard++;
    pthread_mutex_lock(&H.lock);
    unsigned n = H.nstacks;
    struct heap_site *sites = malloc((n ? n : 1) * sizeof(*sites));
    if (!sites) {
        pthread_mutex_unlock(&H.lock);
        tls.guard--;
        return PROBE_ENOMEM;
    }
    for (unsigned i = 0; i < n; i++)
        sites[i] = H.stacks[i].s;
    *out = (struct heap_profile){
        .mean = H.mean, .nsites = n, .sites = sites,
        .alloc_space = H.alloc_space, .alloc_objects = H.alloc_objects,
        .inuse_space = H.inuse_space, .inuse_objects = H.inuse_objects,
        .peak_space = H.peak_space, .samples = H.samples,
        .dropped_stacks = H.dropped_stacks, .dropped_live = H.dropped_live,
        .at_exit = exiting,
    };
    pthread_mutex_unlock(&H.lock);
    tls.guard--;
    return 0;
}

void
heap_profile_free(struct heap_profile *p)
{
    if (p) {
        free(p->sites);
        p->sites = NULL;
    }
}
