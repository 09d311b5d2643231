/* Timeline recording: the flight recorder's per-thread rings, start and stop,
 * instants. See trace.h. */
#include "trace.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <probe/probe.h>
#include <probe/report.h>
#include <probe/trace.h>

#include "atomics.h"
#include "clock.h"
#include "sites.h"
#include "thread.h"
#include "walk.h"

#define TRACE_DEFAULT_EVENTS 65536u
/* Stream mode: each thread's ring holds twice this. The writer is woken when a ring
 * fills another quarter, but on a loaded 2-core machine it waited up to 15 ms for a
 * CPU (40 ms beside two CPU-bound processes): a thread doing only scopes (40 million
 * events a second) fills 65,536 x 2 events in 3.3 ms, 262,144 x 2 in 13 ms. Pages
 * are touched only as a thread's events reach them. */
#define TRACE_STREAM_DEFAULT_EVENTS 262144u
#define TRACE_MIN_EVENTS 16u
#define TRACE_MAX_EVENTS (1u << 24)
#define TRACE_NAMES 1024

int trace_on;
const struct trace_stream_ops *trace_stream_backend;
static uint32_t session;        /* 0 until the first start */
static uint32_t session_cap;
static uint32_t session_stream;
/* Lock order: ctl_lock, then the registry lock, then orphan_lock. names_lock is a
 * leaf: nothing is taken under it. Fork handling: docs/locks.md. */
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;   /* start and stop */
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER; /* interned names */
static pthread_mutex_t orphan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct trace_buf *orphans;     /* stream buffers of exited threads */
static uint64_t orphans_dropped;      /* what drained orphans had lost */
/* Stream mode converts ticks with one ratio for the whole session: a ratio refined
 * between drains could make a later event look earlier than the one before it. */
static double stream_ns_per_tick;
static char *flight_path;             /* flight mode: written at stop and exit */
/* The stream writer's sleep (a futex word on Linux): a thread whose ring has filled
 * another quarter bumps @wake_word, but makes that system call only when the writer
 * said it was going to sleep (@writer_asleep). */
static uint32_t wake_word;
static uint32_t writer_asleep;

/* Interned instant names: never freed, so events can point at them. */
static const char *interned[TRACE_NAMES];
static size_t ninterned;

void
trace_buf_free(struct trace_buf *b)
{
    if (b) {
        free(b->ev);
        free(b);
    }
}

int
trace_current(const struct trace_buf *b)
{
    return b && b->session == load_acquire(&session);
}

static __attribute__((cold, noinline)) struct trace_buf *
trace_attach(struct thread_state *t)
{
    uint32_t s = load_acquire(&session), cap = load_relaxed(&session_cap);
    uint32_t stream = load_relaxed(&session_stream);
    struct trace_buf *b = calloc(1, sizeof(*b));

    if (b)
        b->ev = calloc((size_t)cap * (stream ? 2 : 1), sizeof(*b->ev));
    if (!b || !b->ev) {
        trace_buf_free(b);
        return NULL;
    }
    b->cap = cap;
    b->kick_left = cap / 2;
    b->session = s;
    b->stream = stream;
    b->tid = thread_tid(t);
    thread_swap_trace(t, b); /* the old buffer goes under the registry lock */
    return b;
}

