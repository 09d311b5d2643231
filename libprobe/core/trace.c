/* Timeline recording: the flight recorder's per-thread rings, start and stop,
 * instants. See trace.h. */
#include "trace.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <probe/probe.h>
#include <probe/report.h>
#include <probe/trace.h>

#include "atomics.h"
#include "clock.h"
#include "sites.h"
#include "thread.h"
#include "walk.h"

#define TRACE_DEFAULT_EVENTS 65536u
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
    b->session = s;
    b->stream = stream;
    b->tid = thread_tid(t);
    thread_swap_trace(t, b); /* the old buffer goes under the registry lock */
    return b;
}

/* Fill the current half; a full one goes to the writer, and the owner moves to the
 * other half if the writer has given it back, else drops and counts. */
static void
stream_emit(struct trace_buf *b, uint32_t kind, uint32_t id, uint64_t ts, int64_t value)
{
    if (b->fill == b->cap) {
        uint32_t other = b->cur ^ 1u;
        if (load_acquire(&b->ready[other])) {
            owner_add(&b->dropped, 1);
            return;
        }
        store_release(&b->cur, other);
        store_release(&b->fill, 0);
    }
    b->ev[(size_t)b->cur * b->cap + b->fill] = (struct trace_event){ts, id, kind, value};
    store_release(&b->fill, b->fill + 1);
    if (b->fill == b->cap) {
        b->seq[b->cur] = ++b->next_seq;
        store_release(&b->ready[b->cur], b->cap);
    }
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

static int
drain_half(const struct trace_buf *b, uint32_t h, uint32_t n, double npt,
           struct raw_events *out)
{
    for (uint32_t i = 0; i < n; i++) {
        const struct trace_event *e = &b->ev[(size_t)h * b->cap + i];
        struct raw_event r = {b->tid, clock_since_load_ns(e->ts, npt), e->id, e->kind,
                              e->value};
        if (raw_push(out, &r) < 0)
            return -1;
    }
    return 0;
}

int
trace_drain_buf(struct trace_buf *b, int final, double npt, struct raw_events *out)
{
    if (!b || !b->stream || !trace_current(b))
        return 0;
    uint32_t n0 = load_acquire(&b->ready[0]), n1 = load_acquire(&b->ready[1]);
    /* Both ready: the one handed over first goes first. */
    uint32_t first = n0 && n1 && b->seq[1] < b->seq[0] ? 1 : 0;
    for (uint32_t k = 0; k < 2; k++) {
        uint32_t h = first ^ k, n = h ? n1 : n0;
        if (!n)
            continue;
        if (drain_half(b, h, n, npt, out) < 0)
            return -1;
        store_release(&b->ready[h], 0);
    }
    if (final) {
        b->final_drained = 1; /* under the registry lock: see trace_thread_exit() */
        /* Tracing is off: the owner has stopped filling its half, or will not be
         * read again. */
        uint32_t cur = load_acquire(&b->cur), fill = load_acquire(&b->fill);
        /* A full half was handed over the moment it filled: drained above. */
        if (fill && fill < b->cap && drain_half(b, cur, fill, npt, out) < 0)
            return -1;
    }
    return 0;
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

int
trace_drain(int final, struct raw_events *out, struct trace_thread_name **names,
            size_t *nnames)
{
    double npt = stream_ns_per_tick;
    uint64_t live_dropped = 0;

    if (thread_trace_drain(final, npt, out, names, nnames, &live_dropped) < 0)
        return -1;
    pthread_mutex_lock(&orphan_lock);
    struct trace_buf *list = orphans;
    orphans = NULL;
    pthread_mutex_unlock(&orphan_lock);
    int rc = 0;
    for (struct trace_buf *b = list, *next; b; b = next) {
        next = b->next;
        if (rc == 0 && trace_drain_buf(b, 1, npt, out) < 0)
            rc = -1;
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
    out->dropped = orphans_dropped + live_dropped;
    return rc;
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
    if (b->stream) { /* the half being filled */
        uint32_t cur = load_relaxed(&b->cur), fill = load_relaxed(&b->fill);
        if (fill > b->cap)
            fill = b->cap;
        for (uint32_t i = fill > max ? fill - max : 0; i < fill; i++)
            ev[n++] = b->ev[(size_t)cur * b->cap + i];
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
    *cap = o->buffer_events ? (uint32_t)o->buffer_events : TRACE_DEFAULT_EVENTS;
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
    if (rc == 0)
        store_release(&trace_on, 1);
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
