/* The timeline: per-thread event buffers that PROBE_SCOPE, PROBE_COUNT and
 * probe_trace_instant() write while tracing is on (<probe/trace.h>). Like the
 * statistics, a buffer has one writer, its thread; readers (snapshots) copy it with
 * atomic loads and discard what was overwritten while they copied. */
#ifndef PROBE_CORE_TRACE_H
#define PROBE_CORE_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct thread_state;

/* 24 bytes. For an instant, @value holds the interned name's address. */
struct trace_event {
    uint64_t ts;                /* clock ticks */
    uint32_t id;                /* site id; 0 for an instant */
    uint32_t kind;              /* probe_event_kind */
    int64_t value;
};

struct trace_buf {
    struct trace_event *ev;     /* a ring of @cap events */
    uint32_t cap;
    uint32_t session;           /* the probe_trace_start() it belongs to */
    uint64_t head;              /* events ever written (published with release) */
    uint64_t dropped;           /* events not kept for want of memory */
};

/* Nonzero while tracing: the hot path's only look at the timeline. */
extern int trace_on __attribute__((visibility("hidden")));

/* Append an event to @t's buffer (made on first use in a session). */
void trace_emit(struct thread_state *t, uint32_t kind, uint32_t id, uint64_t ts,
                int64_t value);

/* Does @b hold events of the current (or last) session? */
int trace_current(const struct trace_buf *b);

/* An event copied out of a buffer, for a snapshot. */
struct raw_event {
    size_t thread;              /* listing index */
    uint64_t ts;
    uint32_t id, kind;
    int64_t value;
};

struct raw_events {
    struct raw_event *v;
    size_t n, cap;
    uint64_t dropped;
};

/* Copy @b's events (those of the current session) to @out for listing @thread.
 * Returns the events this buffer lost (overwritten or dropped), or -1 when out of
 * memory. */
int64_t trace_copy(const struct trace_buf *b, size_t thread, struct raw_events *out);

void trace_buf_free(struct trace_buf *b);

/* probe_reset(): the timeline of every thread is forgotten too. */
void trace_reset(void);

#endif
