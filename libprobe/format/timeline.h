/*
 * Internal: the snapshot's timeline events replayed thread by thread, properly
 * nested, for the formatters that need begin/end pairs ("chrome", "speedscope").
 */
#ifndef PROBE_FORMAT_TIMELINE_H
#define PROBE_FORMAT_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#include <probe/report.h>

/* One thread's run of events. */
struct timeline_thread {
    size_t thread;     /* index into the snapshot's threads */
    uint64_t first_ns; /* timestamp of its first kept event */
    uint64_t last_ns;  /* timestamp of its last event */
    size_t begins;     /* BEGIN events kept (each gets an END) */
};

/* One event as replayed: for END, @site and @name are those of the matching BEGIN. */
struct timeline_event {
    probe_event_kind kind;
    uint64_t ts_ns;
    size_t site; /* SIZE_MAX for INSTANT */
    const char *name;
    int64_t value; /* COUNTER only */
    int synthetic; /* an END added to close a scope still open at the end */
};

struct timeline_ops {
    /* Called before a thread's events; may be NULL. */
    int (*thread_begin)(void *ctx, const struct timeline_thread *t);
    int (*event)(void *ctx, const struct timeline_thread *t,
                 const struct timeline_event *e);
    /* Called after a thread's events; may be NULL. */
    int (*thread_end)(void *ctx, const struct timeline_thread *t);
};

/*
 * Replay the snapshot's events through @ops, thread by thread (in the snapshot's
 * order), so that every BEGIN has its END and they nest:
 *  - an END with no open BEGIN (the ring overwrote its BEGIN, or tracing started
 *    inside the scope) is skipped;
 *  - scopes still open after a thread's last event are closed, innermost first, at
 *    that thread's last timestamp.
 * Timestamps are made non-decreasing within a thread. A callback's negative return
 * stops the replay and is returned. @ret_repaired (optional) is set to the number of
 * ENDs skipped plus the number added.
 * @retval 0 Success. @retval PROBE_ENOMEM.
 */
int timeline_replay(const probe_snapshot *snap, const struct timeline_ops *ops, void *ctx,
                    uint64_t *ret_repaired);

/* The number of BEGIN events in the snapshot (0: no timeline of scopes). */
size_t timeline_begin_count(const probe_snapshot *snap);

#endif
