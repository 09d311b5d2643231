/* The sampler's lifecycle: per-thread CPU-time timers (or, in wall mode, the wall
 * thread's view of each thread), the slots that hold them, the public start/stop, and
 * the hooks by which the core tells us of threads. */
#include "sampler.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomics.h"
#include "symbolize.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* ctl_lock serialises start and stop (stop joins the wall thread, which takes the
 * sampler lock); sampler_lock guards the slots. Order: ctl_lock, sampler_lock. */
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t sampler_lock = PTHREAD_MUTEX_INITIALIZER;
static int running;
static probe_sampler_options cur; /* options of the last start */

static struct slot *
slot_get(void)
{
    struct slot *s;

    for (s = slot_list; s; s = s->next)
        if (!s->used)
            break;
    if (!s) {
        unsigned i = slot_count;
        if (i >= SAMPLER_SLOT_CHUNK * SAMPLER_SLOT_CHUNKS)
            return NULL; /* that many threads at once: not sampled */
        struct slot *chunk = slot_chunks[i / SAMPLER_SLOT_CHUNK];
        if (!chunk) {
            if (!(chunk = calloc(SAMPLER_SLOT_CHUNK, sizeof(*chunk))))
                return NULL;
            store_release(&slot_chunks[i / SAMPLER_SLOT_CHUNK], chunk);
        }
        s = &chunk[i % SAMPLER_SLOT_CHUNK];
        s->index = i;
        s->next = slot_list;
        store_release(&slot_count, i + 1);
        store_release(&slot_list, s);
    }
    if (s->ring.w && (s->ring.mask + 1) != 0 &&
        (s->ring.mask + 1) < (uint64_t)cur.buffer_samples * SAMPLER_WORDS_PER_SAMPLE)
        ring_free(&s->ring);
    if (!s->ring.w && ring_init(&s->ring, cur.buffer_samples) < 0)
        return NULL;
    ring_clear(&s->ring);
    if (cur.mode == PROBE_SAMPLE_WALL) {
        if (s->wring.w && (s->wring.mask + 1) <
                              (uint64_t)cur.buffer_samples * SAMPLER_WORDS_PER_SAMPLE)
            ring_free(&s->wring);
        if (!s->wring.w && ring_init(&s->wring, cur.buffer_samples) < 0)
            return NULL;
        ring_clear(&s->wring);
    }
    s->sys_fd = -1;
    s->used = 1;
    return s;
}

static uint64_t discover_gen;

static void
mark_seen(uint64_t tid, uint64_t gen)
{
    for (struct slot *s = slot_list; s; s = s->next)
        if (s->used && s->tid == tid)
            s->seen = gen;
}

static int
slot_has_tid(uint64_t tid)
{
    for (struct slot *s = slot_list; s; s = s->next)
        if (s->used && s->tid == tid)
            return 1;
    return 0;
}

/* The CPU-time clock of thread @tid of this process, as the kernel numbers them
 * (what pthread_getcpuclockid() returns, for a thread we have no pthread_t of). */
static clockid_t
tid_cpu_clock(uint64_t tid)
{
    return (clockid_t)((~(unsigned)tid) << 3) | 6; /* per-thread, CPUCLOCK_SCHED */
}

/* The main thread's stack, from /proc/self/maps (a thread libprobe does not know). */
static void
main_stack(uintptr_t *lo, uintptr_t *hi)
{
    char line[512];
    FILE *f = fopen("/proc/self/maps", "re");

    *lo = *hi = 0;
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        unsigned long a, b;
        if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &a, &b) == 2) {
            *lo = a;
            *hi = b;
            break;
        }
    }
    fclose(f);
}

/* Give thread @tid a timer on its CPU clock. @self is its pthread_t when it is known
 * to libprobe (@known); otherwise it was found in /proc/self/task. Under the lock. */