void
trace_stream_wake(void)
{
    __atomic_fetch_add(&wake_word, 1, __ATOMIC_SEQ_CST);
#ifdef __linux__
    syscall(SYS_futex, &wake_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
#endif
}

uint32_t
trace_stream_sleep_prepare(void)
{
    uint32_t token = load_acquire(&wake_word);

    /* Read-modify-writes on both sides (see stream_kick()): either the owner's comes
     * first, and the writer's next look sees the events before it, or the owner
     * sees the writer asleep and wakes it. */
    (void)__atomic_exchange_n(&writer_asleep, 1, __ATOMIC_ACQ_REL);
    return token;
}

void
trace_stream_sleep(uint32_t token, long ns)
{
    struct timespec ts = {ns / 1000000000, ns % 1000000000};

    (void)token;
    if (ns > 0) {
#ifdef __linux__
        syscall(SYS_futex, &wake_word, FUTEX_WAIT_PRIVATE, token, &ts, NULL, 0);
#else
        nanosleep(&ts, NULL);
#endif
    }
    store_relaxed(&writer_asleep, 0);
}

/* Another quarter of the ring filled: wake the writer if it sleeps. */
static COLD void
stream_kick(struct trace_buf *b)
{
    b->kick_left = b->cap / 2;
    if (__atomic_exchange_n(&writer_asleep, 0, __ATOMIC_ACQ_REL))
        trace_stream_wake();
}

/* Append to the ring unless it is full (then drop and count). No system call unless
 * a quarter filled while the writer sleeps. */
static inline void
stream_emit(struct trace_buf *b, uint32_t kind, uint32_t id, uint64_t ts, int64_t value)
{
    uint64_t h = b->head;
    uint32_t size = 2 * b->cap;

    if (unlikely(h - b->tail_seen >= size)) {
        b->tail_seen = load_acquire(&b->tail);
        if (h - b->tail_seen >= size) {
            owner_add(&b->dropped, 1);
            return;
        }
    }
    uint32_t pos = b->pos;
    b->ev[pos] = (struct trace_event){ts, id, kind, value};
    b->pos = pos + 1 == size ? 0 : pos + 1;
    store_release(&b->head, h + 1);
    if (unlikely(--b->kick_left == 0))
        stream_kick(b);
}

void
trace_emit(struct thread_state *t, uint32_t kind, uint32_t id, uint64_t ts, int64_t value)
{
    struct trace_buf *b = thread_trace(t);

    if (unlikely(!b || b->session != load_relaxed(&session)) && !(b = trace_attach(t)))
        return;
    if (b->stream) {
        stream_emit(b, kind, id, ts, value);
        return;
    }
    struct trace_event *e = &b->ev[b->head % b->cap];
    store_relaxed(&e->ts, ts);
    store_relaxed(&e->id, id);
    store_relaxed(&e->kind, kind);
    store_relaxed(&e->value, value);
    store_release(&b->head, b->head + 1);
}

static int
raw_push(struct raw_events *out, const struct raw_event *e)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 1024;
        struct raw_event *v = realloc(out->v, cap * sizeof(*v));
        if (!v)
            return -1;
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n++] = *e;
    return 0;
}

int64_t
trace_copy(const struct trace_buf *b, size_t thread, struct raw_events *out)
{
    if (!trace_current(b))
        return 0;
    uint64_t h1 = load_acquire(&b->head);
    uint64_t from = h1 > b->cap ? h1 - b->cap : 0;
    size_t first = out->n;

    for (uint64_t i = from; i < h1; i++) {
        const struct trace_event *e = &b->ev[i % b->cap];
        struct raw_event r = {thread, load_relaxed(&e->ts), load_relaxed(&e->id),
                              load_relaxed(&e->kind), load_relaxed(&e->value)};
        if (raw_push(out, &r) < 0)
            return -1;
    }
    /* Slots the owner reached while we copied (and the one it may be writing) may be
     * torn: keep only events older than that. */
    uint64_t h2 = load_acquire(&b->head);
    uint64_t valid = h2 + 1 > b->cap ? h2 + 1 - b->cap : 0;
    if (valid > from) {
        size_t skip = (size_t)(valid - from < h1 - from ? valid - from : h1 - from);
        memmove(out->v + first, out->v + first + skip,
                (out->n - first - skip) * sizeof(*out->v));
        out->n -= skip;
        from += skip;
    }
    return (int64_t)(from + load_relaxed(&b->dropped));
}

/* A run of events to write in this pass: in a live ring (advance @b's tail once
 * written) or in @copy (the final pass's). */
struct drain_span {
    struct trace_buf *b;
    uint64_t tid;
    const struct trace_event *a, *bb;
    size_t na, nb;
    uint64_t to;
    struct trace_event *copy;
};

/* The writer's (one thread at a time: the writer, or the stop after joining it). */
static struct drain_span *spans;
static size_t nspans, spans_cap;
static int drain_final, drain_oom;

