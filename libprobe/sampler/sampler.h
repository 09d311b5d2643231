/* The sampler's internals: per-thread slots (timer, stack bounds, sample ring), the
 * signal-side recording, and the aggregation and symbolization done off the signal
 * path. See include/probe/sampler.h for the behaviour. */
#ifndef PROBE_SAMPLER_SAMPLER_H
#define PROBE_SAMPLER_SAMPLER_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <probe/sampler.h>

#include "core/samples.h"
#include "core/walk.h"

#define SAMPLER_MAX_SCOPES 32
#define SAMPLER_WORDS_PER_SAMPLE 32  /* buffer_samples counts samples of this size */
/* Slots live in chunks that are never freed, found by index from a timer signal's
 * value (index + 1): at most SAMPLER_SLOT_CHUNKS x SAMPLER_SLOT_CHUNK threads at once
 * are sampled. */
#define SAMPLER_SLOT_CHUNK 256u
#define SAMPLER_SLOT_CHUNKS 256u

/* One sample in a ring: a header word of weight, one of counts, the PCs (innermost
 * first), then the scope ids two to a word. */
struct ring {
    uint64_t *w;
    uint64_t mask;          /* capacity in words - 1 (a power of two) */
    uint64_t head;          /* written by the handler (release) */
    uint64_t tail;          /* written by the drainer (release) */
};

struct sample_rec {
    uint64_t weight;
    unsigned npcs, nscopes;
    unsigned blocked;       /* WALL: taken off CPU, by the wall thread */
    uint64_t ns;            /* blocked: the off-CPU time it stands for; else 0 (the
                               weight x the interval) */
    uintptr_t pcs[PROBE_SAMPLER_DEPTH_MAX];
    uint32_t scopes[SAMPLER_MAX_SCOPES];
};

/* What a slot's samples were: samples (signals, or blocked observations), the timer
 * expirations or wall ticks they stand for, and those lost to a full ring. */
struct counts {
    uint64_t signals, expirations, dropped, dropped_exp;
};

/* A thread's sampling state. Slots are never freed while the library is loaded (a
 * signal may still be in flight for a stopped timer): a released slot is reused. */
struct slot {
    struct slot *next;      /* all slots ever made, append-only */
    unsigned index;         /* in the chunks; its timer's signal carries index + 1 */
    int used;               /* owned by a thread (under the sampler lock) */
    int armed;              /* the handler may record into it */
    unsigned inflight;      /* handlers running on it: a release waits for 0 */
    uint64_t tid;
    int foreign;            /* found in /proc/self/task, not known to libprobe */
    uint64_t seen;          /* foreign: the last discovery pass that listed it */
    uintptr_t tp_hi;        /* foreign: where its stack ends, as its handler saw
                               (its thread pointer); 0 until then (atomic) */
    timer_t timer;
    int has_timer;
    uintptr_t stack_lo, stack_hi;
    unsigned max_depth;
    uint64_t interval_ns;   /* of the timer, for the time its samples stand for */
    struct ring ring;       /* written by the handler */
    /* WALL mode: the wall thread's view of the thread. */
    struct ring wring;      /* blocked samples, written by the wall thread */
    int sys_fd;             /* /proc/self/task/TID/syscall, or -1 */
    int has_sched;          /* its schedstat can be read */
    struct sample_rec *wcache; /* the last blocked sample (kept with the slot) */
    uint64_t wcache_key;    /* hash of the syscall line it was taken at; 0: none */
    uint64_t wall_ticks;    /* ticks since its last look */
    unsigned wall_skip, wall_backoff; /* looks to skip; the current backoff */
    uint64_t look_wall, look_busy; /* at the last blocked look: monotonic ns, and the
                                      thread's ns on a CPU or waiting for one */
    struct counts hc;       /* written by the handler only */
    struct counts wc;       /* written by the wall thread only, under the lock */
    struct counts base;     /* hc + wc at the last probe_reset(): reports subtract */
};

