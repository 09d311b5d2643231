/* Reading every thread's scope stack from a signal handler (the fault dumper).
 * Lock-free and best effort: it may run while threads are starting, exiting or
 * changing their stacks, and while the registry lock is held by the crashed thread,
 * so it takes no lock, allocates nothing, and bounds every loop. */
#ifndef PROBE_CORE_WALK_H
#define PROBE_CORE_WALK_H

#include <stdint.h>

#include "attrs.h"

#define WALK_MAX_THREADS 4096

struct walk_frame {
    const char *name;       /* NULL if the site cannot be described */
    const char *function;
    const char *file;
    unsigned line;
};

struct trace_buf;

struct walk_thread {
    uint64_t tid;
    const char *name;       /* "" when unnamed */
    int current;            /* the thread running the walk */
    unsigned depth;         /* frames on its stack, beyond-limit ones not included */
    unsigned overflow;      /* scopes open beyond the depth limit */
    const struct trace_buf *trace; /* its timeline (tracing), or NULL */
};

/* One recent timeline event, for a dump: @ago before the thread's newest one, in ns
 * when @in_ns (the clock ratio is known), else in clock ticks. */
struct walk_event {
    unsigned kind;          /* probe_event_kind */
    int in_ns;
    uint64_t ago;
    struct walk_frame site; /* name etc.; name is the instant's for INSTANT */
};

/* The last @max events of @b (oldest first) into @out. Returns how many. */
PROBE_SIGSAFE unsigned trace_recent(const struct trace_buf *b, struct walk_event *out,
                                    unsigned max);

/* Called once per thread, the calling thread first; @frames innermost first. */
typedef void (*walk_fn)(void *arg, const struct walk_thread *t,
                        const struct walk_frame *frames, unsigned n);

/* Walk every live thread known to libprobe. Returns the number walked. The calling
 * thread is walked (first) even if it never used libprobe, with no frames. */
PROBE_SIGSAFE unsigned thread_walk(walk_fn fn, void *arg);

/* Set by the fault handler: called by a thread right after it registers with
 * libprobe (its first use), and by an exiting thread, never under a lock (its
 * alternate signal stack). */
extern void (*fault_thread_start_hook)(void) HIDDEN;
extern void (*fault_thread_exit_hook)(void) HIDDEN;

/* Describe site @id without locking (signal handlers). 0 on success. */
PROBE_SIGSAFE int sites_describe_unlocked(uint32_t id, struct walk_frame *out);

#endif