static int
span_note(struct trace_buf *b, int copy_now)
{
    uint64_t tail = b->tail, head = load_acquire(&b->head);
    uint32_t size = 2 * b->cap;

    if (head == tail)
        return 0;
    if (nspans == spans_cap) {
        size_t cap = spans_cap ? spans_cap * 2 : 64;
        struct drain_span *v = realloc(spans, cap * sizeof(*v));
        if (!v)
            return -1;
        spans = v;
        spans_cap = cap;
    }
    size_t n = (size_t)(head - tail), at = (size_t)(tail % size);
    size_t na = n < size - at ? n : size - at;
    struct drain_span *sp = &spans[nspans];
    *sp = (struct drain_span){b, b->tid, b->ev + at, b->ev, na, n - na, head, NULL};
    if (copy_now) {
        /* The ring may be freed once the registry lock is released. */
        if (!(sp->copy = malloc(n * sizeof(*sp->copy))))
            return -1;
        memcpy(sp->copy, sp->a, na * sizeof(*sp->copy));
        memcpy(sp->copy + na, sp->bb, (n - na) * sizeof(*sp->copy));
        *sp = (struct drain_span){NULL, b->tid, sp->copy, NULL, n, 0, head, sp->copy};
        store_release(&b->tail, head);
    }
    nspans++;
    return 0;
}

int
trace_drain_buf(struct trace_buf *b, int final, double npt, struct raw_events *out)
{
    (void)npt;
    (void)out;
    if (!b || !b->stream || !trace_current(b))
        return 0;
    if (final)
        b->final_drained = 1; /* under the registry lock: see trace_thread_exit() */
    if (span_note(b, drain_final) < 0)
        drain_oom = 1;
    return 0;
}

void
trace_event_raw(const struct trace_event *e, uint64_t tid, struct raw_event *out)
{
    *out = (struct raw_event){tid, clock_since_load_ns(e->ts, stream_ns_per_tick), e->id,
                              e->kind, e->value};
}

int
trace_thread_exit(struct trace_buf *b, uint64_t tid, const char *name)
{
    /* After the stream's last drain nobody would drain it again: the caller frees. */
    if (!b || !b->stream || !trace_current(b) || b->final_drained)
        return 0;
    b->tid = tid;
    memcpy(b->name, name, sizeof(b->name) - 1);
    pthread_mutex_lock(&orphan_lock);
    b->next = orphans;
    orphans = b;
    pthread_mutex_unlock(&orphan_lock);
    return 1;
}

/* Write the spans noted and let their rings' owners reuse the space. */
static int64_t
spans_write(trace_write_fn write, void *ctx)
{
    int64_t n = 0;

    for (size_t i = 0; i < nspans; i++) {
        struct drain_span *sp = &spans[i];
        (void)write(ctx, sp->tid, sp->a, sp->na, sp->bb, sp->nb);
        n += (int64_t)(sp->na + sp->nb);
        if (sp->b)
            store_release(&sp->b->tail, sp->to);
        free(sp->copy);
    }
    nspans = 0;
    return n;
}

int64_t
trace_drain(int final, trace_write_fn write, void *ctx, uint64_t *ret_dropped,
            struct trace_thread_name **names, size_t *nnames)
{
    uint64_t live_dropped = 0;

    /* Live threads: noted under the registry lock, written after it. */
    drain_final = final;
    drain_oom = 0;
    if (thread_trace_drain(final, stream_ns_per_tick, NULL, names, nnames, &live_dropped) < 0)
        drain_oom = 1;
    int64_t n = spans_write(write, ctx);
    pthread_mutex_lock(&orphan_lock);
    struct trace_buf *list = orphans;
    orphans = NULL;
    pthread_mutex_unlock(&orphan_lock);
    for (struct trace_buf *b = list, *next; b; b = next) {
        next = b->next;
        /* Its thread has exited: only this writer reads it now. */
        if (trace_current(b) && span_note(b, 0) < 0)
            drain_oom = 1;
        n += spans_write(write, ctx);
        orphans_dropped += b->dropped;
        if (names) { /* an exited thread is named when its last events go */
            struct trace_thread_name *v = realloc(*names, (*nnames + 1) * sizeof(*v));
            if (v) {
                *names = v;
                v[*nnames].tid = b->tid;
                memcpy(v[*nnames].name, b->name, sizeof(v->name));
                (*nnames)++;
            }
        }
        /* A walk (the fault dumper's) that read the exited thread's state may still
         * read this timeline: freed when no walk runs. */
        thread_retire_trace(b);
    }
    if (final) {
        free(spans);
        spans = NULL;
        spans_cap = 0;
    }
    *ret_dropped = orphans_dropped + live_dropped;
    return drain_oom ? -1 : n;
}

