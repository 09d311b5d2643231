/* Unwinding from a signal's ucontext, bounded by the thread's stack: no read outside
 * [lo, hi), frames strictly moving up the stack, a bounded count.
 *
 * Each frame is unwound by its DWARF CFI when its module's .eh_frame_hdr was
 * recorded at start (cfi.c: code built without frame pointers, gcc -O2's default);
 * else, or when its rules are ones cfi.c does not follow (PLT entries, CFA
 * expressions), by its frame pointer. Modules loaded after probe_sampler_start()
 * have no table until the next start, so their frames take the frame-pointer step;
 * a module dlclose()d after start leaves a stale table whose memory a sample could
 * read (a hazard noted in cfi.h, not solved).
 *
 * Compilers leave leaf functions without a frame even with -fno-omit-frame-pointer,
 * so the frame chain skips the leaf's caller. When the interrupted frame has no
 * usable CFI, its caller's return address is then taken from the top of the stack:
 * when it points into loaded code just after a call instruction, and the frame
 * chain does not already have it. */
#include "sampler.h"

#include <link.h>
#include <ucontext.h>

#include "cfi.h"
#include "core/atomics.h"

#define UNWIND_CODE_RANGES 512

/* The walk reads raw stack words (saved frame pointers, return addresses, the word
 * at the top of the stack), which may lie in an ASan redzone of the interrupted
 * frame: bounded reads of mapped memory, not bugs for ASan to report. */
#define RAW_STACK_READ __attribute__((no_sanitize_address))

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

/* Called at start, while no timer is armed (no handler reads the ranges meanwhile),
 * and not under the sampler lock (dl_iterate_phdr takes the loader lock). */
void
unwind_refresh_code(void)
{
    store_release(&nranges, 0);
    filling = 0;
    dl_iterate_phdr(add_module, NULL);
    /* Sorted by address, for a binary search (in_code runs once per stack word the
     * wall thread scans). Few ranges: an insertion sort. */
    for (unsigned i = 1; i < filling; i++) {
        struct code_range r = ranges[i];
        unsigned j = i;
        for (; j > 0 && ranges[j - 1].lo > r.lo; j--)
            ranges[j] = ranges[j - 1];
        ranges[j] = r;
    }
    store_release(&nranges, filling);
    cfi_refresh();
}

static PROBE_SIGSAFE int
in_code(uintptr_t a)
{
    unsigned lo = 0, hi = load_acquire(&nranges);

    /* The last range starting at or below @a is the only one that may hold it. */
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (ranges[mid].lo <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && a < ranges[lo - 1].hi;
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

/* The frame-pointer step: @r's frame record at r->fp gives its caller's. In code
 * with CFI (whose rules we could not follow here), rbp is likely a general register:
 * the return address must then be one, just after a call. */
static PROBE_SIGSAFE RAW_STACK_READ int
fp_step(struct cfi_regs *r, int is_return, uintptr_t hi)
{
    uintptr_t fp = r->fp;

    if (fp < r->sp || fp > hi - 2 * sizeof(uintptr_t) || (fp & (sizeof(uintptr_t) - 1)))
        return 0;
    const uintptr_t *frame = (const uintptr_t *)fp;
    uintptr_t next = frame[0], ret = frame[1];
    if (!ret || (cfi_has_table(r->pc - (is_return ? 1 : 0)) && !after_call(ret)))
        return 0;
    r->pc = ret;
    r->sp = fp + 2 * sizeof(uintptr_t);
    r->fp = next; /* checked by the next step: above r->sp, or it ends the walk */
    return 1;
}

PROBE_SIGSAFE RAW_STACK_READ unsigned
unwind_context(const void *ucontext, uintptr_t lo, uintptr_t hi, uintptr_t *pcs,
               unsigned max)
{
    const ucontext_t *uc = ucontext;
    unsigned n = 0;

    if (!uc || max == 0)
        return 0;
#if defined(__x86_64__)
    struct cfi_regs r = {
        .pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP],
        .sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP],
        .fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP],
    };

    pcs[n++] = r.pc;
    if (r.sp < lo || r.sp >= hi || hi - lo < 2 * sizeof(uintptr_t))
        return n; /* not on the thread's stack (a coroutine, an alternate stack) */
    /* One frame per turn, each adds a PC: at most max turns. */
    for (int innermost = 1; n < max; innermost = 0) {
        enum cfi_result c = cfi_step(&r, !innermost, lo, hi);
        if (c == CFI_STEPPED) {
            pcs[n++] = r.pc;
            continue;
        }
        if (c == CFI_END)
            break;
        /* No usable CFI. A leaf without a frame: its caller's return address is at
         * the top of the stack, unless the frame chain starts with it anyway. */
        uintptr_t sp = r.sp, fp = r.fp;
        if (innermost && sp <= hi - sizeof(uintptr_t) && !(sp & (sizeof(uintptr_t) - 1))) {
            uintptr_t top = *(const uintptr_t *)sp;
            int chained = fp >= sp && fp <= hi - 2 * sizeof(uintptr_t) &&
                          !(fp & (sizeof(uintptr_t) - 1)) &&
                          ((const uintptr_t *)fp)[1] == top;
            if (!chained && top != r.pc && after_call(top)) {
                /* Its caller's frame as at the call: CFI may go on from there. */
                pcs[n++] = top;
                r.pc = top;
                r.sp = sp + sizeof(uintptr_t);
                continue;
            }
        }
        if (!fp_step(&r, !innermost, hi))
            break;
        pcs[n++] = r.pc;
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