static int
arm_thread_as(uint64_t tid, pthread_t self, int known)
{
    struct sigevent ev;
    struct itimerspec its;
    pthread_attr_t attr;
    clockid_t clock = tid_cpu_clock(tid);
    struct slot *s;

    if (slot_has_tid(tid))
        return 0;
    if (known && pthread_getcpuclockid(self, &clock) != 0)
        return PROBE_ENOTSUP;
    if (!(s = slot_get()))
        return PROBE_ENOMEM;
    s->tid = tid;
    s->foreign = !known;
    s->stack_lo = s->stack_hi = 0;
    store_relaxed(&s->tp_hi, 0);
    if (!known && tid == (uint64_t)getpid()) {
        main_stack(&s->stack_lo, &s->stack_hi);
    } else if (known && pthread_getattr_np(self, &attr) == 0) {
        void *addr;
        size_t size;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            s->stack_lo = (uintptr_t)addr;
            s->stack_hi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&attr);
    }
    s->max_depth = cur.max_depth;
    s->interval_ns = cur.interval_ns;
    /* For the wall thread's looks when it is blocked; without them (no descriptor
     * left), it is sampled on its CPU time alone. */
    if (cur.mode == PROBE_SAMPLE_WALL)
        (void)wall_open(s);
    memset(&ev, 0, sizeof(ev));
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGPROF;
    ev.sigev_value.sival_ptr = (void *)(uintptr_t)(s->index + 1);
    ev.sigev_notify_thread_id = (pid_t)tid;
    if (timer_create(clock, &ev, &s->timer) < 0) {
        int err = -errno;
        wall_close(s);
        s->used = 0;
        return err;
    }
    s->has_timer = 1;
    store_release(&s->armed, 1);
    its.it_interval.tv_sec = (time_t)(cur.interval_ns / 1000000000u);
    its.it_interval.tv_nsec = (long)(cur.interval_ns % 1000000000u);
    its.it_value = its.it_interval;
    if (timer_settime(s->timer, 0, &its, NULL) < 0) {
        int err = -errno;
        store_release(&s->armed, 0);
        timer_delete(s->timer);
        s->has_timer = 0;
        wall_close(s);
        s->used = 0;
        return err;
    }
    return 0;
}

/* Stop @s's timer, keep its samples, and free it for reuse. Under the lock. */
static void
release_slot(struct slot *s, int delete_timer)
{
    if (s->has_timer && delete_timer)
        timer_delete(s->timer);
    s->has_timer = 0;
    wall_close(s);
    __atomic_store_n(&s->armed, 0, __ATOMIC_SEQ_CST);
    slot_wait_handlers(s); /* one that saw it armed still writes its ring and counts */
    agg_samples_drain(s);
    agg_samples_totals(s);
    memset(&s->hc, 0, sizeof(s->hc));
    memset(&s->wc, 0, sizeof(s->wc));
    memset(&s->base, 0, sizeof(s->base));
    s->tid = 0;
    s->used = 0;
}

static int
arm_thread(uint64_t tid, pthread_t self)
{
    return arm_thread_as(tid, self, 1);
}

static void
arm_cb(void *arg, uint64_t tid, pthread_t self)
{
    (void)arg;
    (void)arm_thread(tid, self); /* a thread exiting meanwhile is not sampled */
}

struct tid_slot {
    uint64_t tid;
    struct slot *slot;
};

static int
by_tid(const void *a, const void *b)
{
    uint64_t x = ((const struct tid_slot *)a)->tid, y = ((const struct tid_slot *)b)->tid;
    return x < y ? -1 : x > y;
}

/* The slot of @tid in @v (sorted), or NULL. */
static struct slot *
find_tid(const struct tid_slot *v, size_t n, uint64_t tid)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].tid == tid)
            return v[mid].slot;
        if (v[mid].tid < tid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The stacks of threads libprobe does not know: the mapping that holds the thread
 * pointer their handler noted (glibc puts a thread's stack just under it). A sample
 * is its PC alone until then; a thread on a stack of its own (a fiber) is outside
 * those bounds, and its samples stay so. Under the sampler lock. */
void
sampler_resolve_stacks(void)
{
    int pending = 0;

    for (struct slot *s = slot_list; s && !pending; s = s->next)
        pending = s->used && s->foreign && !s->stack_hi && load_relaxed(&s->tp_hi);
    if (!pending)
        return;
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) != 2)
            continue;
        for (struct slot *s = slot_list; s; s = s->next) {
            uintptr_t tp = load_relaxed(&s->tp_hi);
            if (s->used && s->foreign && !s->stack_hi && tp && tp - 1 >= a && tp - 1 < b) {
                s->stack_lo = a;
                store_release(&s->stack_hi, (uintptr_t)b);
            }
        }
    }
    fclose(f);
}

