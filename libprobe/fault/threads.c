/* Native backtraces: the calling thread's with backtrace(), another thread's by
 * sending it FAULT_SIGNAL and waiting, bounded, for its handler to fill a shared
 * slot. The slot's state word holds the asked thread's id, so a late answer from a
 * thread that was given up on can never be taken for another thread's. */
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <probe/common.h>

#include "fault/fault.h"

enum { PH_IDLE = 0, PH_ASKED = 1, PH_WRITING = 2, PH_DONE = 3 };
enum { ASK_STACK, ASK_CALL };

#define SLOT_FRAMES (FAULT_NATIVE_MAX + 16)

static uint64_t req_state;      /* tid << 2 | phase */
static int req_kind;
static void (*req_fn)(void);
static void *req_frames[SLOT_FRAMES];
static int req_n;
static const void *req_pc;
static int req_poisoned;        /* an answer never finished: the slot is not reused */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

PROBE_SIGSAFE const void *
threads_context_pc(const void *ucontext)
{
    const ucontext_t *uc = ucontext;

    if (!uc)
        return NULL;
#if defined(__x86_64__)
    return (const void *)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__i386__)
    return (const void *)uc->uc_mcontext.gregs[REG_EIP];
#elif defined(__aarch64__)
    return (const void *)uc->uc_mcontext.pc;
#else
    return NULL;
#endif
}

static PROBE_SIGSAFE void
print_frames(struct out *o, void *const *frames, int n, const void *start_pc)
{
    int first = 0, shown = 0;

    for (int i = 0; start_pc && i < n; i++) {
        if (frames[i] == start_pc) {
            first = i;
            break;
        }
    }
    for (int i = first; i < n && shown < FAULT_NATIVE_MAX && !o->failed; i++, shown++) {
        out_str(o, "  native: #");
        out_u64(o, (uint64_t)shown);
        out_str(o, " ");
        out_flush(o);
        /* No malloc; one frame per call so that each line gets our prefix. */
        backtrace_symbols_fd(&frames[i], 1, o->fd);
    }
    if (n == 0)
        out_str(o, "  native: (no frames)\n");
    else if (n == SLOT_FRAMES || first + shown < n)
        out_str(o, "  native: ... (deeper frames not shown)\n");
}

PROBE_SIGSAFE void
threads_native_self(struct out *o, const void *start_pc)
{
    void *frames[SLOT_FRAMES];
    int n = backtrace(frames, SLOT_FRAMES);

    print_frames(o, frames, n, start_pc);
}

/* The reserved signal's action before ours: a signal that is no request of ours
 * (someone else's use of it) goes there. */
static struct sigaction previous_action;

static PROBE_SIGSAFE void
chain_previous(int sig, siginfo_t *info, void *ucontext)
{
    if (previous_action.sa_flags & SA_SIGINFO) {
        if (previous_action.sa_sigaction)
            previous_action.sa_sigaction(sig, info, ucontext);
    } else if (previous_action.sa_handler != SIG_DFL &&
               previous_action.sa_handler != SIG_IGN) {
        previous_action.sa_handler(sig);
    }
}

static PROBE_SIGSAFE void
on_request(int sig, siginfo_t *info, void *ucontext)
{
    int saved_errno = errno;
    uint64_t self = fault_gettid();
    uint64_t expected = self << 2 | PH_ASKED;

    if (__atomic_compare_exchange_n(&req_state, &expected, self << 2 | PH_WRITING, 0,
                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        if (req_kind == ASK_CALL) {
            req_fn();
            req_n = 0;
        } else {
            req_n = backtrace(req_frames, SLOT_FRAMES);
            req_pc = threads_context_pc(ucontext);
        }
        __atomic_store_n(&req_state, self << 2 | PH_DONE, __ATOMIC_RELEASE);
    } else {
        errno = saved_errno;
        chain_previous(sig, info, ucontext);
    }
    errno = saved_errno;
}

/* 1: answered, 0: no answer in time, -1: no such thread. Under dump_lock() only. */
static PROBE_SIGSAFE int
ask(uint64_t tid, int kind)
{
    const long step = 200000; /* 0.2 ms */

    if (req_poisoned)
        return 0;
    req_kind = kind;
    __atomic_store_n(&req_state, tid << 2 | PH_ASKED, __ATOMIC_RELEASE);
    if (syscall(SYS_tgkill, (long)getpid(), (long)tid, (long)FAULT_SIGNAL) < 0) {
        __atomic_store_n(&req_state, PH_IDLE, __ATOMIC_RELAXED);
        return -1;
    }
    for (long waited = 0; waited <= FAULT_ANSWER_NS; waited += step) {
        if (__atomic_load_n(&req_state, __ATOMIC_ACQUIRE) == (tid << 2 | PH_DONE))
            goto answered;
        fault_sleep_ns(step);
    }
    uint64_t expected = tid << 2 | PH_ASKED;
    if (__atomic_compare_exchange_n(&req_state, &expected, PH_IDLE, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return 0;
    /* It started answering just now: give it one more period. */
    for (long waited = 0; waited <= FAULT_ANSWER_NS; waited += step) {
        if (__atomic_load_n(&req_state, __ATOMIC_ACQUIRE) == (tid << 2 | PH_DONE))
            goto answered;
        fault_sleep_ns(step);
    }
    req_poisoned = 1;
    return 0;
answered:
    __atomic_store_n(&req_state, PH_IDLE, __ATOMIC_RELAXED);
    return 1;
}

PROBE_SIGSAFE int
threads_native_other(struct out *o, uint64_t tid)
{
    int rc = ask(tid, ASK_STACK);

    if (rc > 0) {
        print_frames(o, req_frames, req_n, req_pc);
        return 0;
    }
    if (rc < 0)
        out_str(o, "  native: (the thread has exited)\n");
    else
        out_str(o, "  native: (the thread did not answer within 100 ms)\n");
    return rc == 0;
}

int
threads_run_on_main(void (*fn)(void))
{
    uint64_t main_tid = (uint64_t)getpid();
    int rc;

    if (fault_gettid() == main_tid) {
        fn();
        return 0;
    }
    if (dump_lock() != 1)
        return -1;
    req_fn = fn;
    rc = ask(main_tid, ASK_CALL);
    dump_unlock();
    return rc > 0 ? 0 : -1;
}

static void
threads_init_once(void)
{
    void *frames[2];
    struct sigaction sa = {.sa_sigaction = on_request,
                           .sa_flags = SA_SIGINFO | SA_RESTART};

    /* The first backtrace() loads libgcc_s (dlopen, malloc): never in a handler. */
    (void)backtrace(frames, 2);
    sigemptyset(&sa.sa_mask);
    if (sigaction(FAULT_SIGNAL, &sa, &previous_action) < 0)
        init_rc = -errno;
}

int
threads_init(void)
{
    pthread_once(&init_once, threads_init_once);
    return init_rc;
}