int
trace_site_name(uint32_t id, char *buf, size_t len)
{
    return sites_name(id, buf, len);
}

PROBE_SIGSAFE unsigned
trace_recent(const struct trace_buf *b, struct walk_event *out, unsigned max)
{
    struct trace_event ev[64];
    unsigned n = 0;

    if (!b || !b->ev || max == 0)
        return 0;
    if (max > 64)
        max = 64;
    if (b->stream) { /* the newest in the ring, written or not */
        uint64_t head = load_relaxed(&b->head);
        uint32_t size = 2 * b->cap;
        for (uint64_t i = head > max ? head - max : 0; i < head; i++)
            ev[n++] = b->ev[i % size];
    } else {
        uint64_t head = load_relaxed(&b->head);
        for (uint64_t i = head > max ? head - max : 0; i < head; i++)
            ev[n++] = b->ev[i % b->cap];
    }
    double npt = clock_cached_ns_per_tick();
    uint64_t newest = n ? ev[n - 1].ts : 0;
    for (unsigned i = 0; i < n; i++) {
        struct walk_event *w = &out[i];
        uint64_t ago = newest > ev[i].ts ? newest - ev[i].ts : 0;
        w->kind = ev[i].kind;
        w->in_ns = npt > 0;
        w->ago = npt > 0 ? (uint64_t)((double)ago * npt) : ago;
        w->site = (struct walk_frame){0};
        if (ev[i].kind == PROBE_EVENT_INSTANT)
            w->site.name = (const char *)(intptr_t)ev[i].value;
        else if (sites_describe_unlocked(ev[i].id, &w->site) < 0)
            w->site.name = NULL;
    }
    return n;
}

static int
options_valid(const probe_trace_options *o, uint32_t *cap)
{
    if (o->size < sizeof(probe_trace_options))
        return 0;
    if (o->mode != PROBE_TRACE_FLIGHT && o->mode != PROBE_TRACE_STREAM)
        return 0;
    if (o->mode == PROBE_TRACE_STREAM && (!o->path || !*o->path))
        return 0;
    if (o->buffer_events &&
        (o->buffer_events < TRACE_MIN_EVENTS || o->buffer_events > TRACE_MAX_EVENTS))
        return 0;
    *cap = o->buffer_events                ? (uint32_t)o->buffer_events
           : o->mode == PROBE_TRACE_STREAM ? TRACE_STREAM_DEFAULT_EVENTS
                                           : TRACE_DEFAULT_EVENTS;
    return 1;
}

/* A stream left running at exit would leave its file unfinished, and a flight
 * recorder with a path would never be written: stop tracing. */
static void
trace_at_exit(void)
{
    (void)probe_trace_stop();
}

/* Write the flight recorder to @path (a copy, freed here), outside ctl_lock: the
 * report takes the formatter registry's lock, which fork handlers take before
 * ctl_lock. */
static int
flight_dump(char *path)
{
    int rc = path && trace_stream_backend ? trace_stream_backend->dump(path) : 0;

    free(path);
    return rc;
}

int
trace_on_recording_stop(void)
{
    pthread_mutex_lock(&ctl_lock);
    char *path = load_relaxed(&trace_on) && !load_relaxed(&session_stream) && flight_path
                     ? strdup(flight_path)
                     : NULL;
    pthread_mutex_unlock(&ctl_lock);
    return flight_dump(path);
}