/* Every thread of the process gets a timer, whether it uses libprobe or not: the
 * ones /proc/self/task lists that have none yet are armed, and the slots of the
 * ones gone are released. Called at start and by the sampler thread every
 * SAMPLER_DISCOVER_NS. The slots are looked up in a sorted copy, so a scan costs
 * O(n log n) in the threads. Under the sampler lock. */
void
sampler_discover_threads(uint64_t skip_tid)
{
    struct tid_slot *v = NULL;
    size_t n = 0, cap = 0;
    uint64_t gen = ++discover_gen;
    DIR *d;
    struct dirent *e;

    for (struct slot *s = slot_list; s; s = s->next)
        cap += s->used;
    if (cap && !(v = malloc(cap * sizeof(*v))))
        return; /* no scan this time */
    for (struct slot *s = slot_list; s && n < cap; s = s->next)
        if (s->used)
            v[n++] = (struct tid_slot){s->tid, s};
    qsort(v, n, sizeof(*v), by_tid);
    if (!(d = opendir("/proc/self/task"))) {
        free(v);
        return;
    }
    while ((e = readdir(d))) {
        char *end;
        unsigned long long tid = strtoull(e->d_name, &end, 10);
        if (*end || !tid || tid == skip_tid)
            continue;
        struct slot *s = find_tid(v, n, tid);
        if (s)
            s->seen = gen;
        else if (arm_thread_as(tid, (pthread_t)0, 0) == 0)
            mark_seen(tid, gen);
    }
    closedir(d);
    free(v);
    for (struct slot *s = slot_list; s; s = s->next)
        if (s->used && s->foreign && s->seen != gen)
            release_slot(s, 1); /* exited; the kernel keeps a dead thread's timer */
    sampler_resolve_stacks();
}

/* The core's hooks: a thread's first use of libprobe, and its exit. */
static void
on_thread_start(void)
{
    if (!load_acquire(&running))
        return;
    pthread_mutex_lock(&sampler_lock);
    if (running)
        (void)arm_thread((uint64_t)gettid(), pthread_self());
    pthread_mutex_unlock(&sampler_lock);
}

static void
on_thread_exit(void)
{
    uint64_t tid = (uint64_t)gettid();

    pthread_mutex_lock(&sampler_lock);
    for (struct slot *s = slot_list; s; s = s->next)
        if (s->used && s->tid == tid)
            release_slot(s, 1);
    pthread_mutex_unlock(&sampler_lock);
}

static struct sample_set *
collect(void)
{
    struct sample_set *set;

    pthread_mutex_lock(&sampler_lock);
    if (!cur.size) {
        pthread_mutex_unlock(&sampler_lock);
        return NULL; /* never started */
    }
    for (struct slot *s = slot_list; s; s = s->next)
        if (s->used)
            agg_samples_drain(s);
    struct agg_copy *copy = agg_samples_copy(cur.interval_ns, cur.mode, running);
    pthread_mutex_unlock(&sampler_lock);
    set = copy ? agg_samples_build(copy) : NULL; /* symbols: never under the lock */
    return set;
}

static int
check_options(const probe_sampler_options *o)
{
    if (o->size < sizeof(probe_sampler_options))
        return PROBE_EINVAL;
    if (o->interval_ns < PROBE_SAMPLER_INTERVAL_MIN ||
        o->interval_ns > PROBE_SAMPLER_INTERVAL_MAX)
        return PROBE_EINVAL;
    if (o->mode != PROBE_SAMPLE_CPU && o->mode != PROBE_SAMPLE_WALL)
        return PROBE_EINVAL;
    if (o->max_depth < 1 || o->max_depth > PROBE_SAMPLER_DEPTH_MAX)
        return PROBE_EINVAL;
    if (o->buffer_samples < 16 || o->buffer_samples > (1u << 24))
        return PROBE_EINVAL;
    return 0;
}

/* Stop sampling: the wall thread first (it takes the sampler lock), then the
 * timers. Under ctl_lock. */
static void
stop_locked(void)
{
    if (!load_acquire(&running))
        return;
    monitor_stop();
    pthread_mutex_lock(&sampler_lock);
    store_release(&running, 0);
    for (struct slot *s = slot_list; s; s = s->next)
        if (s->used)
            release_slot(s, 1);
    pthread_mutex_unlock(&sampler_lock);
}

