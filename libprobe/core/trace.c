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
#include "thread.h"

#define TRACE_DEFAULT_EVENTS 65536u
#define TRACE_MIN_EVENTS 16u
#define TRACE_MAX_EVENTS (1u << 24)
#define TRACE_NAMES 1024

int trace_on;
static uint32_t session;        /* 0 until the first start */
static uint32_t session_cap;
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;

/* Interned instant names: never freed, so events can point at them. */
static const char *names[TRACE_NAMES];
static size_t nnames;

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
    struct trace_buf *b = calloc(1, sizeof(*b));

    if (b)
        b->ev = calloc(cap, sizeof(*b->ev));
    if (!b || !b->ev) {
        trace_buf_free(b);
        return NULL;
    }
    b->cap = cap;
    b->session = s;
    thread_swap_trace(t, b); /* the old buffer goes under the registry lock */
    return b;
}

void
trace_emit(struct thread_state *t, uint32_t kind, uint32_t id, uint64_t ts, int64_t value)
{
    struct trace_buf *b = thread_trace(t);

    if (unlikely(!b || b->session != load_relaxed(&session)) && !(b = trace_attach(t)))
        return;
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

PROBE_EXPORT int
probe_trace_start(const probe_trace_options *opts)
{
    probe_trace_options defaults = PROBE_TRACE_OPTIONS_INIT;
    uint32_t cap;

    if (!opts)
        opts = &defaults;
    if (!options_valid(opts, &cap))
        return PROBE_EINVAL;
    if (opts->mode == PROBE_TRACE_STREAM)
        return PROBE_ENOTSUP;
    pthread_mutex_lock(&trace_lock);
    if (load_relaxed(&trace_on)) {
        pthread_mutex_unlock(&trace_lock);
        return PROBE_EBUSY;
    }
    store_relaxed(&session_cap, cap);
    store_release(&session, session + 1);
    thread_trace_forget(); /* rings of an earlier session */
    store_release(&trace_on, 1);
    pthread_mutex_unlock(&trace_lock);
    return 0;
}

PROBE_EXPORT int
probe_trace_stop(void)
{
    pthread_mutex_lock(&trace_lock);
    store_release(&trace_on, 0);
    pthread_mutex_unlock(&trace_lock);
    return 0;
}

PROBE_EXPORT int
probe_trace_is_active(void)
{
    return load_relaxed(&trace_on);
}

void
trace_reset(void)
{
    /* Buffers of an older session are ignored by snapshots and replaced on their
     * thread's next event; exited threads' rings are freed by the caller. */
    if (load_acquire(&session))
        store_release(&session, session + 1);
}

static const char *
intern(const char *name)
{
    const char *found = NULL;

    pthread_mutex_lock(&trace_lock);
    for (size_t i = 0; i < nnames && !found; i++) {
        if (strcmp(names[i], name) == 0)
            found = names[i];
    }
    if (!found && nnames < TRACE_NAMES && (names[nnames] = strdup(name)))
        found = names[nnames++];
    pthread_mutex_unlock(&trace_lock);
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
