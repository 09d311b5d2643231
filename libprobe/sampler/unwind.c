/* Frame-pointer unwinding from a signal's ucontext, bounded by the thread's stack:
 * no read outside [lo, hi), frames strictly moving up the stack, a bounded count. */
#include "sampler.h"

#include <ucontext.h>

PROBE_SIGSAFE unsigned
unwind_context(const void *ucontext, uintptr_t lo, uintptr_t hi, uintptr_t *pcs,
               unsigned max)
{
    const ucontext_t *uc = ucontext;
    unsigned n = 0;

    if (!uc || max == 0)
        return 0;
#if defined(__x86_64__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    uintptr_t fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];

    pcs[n++] = pc;
    if (sp < lo || sp >= hi)
        return n; /* not on the thread's stack (a coroutine, an alternate stack) */
    while (n < max) {
        if (fp < sp || fp > hi - 2 * sizeof(uintptr_t) || (fp & (sizeof(uintptr_t) - 1)))
            break;
        const uintptr_t *frame = (const uintptr_t *)fp;
        uintptr_t next = frame[0], ret = frame[1];
        if (!ret)
            break;
        pcs[n++] = ret;
        if (next <= fp)
            break;
        sp = fp + 2 * sizeof(uintptr_t);
        fp = next;
    }
#elif defined(__aarch64__)
    (void)lo;
    (void)hi;
    pcs[n++] = (uintptr_t)uc->uc_mcontext.pc;
#else
    (void)lo;
    (void)hi;
    (void)uc;
#endif
    return n;
}
