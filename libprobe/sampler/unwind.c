/* Frame-pointer unwinding from a signal's ucontext, bounded by the thread's stack:
 * no read outside [lo, hi), frames strictly moving up the stack, a bounded count.
 *
 * Compilers leave leaf functions without a frame even with -fno-omit-frame-pointer,
 * so the frame chain skips the leaf's caller. Its return address is then at the top
 * of the stack: it is taken when it points into loaded code just after a call
 * instruction, and the frame chain does not already have it. */
#include "sampler.h"

#include <link.h>
#include <ucontext.h>

#include "core/atomics.h"

#define UNWIND_CODE_RANGES 512

struct code_range {
    uintptr_t lo, hi;
};

static struct code_range ranges[UNWIND_CODE_RANGES];
static unsigned nranges;        /* published count, read by handlers */
static unsigned filling;        /* while dl_iterate_phdr runs */

static int
add_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || filling >= UNWIND_CODE_RANGES)
            continue;
        ranges[filling].lo = info->dlpi_addr + ph->p_vaddr;
        ranges[filling].hi = ranges[filling].lo + ph->p_memsz;
        filling++;
    }
    return 0;
}

/* Called at start, under the sampler lock, while no timer is armed: no handler
 * reads the ranges meanwhile. */
void
unwind_refresh_code(void)
{
    store_release(&nranges, 0);
    filling = 0;
    dl_iterate_phdr(add_module, NULL);
    store_release(&nranges, filling);
}

static PROBE_SIGSAFE int
in_code(uintptr_t a)
{
    unsigned n = load_acquire(&nranges);

    for (unsigned i = 0; i < n; i++) {
        if (a >= ranges[i].lo && a < ranges[i].hi)
            return 1;
    }
    return 0;
}

/* @ra returns from a direct call (E8 rel32) or an indirect one (FF /2). */
static PROBE_SIGSAFE int
after_call(uintptr_t ra)
{
    if (!in_code(ra) || !in_code(ra - 7))
        return 0;
    const unsigned char *p = (const unsigned char *)ra;
    if (p[-5] == 0xE8)
        return 1;
    for (int len = 2; len <= 7; len++) {
        if (p[-len] == 0xFF && ((p[-len + 1] >> 3) & 7) == 2)
            return 1;
    }
    return 0;
}

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
    /* A leaf without a frame: its caller's return address is at the top of the
     * stack, unless the frame chain starts with it anyway. */
    if (sp <= hi - sizeof(uintptr_t) && !(sp & (sizeof(uintptr_t) - 1)) && n < max) {
        uintptr_t top = *(const uintptr_t *)sp;
        int chained = fp >= sp && fp <= hi - 2 * sizeof(uintptr_t) &&
                      !(fp & (sizeof(uintptr_t) - 1)) && ((const uintptr_t *)fp)[1] == top;
        if (!chained && top != pc && after_call(top))
            pcs[n++] = top;
    }
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

/* A frame record at @a: the saved frame pointer above it and a return address just
 * after a call. */
static __attribute__((no_sanitize_address, no_sanitize_thread)) int
frame_record1(uintptr_t a, uintptr_t hi)
{
    const uintptr_t *w = (const uintptr_t *)a;

    return w[0] > a && w[0] <= hi - 2 * sizeof(uintptr_t) &&
           !(w[0] & (sizeof(uintptr_t) - 1)) && after_call(w[1]);
}

/* A frame record whose caller's is one too, or is the outermost (return address 0):
 * a word pair in a frameless function's locals rarely passes both. */
static __attribute__((no_sanitize_address, no_sanitize_thread)) int
frame_record(uintptr_t a, uintptr_t hi)
{
    if (!frame_record1(a, hi))
        return 0;
    uintptr_t next = *(const uintptr_t *)a;
    return frame_record1(next, hi) || ((const uintptr_t *)next)[1] == 0;
}

/* Read from another thread, which may wake and write meanwhile: ASan and TSan must
 * not instrument the reads (they are within the thread's stack, always mapped). */
__attribute__((noinline, no_sanitize_address, no_sanitize_thread)) unsigned
unwind_scan(uintptr_t sp, uintptr_t pc, uintptr_t lo, uintptr_t hi, uintptr_t *pcs,
            unsigned max)
{
    const unsigned scan_words = 512; /* how far frameless callers may reach */
    unsigned n = 0;

    if (max == 0)
        return 0;
    pcs[n++] = pc;
    if (sp < lo || sp >= hi || (sp & (sizeof(uintptr_t) - 1)))
        return n;
    uintptr_t a = sp, fp = 0;
    /* Frameless callers (libc's wrappers) left only return addresses: take them up to
     * the first frame record, where the frame-pointer chain starts. */
    for (unsigned k = 0; k < scan_words && a <= hi - 2 * sizeof(uintptr_t) && n < max;
         k++, a += sizeof(uintptr_t)) {
        if (frame_record(a, hi)) {
            fp = a;
            break;
        }
        uintptr_t w = *(const uintptr_t *)a;
        if (w != pc && after_call(w))
            pcs[n++] = w;
    }
    while (fp && n < max) {
        const uintptr_t *frame = (const uintptr_t *)fp;
        uintptr_t next = frame[0], ret = frame[1];
        if (!after_call(ret))
            break; /* the outermost frame (0), or not a chain of frames after all */
        pcs[n++] = ret;
        if (next <= fp || next > hi - 2 * sizeof(uintptr_t) ||
            (next & (sizeof(uintptr_t) - 1)))
            break;
        fp = next;
    }
    return n;
}