PROBE_EXPORT int
probe_sampler_start(const probe_sampler_options *opts)
{
    static const probe_sampler_options defaults = PROBE_SAMPLER_OPTIONS_INIT;
    probe_sampler_options o = defaults;
    int rc;

    if (opts) {
        if (opts->size < sizeof(o))
            return PROBE_EINVAL;
        o = *opts;
        o.size = sizeof(o);
    }
    if ((rc = check_options(&o)) < 0)
        return rc;
    if (o.mode == PROBE_SAMPLE_WALL && access("/proc/self/task", R_OK) != 0)
        return PROBE_ENOTSUP; /* the wall thread reads thread states there */
    pthread_mutex_lock(&ctl_lock);
    if (running) {
        pthread_mutex_unlock(&ctl_lock);
        return PROBE_EBUSY;
    }
    /* Stopped, so no timer is armed: no handler reads the code tables. Not under
     * the sampler lock: dl_iterate_phdr() takes the loader lock, held by dlopen()
     * while a constructor's first use of libprobe waits for the sampler lock. */
    unwind_refresh_code();
    pthread_mutex_lock(&sampler_lock);
    if ((rc = handler_install()) == 0) {
        cur = o;
        store_release(&running, 1);
    }
    pthread_mutex_unlock(&sampler_lock);
    if (rc < 0) {
        pthread_mutex_unlock(&ctl_lock);
        return rc;
    }
    /* Outside the lock: the calling thread registers (its start hook arms it). */
    thread_ensure();
    pthread_mutex_lock(&sampler_lock);
    thread_for_each_live(arm_cb, NULL);
    sampler_discover_threads(0); /* and the threads that never used libprobe */
    pthread_mutex_unlock(&sampler_lock);
    if ((rc = monitor_start(o.interval_ns, o.mode == PROBE_SAMPLE_WALL)) < 0)
        stop_locked();
    pthread_mutex_unlock(&ctl_lock);
    return rc;
}

PROBE_EXPORT int
probe_sampler_stop(void)
{
    pthread_mutex_lock(&ctl_lock);
    stop_locked();
    pthread_mutex_unlock(&ctl_lock);
    return 0;
}

PROBE_EXPORT int
probe_sampler_is_running(void)
{
    return load_acquire(&running);
}

static void
atfork_prepare(void)
{
    pthread_mutex_lock(&ctl_lock);
    pthread_mutex_lock(&sampler_lock);
    monitor_atfork_prepare();
}

static void
atfork_parent(void)
{
    monitor_atfork_parent();
    pthread_mutex_unlock(&sampler_lock);
    pthread_mutex_unlock(&ctl_lock);
}

/* Timers and the wall thread are not inherited: the child starts stopped, with what
 * was sampled. */
static void
atfork_child(void)
{
    pthread_mutex_unlock(&sampler_lock);
    pthread_mutex_unlock(&ctl_lock);
    running = 0;
    monitor_atfork_child();
    for (struct slot *s = slot_list; s; s = s->next) {
        s->inflight = 0; /* the parent's other threads' handlers are not here */
        if (s->used)
            release_slot(s, 0);
    }
    wall_atfork_child();
}

/* probe_reset(): drop what the rings hold and what was merged; the handler's counts
 * so far become the base that reports subtract. Sampling goes on. */
static void
on_reset(void)
{
    static struct sample_rec discard; /* large: not on the stack; under the lock */

    pthread_mutex_lock(&sampler_lock);
    for (struct slot *s = slot_list; s; s = s->next) {
        if (!s->used)
            continue;
        while (s->ring.w && ring_pop(&s->ring, &discard))
            ;
        while (s->wring.w && ring_pop(&s->wring, &discard))
            ;
        s->base.signals = load_relaxed(&s->hc.signals) + s->wc.signals;
        s->base.expirations = load_relaxed(&s->hc.expirations) + s->wc.expirations;
        s->base.dropped = load_relaxed(&s->hc.dropped) + s->wc.dropped;
        s->base.dropped_exp = load_relaxed(&s->hc.dropped_exp) + s->wc.dropped_exp;
        wall_reset(s); /* off-CPU time before the reset is not the next look's */
    }
    agg_samples_forget();
    pthread_mutex_unlock(&sampler_lock);
}

void
sampler_init(void)
{
    symbolize_init(); /* first: its fork handlers' prepare runs after ours */
    store_release(&sampler_reset_hook, on_reset);
    store_release(&sampler_collect_hook, collect);
    store_release(&thread_start_hook, on_thread_start);
    store_release(&thread_exit_hook, on_thread_exit);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