PROBE_EXPORT int
probe_trace_start(const probe_trace_options *opts)
{
    static int exit_hook;

    probe_trace_options defaults = PROBE_TRACE_OPTIONS_INIT;
    uint32_t cap;

    if (!opts)
        opts = &defaults;
    if (!options_valid(opts, &cap))
        return PROBE_EINVAL;
    int stream = opts->mode == PROBE_TRACE_STREAM;
    if (stream && !trace_stream_backend)
        return PROBE_ENOTSUP;
    pthread_mutex_lock(&ctl_lock);
    if (load_relaxed(&trace_on)) {
        pthread_mutex_unlock(&ctl_lock);
        return PROBE_EBUSY;
    }
    store_relaxed(&session_cap, cap);
    store_relaxed(&session_stream, (uint32_t)stream);
    store_release(&session, session + 1);
    thread_trace_forget(); /* rings of an earlier session */
    orphans_dropped = 0;
    /* Also caches the ratio for the fault dumper's timeline (in a signal handler). */
    double npt = clock_ns_per_tick();
    if (stream)
        stream_ns_per_tick = npt;
    int rc = stream ? trace_stream_backend->open(opts->path) : 0;
    free(flight_path);
    flight_path = NULL;
    if (rc == 0 && !stream && opts->path && *opts->path && !(flight_path = strdup(opts->path)))
        rc = PROBE_ENOMEM;
    if (rc == 0) {
        store_release(&trace_on, 1);
        thread_hot_refresh(); /* scopes leave their fast paths */
    }
    if (rc == 0 && (stream || flight_path) && !exit_hook)
        exit_hook = atexit(trace_at_exit) == 0;
    pthread_mutex_unlock(&ctl_lock);
    return rc;
}

PROBE_EXPORT int
probe_trace_stop(void)
{
    int rc = 0;
    char *path = NULL;

    pthread_mutex_lock(&ctl_lock);
    if (load_relaxed(&trace_on)) {
        store_release(&trace_on, 0);
        thread_hot_refresh();
        if (load_relaxed(&session_stream))
            rc = trace_stream_backend->close();
        else if (flight_path)
            path = strdup(flight_path);
    }
    pthread_mutex_unlock(&ctl_lock);
    return rc < 0 ? rc : flight_dump(path);
}

PROBE_EXPORT int
probe_trace_is_active(void)
{
    return load_relaxed(&trace_on);
}

void
trace_atfork_prepare(void)
{
    pthread_mutex_lock(&ctl_lock);
    /* The child keeps the interned names (its events point at them). */
    pthread_mutex_lock(&names_lock);
}

void
trace_atfork_parent(void)
{
    pthread_mutex_unlock(&names_lock);
    pthread_mutex_unlock(&ctl_lock);
}

void
trace_atfork_child(void)
{
    int streaming = load_relaxed(&trace_on) && load_relaxed(&session_stream);

    store_relaxed(&trace_on, 0);
    thread_hot_refresh();
    if (load_relaxed(&session))
        store_relaxed(&session, session + 1);
    for (struct trace_buf *b = orphans, *next; b; b = next) {
        next = b->next;
        trace_buf_free(b);
    }
    orphans = NULL;
    /* Not taken before fork: all it guards is the list just freed. */
    pthread_mutex_init(&orphan_lock, NULL);
    if (streaming)
        trace_stream_backend->forget();
    pthread_mutex_unlock(&names_lock);
    pthread_mutex_unlock(&ctl_lock);
}

void
trace_reset(void)
{
    /* Buffers of an older session are ignored by snapshots and replaced on their
     * thread's next event; exited threads' rings are freed by the caller. A stream
     * being written is output, not recorded state: it goes on untouched. */
    if (load_acquire(&session) && !(load_relaxed(&trace_on) && load_relaxed(&session_stream)))
        store_release(&session, session + 1);
}

static const char *
intern(const char *name)
{
    const char *found = NULL;

    pthread_mutex_lock(&names_lock);
    for (size_t i = 0; i < ninterned && !found; i++) {
        if (strcmp(interned[i], name) == 0)
            found = interned[i];
    }
    if (!found && ninterned < TRACE_NAMES && (interned[ninterned] = strdup(name)))
        found = interned[ninterned++];
    pthread_mutex_unlock(&names_lock);
    return found ? found : "(other)";
}

PROBE_EXPORT int
probe_trace_instant(const char *name)
{
    if (!name)
        return PROBE_EINVAL;
    if (!load_relaxed(&trace_on) || !load_relaxed(&probe__recording))
        return 0;
    thread_emit_instant(intern(name));
    return 0;
}
