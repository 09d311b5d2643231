/* The timeline: per-thread event buffers that PROBE_SCOPE, PROBE_COUNT and
 * probe_trace_instant() write while tracing is on (<probe/trace.h>). Like the
 * statistics, a buffer has one writer, its thread; readers (snapshots) copy it with
 * atomic loads and discard what was overwritten while they copied. */
#ifndef PROBE_CORE_TRACE_H
#define PROBE_CORE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "attrs.h"

struct thread_state;

/* 24 bytes. For an instant, @value holds the interned name's address. */
struct trace_event {
    uint64_t ts;                /* clock ticks */
    uint32_t id;                /* site id; 0 for an instant */
    uint32_t kind;              /* probe_event_kind */
    int64_t value;
};

struct trace_buf {
    struct trace_event *ev;     /* flight: a ring of @cap; stream: a ring of 2 * @cap */
    uint32_t cap;
    uint32_t session;           /* the probe_trace_start() it belongs to */
    uint32_t stream;            /* stream mode */
    uint64_t head;              /* events ever written (published with release) */
    uint64_t dropped;           /* events not kept */
    /* Stream mode: the writer takes [tail, head), partial or not, and publishes the
     * new tail with release; the owner drops what finds the ring full. */
    uint64_t tail;
    uint64_t tail_seen;         /* the owner's copy of tail: reloaded when full */
    uint32_t pos;               /* head % (2 * cap), the owner's */
    uint32_t kick_left;         /* events until the next quarter: wake the writer */
    uint32_t final_drained;     /* the stream's last drain took its events */
    uint64_t tid;               /* for the stream writer */
    char name[32];
    struct trace_buf *next;     /* on the orphan list, once its thread has exited */
};

/* Nonzero while tracing: the hot path's only look at the timeline. */
extern int trace_on HIDDEN;
/* thread.c: after trace_on changes, so that scopes take the paths that trace. */
void thread_hot_refresh(void);

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

/* fork(2): no start or stop in progress across it; the child starts with no
 * timeline, and leaves the parent's stream file alone. */
void trace_atfork_prepare(void);
void trace_atfork_parent(void);
void trace_atfork_child(void);

/* A thread is exiting (registry lock held): a stream buffer goes to the writer's
 * orphan list (returns 1: the thread must not free it), a flight ring is the
 * caller's to keep or free (returns 0). */
int trace_thread_exit(struct trace_buf *b, uint64_t tid, const char *name);

/* Stream mode, for the writer. @write gets each buffer's new events, in order per
 * thread, as one or two runs (the ring wraps), raw (ticks: see trace_event_raw()); it
 * returns 0 or a negative error, and the events count as written either way (the
 * writer counts what it failed to write). Live buffers are written from their rings
 * without the registry lock; with @final (tracing is off), the partial rest is copied
 * under it. Returns the events taken, or -1 when out of memory. *ret_dropped is set
 * to the events the threads dropped so far. The names of exited threads drained now,
 * and with @final of every live thread, are appended to @names (grown with realloc;
 * the caller frees it). */
struct trace_thread_name {
    uint64_t tid;
    char name[32];
};
typedef int (*trace_write_fn)(void *ctx, uint64_t tid, const struct trace_event *a,
                              size_t na, const struct trace_event *b, size_t nb);
int64_t trace_drain(int final, trace_write_fn write, void *ctx, uint64_t *ret_dropped,
                    struct trace_thread_name **names, size_t *nnames);
/* For trace_drain(), through thread.c (registry lock held): note @b's new events.
 * @npt and @out are unused. */
int trace_drain_buf(struct trace_buf *b, int final, double npt, struct raw_events *out);
/* A streamed event as the snapshot's type: ns since load, thread = @tid. */
void trace_event_raw(const struct trace_event *e, uint64_t tid, struct raw_event *out);
/* The writer's sleep: trace_stream_sleep_prepare() before it looks for events, then
 * trace_stream_sleep() with its result sleeps until a thread's ring fills another
 * quarter, trace_stream_wake() or @ns pass (with 0: not at all). */
uint32_t trace_stream_sleep_prepare(void);
void trace_stream_sleep(uint32_t token, long ns);
void trace_stream_wake(void);
/* Copy site @id's name into @buf (the writer caches it). 0, or -1 if unknown. */
int trace_site_name(uint32_t id, char *buf, size_t len);

/* The stream writer, implemented by trace/stream.c and installed at load: the core
 * starts and stops it without knowing the file format. */
struct trace_stream_ops {
    int (*open)(const char *path);  /* 0 or a negative PROBE_E* */
    int (*close)(void);             /* after the last drain: 0 or PROBE_EIO */
    void (*forget)(void);           /* in a forked child: drop it all, write nothing */
    int (*dump)(const char *path);  /* write the flight recorder as a Chrome trace */
};

/* probe_stop(): a flight recorder with a path is written there. */
int trace_on_recording_stop(void);
extern const struct trace_stream_ops *trace_stream_backend
    HIDDEN;

#endif