extern pthread_mutex_t sampler_lock __attribute__((visibility("hidden")));

/* Wait for the handlers running on @s (its in-flight count) to finish: bounded, so
 * one stopped in a debugger, say, is not waited on forever. The caller has made sure
 * new ones will not use what it is about to change (disarmed @s, withdrawn tables). */
void slot_wait_handlers(struct slot *s);

/* ring.c */
int ring_init(struct ring *r, unsigned samples);
void ring_free(struct ring *r);
void ring_clear(struct ring *r);
PROBE_SIGSAFE int ring_push(struct ring *r, const struct sample_rec *s);
/* Pop the oldest sample into @out: 1, or 0 when empty. One drainer at a time. */
int ring_pop(struct ring *r, struct sample_rec *out);

/* unwind.c: the interrupted PC and its callers, innermost first. */
/* Note where loaded code is, and its CFI tables: at start, and when a module was
 * loaded or unloaded since (unwind_code_changed). Outside any handler, never under
 * the sampler lock, one caller at a time (start, or the sampler thread). */
void unwind_refresh_code(void);
int unwind_code_changed(void);
PROBE_SIGSAFE unsigned unwind_context(const void *ucontext, uintptr_t lo, uintptr_t hi,
                                      uintptr_t *pcs, unsigned max);

/* The callers of a thread blocked in the kernel, found by scanning its stack up
 * from @sp (read from another thread): @pc first, then return addresses, innermost
 * first. Heuristic: a word is taken when it returns just after a call into loaded
 * code; a frame-pointer chain is followed from the first frame record found. */
unsigned unwind_scan(uintptr_t sp, uintptr_t pc, uintptr_t lo, uintptr_t hi,
                     uintptr_t *pcs, unsigned max);

/* wall.c: PROBE_SAMPLE_WALL's looks at blocked threads, under the sampler lock
 * (wall_tick takes it). */
int wall_open(struct slot *s);
void wall_close(struct slot *s);
void wall_tick(uint64_t ticks);
/* probe_reset(): the next look at @s counts from now. */
void wall_reset(struct slot *s);
void wall_atfork_child(void);

/* monitor.c: the sampler thread, in both modes: it finds new threads every
 * SAMPLER_DISCOVER_NS and, in WALL mode, looks at blocked ones every interval.
 * monitor_stop() joins it and must be called without the sampler lock. */
#define SAMPLER_DISCOVER_NS 5000000u
#define SAMPLER_FULL_SCAN_NS 100000000u
int monitor_start(uint64_t interval_ns, int wall);
void monitor_stop(void);
void monitor_atfork_prepare(void);
void monitor_atfork_parent(void);
void monitor_atfork_child(void);

/* timer.c: arm every thread /proc/self/task lists (but @skip_tid), release the
 * foreign ones gone. Under the sampler lock. */
void sampler_discover_threads(uint64_t skip_tid);
/* Give the threads found so far whose thread pointer is known their stack bounds. */
void sampler_resolve_stacks(void);

/* handler.c */
int handler_install(void);
extern struct slot *slot_list __attribute__((visibility("hidden")));
extern struct slot *slot_chunks[SAMPLER_SLOT_CHUNKS] __attribute__((visibility("hidden")));
extern unsigned slot_count __attribute__((visibility("hidden")));

/* aggregate.c: the stack -> weight table, under the sampler lock. */
void agg_samples_drain(struct slot *s);
void agg_samples_totals(const struct slot *s);
/* probe_reset(): forget the merged stacks and the counters (sampler lock held). */
void agg_samples_forget(void);
/* A snapshot's samples: copy the table and counters under the sampler lock, then
 * symbolize without it (agg_samples_build frees the copy). */
struct agg_copy;
struct agg_copy *agg_samples_copy(uint64_t interval_ns, int mode, int running);
struct sample_set *agg_samples_build(struct agg_copy *c);

/* symbolize.c */
const char *symbolize_pc(uintptr_t pc, int is_return, char *buf, size_t len);

void sampler_init(void);

#endif
