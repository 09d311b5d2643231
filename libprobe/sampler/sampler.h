/* The sampler's internals: per-thread slots (timer, stack bounds, sample ring), the
 * signal-side recording, and the aggregation and symbolization done off the signal
 * path. See include/probe/sampler.h for the behaviour. */
#ifndef PROBE_SAMPLER_SAMPLER_H
#define PROBE_SAMPLER_SAMPLER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <probe/sampler.h>

#include "core/samples.h"
#include "core/walk.h"

#define SAMPLER_MAX_SCOPES 32
#define SAMPLER_WORDS_PER_SAMPLE 32  /* buffer_samples counts samples of this size */
#define SAMPLER_MAX_SLOTS 4096       /* bound of the handler's slot check */

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
    uintptr_t pcs[PROBE_SAMPLER_DEPTH_MAX];
    uint32_t scopes[SAMPLER_MAX_SCOPES];
};

/* A thread's sampling state. Slots are never freed while the library is loaded (a
 * signal may still be in flight for a stopped timer): a released slot is reused. */
struct slot {
    struct slot *next;      /* all slots ever made, append-only */
    int used;               /* owned by a thread (under the sampler lock) */
    int armed;              /* the handler may record into it */
    uint64_t tid;
    timer_t timer;
    int has_timer;
    uintptr_t stack_lo, stack_hi;
    unsigned max_depth;
    uint64_t interval_ns;   /* of the timer, for the CPU time of its samples */
    struct ring ring;
    /* Written by the handler only. */
    uint64_t signals, expirations, dropped, dropped_exp;
    /* The handler's counts at the last probe_reset(): reports subtract them. */
    uint64_t base_signals, base_exp, base_dropped, base_dropped_exp;
};

/* ring.c */
int ring_init(struct ring *r, unsigned samples);
void ring_free(struct ring *r);
void ring_clear(struct ring *r);
PROBE_SIGSAFE int ring_push(struct ring *r, const struct sample_rec *s);
/* Pop the oldest sample into @out: 1, or 0 when empty. One drainer at a time. */
int ring_pop(struct ring *r, struct sample_rec *out);

/* unwind.c: the interrupted PC and its callers, innermost first. */
/* Note where loaded code is (at start, outside any handler). */
void unwind_refresh_code(void);
PROBE_SIGSAFE unsigned unwind_context(const void *ucontext, uintptr_t lo, uintptr_t hi,
                                      uintptr_t *pcs, unsigned max);

/* handler.c */
int handler_install(void);
extern struct slot *slot_list __attribute__((visibility("hidden")));

/* aggregate.c: the stack -> weight table, under the sampler lock. */
void agg_samples_drain(struct slot *s);
void agg_samples_totals(const struct slot *s);
/* probe_reset(): forget the merged stacks and the counters (sampler lock held). */
void agg_samples_forget(void);
struct sample_set *agg_samples_build(uint64_t interval_ns, int mode, int running);

/* symbolize.c */
const char *symbolize_pc(uintptr_t pc, int is_return, char *buf, size_t len);

void sampler_init(void);

#endif
