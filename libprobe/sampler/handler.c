/* The SIGPROF handler: record the interrupted stack and scopes of the calling thread
 * into its ring. Async-signal-safe: no allocation, no lock, errno kept. */
#include "sampler.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <ucontext.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/atomics.h"

struct slot *slot_list;
struct slot *slot_chunks[SAMPLER_SLOT_CHUNKS];
unsigned slot_count;

/* The SIGPROF action before ours: SIGPROFs that are not our samples go to it. */
static struct sigaction previous;

/* Hand a SIGPROF that is not ours to the program's own handler, if it had one. */
static PROBE_SIGSAFE void
chain(int sig, siginfo_t *si, void *uc)
{
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction)
            previous.sa_sigaction(sig, si, uc);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    }
}

/* The slot a timer signal's value names (index + 1), or NULL: a value we never gave
 * (sigqueue(2) from elsewhere) names none. No pointer from the signal is followed. */
static PROBE_SIGSAFE struct slot *
slot_at(const void *value)
{
    uintptr_t i = (uintptr_t)value;

    if (i == 0 || i > load_acquire(&slot_count))
        return NULL;
    i--;
    struct slot *chunk = load_acquire(&slot_chunks[i / SAMPLER_SLOT_CHUNK]);
    return chunk ? &chunk[i % SAMPLER_SLOT_CHUNK] : NULL;
}

/* A thread libprobe does not know has no stack bounds until the sampler thread finds
 * the mapping that holds its thread pointer, under which glibc puts every thread's
 * stack (timer.c): note the pointer for it. Until then a sample is its PC alone. */
static PROBE_SIGSAFE void
note_thread_pointer(struct slot *s)
{
    if (!load_relaxed(&s->tp_hi))
        store_relaxed(&s->tp_hi, (uintptr_t)pthread_self());
}

static PROBE_SIGSAFE void
sampler_handler(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    struct sample_rec rec;
    struct slot *s;

    if (!si || si->si_code != SI_TIMER || !(s = slot_at(si->si_value.sival_ptr))) {
        errno = saved;
        chain(sig, si, uc); /* with the errno it was interrupted with */
        goto out;
    }
    /* In flight before the armed check, which a release makes the other way round:
     * a release either sees this handler, or this handler sees the slot disarmed. */
    __atomic_add_fetch(&s->inflight, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&s->armed, __ATOMIC_SEQ_CST) ||
        s->tid != (uint64_t)syscall(SYS_gettid)) {
        __atomic_sub_fetch(&s->inflight, 1, __ATOMIC_RELEASE);
        goto out; /* a stopped timer's late signal, or a slot since given away */
    }
    rec.weight = 1 + (uint64_t)(si->si_overrun > 0 ? si->si_overrun : 0);
    rec.blocked = 0;
    uintptr_t hi = load_acquire(&s->stack_hi), lo = hi ? s->stack_lo : 0; /* lo first */
    if (!hi)
        note_thread_pointer(s);
    rec.npcs = unwind_context(uc, lo, hi, rec.pcs, s->max_depth);
    rec.nscopes = thread_scope_ids(rec.scopes, SAMPLER_MAX_SCOPES);
    owner_add(&s->hc.signals, 1);
    owner_add(&s->hc.expirations, rec.weight);
    if (ring_push(&s->ring, &rec) < 0) {
        owner_add(&s->hc.dropped, 1);
        owner_add(&s->hc.dropped_exp, rec.weight);
    }
    __atomic_sub_fetch(&s->inflight, 1, __ATOMIC_RELEASE);
out:
    errno = saved;
}

void
slot_wait_handlers(struct slot *s)
{
    for (unsigned i = 0; i < 100000 && __atomic_load_n(&s->inflight, __ATOMIC_SEQ_CST); i++)
        sched_yield();
}

/* At every start: a handler installed for SIGPROF since the last one (say a fault
 * dump registered for it, probe_fault_register) becomes the one SIGPROFs that are
 * not samples are handed to. */
int
handler_install(void)
{
    struct sigaction sa, cur;

    if (sigaction(SIGPROF, NULL, &cur) < 0)
        return -errno;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == sampler_handler)
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = sampler_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    previous = cur; /* before ours is in place: a chained signal finds it */
    if (sigaction(SIGPROF, &sa, NULL) < 0)
        return -errno;
    return 0;
}
