/* Unwinding from a signal's ucontext, bounded by the thread's stack: no read outside
 * [lo, hi), frames strictly moving up the stack, a bounded count.
 *
 * Each frame is unwound by its DWARF CFI when its module's .eh_frame_hdr is in the
 * module table (cfi.c: code built without frame pointers, gcc -O2's default);
 * else, or when its rules are ones cfi.c does not follow (PLT entries, CFA
 * expressions), by its frame pointer. The table is held (modules_enter) for the
 * whole walk: a refresh does not rewrite it meanwhile.
 *
 * Compilers leave leaf functions without a frame even with -fno-omit-frame-pointer,
 * so the frame chain skips the leaf's caller. When the interrupted frame has no
 * usable CFI, its caller's return address is then taken from the top of the stack:
 * when it points into loaded code just after a call instruction, and the frame
 * chain does not already have it. */
#include "unwind.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <ucontext.h>

#include "cfi.h"
#include "core/atomics.h"

/* How far below its stack a thread's stack pointer may be (an overflow into the
 * guard) for its frames to be unwound from the part that is mapped. */
#define UNWIND_BELOW_STACK 65536u

/* The walk reads raw stack words (saved frame pointers, return addresses, the word
 * at the top of the stack), which may lie in an ASan redzone of the interrupted
 * frame: bounded reads of mapped memory, not bugs for ASan to report. */
#define RAW_STACK_READ __attribute__((no_sanitize_address))

static PROBE_SIGSAFE int
in_code(const struct module_table *t, uintptr_t a)
{
    return modules_of_pc(t, a) != NULL;
}

/* @ra returns from a direct call (E8 rel32) or an indirect one (FF /2). */
static PROBE_SIGSAFE int
after_call(const struct module_table *t, uintptr_t ra)
{
    if (!in_code(t, ra) || !in_code(t, ra - 7))
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
fp_step(const struct module_table *t, struct cfi_regs *r, int is_return, uintptr_t lo,
        uintptr_t hi)
{
    uintptr_t fp = r->fp;

    if (fp < r->sp || fp < lo || fp > hi - 2 * sizeof(uintptr_t) ||
        (fp & (sizeof(uintptr_t) - 1)))
        return 0;
    const uintptr_t *frame = (const uintptr_t *)fp;
    uintptr_t next = frame[0], ret = frame[1];
    if (!ret || (cfi_has_table_in(t, r->pc - (is_return ? 1 : 0)) && !after_call(t, ret)))
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
    unsigned n = 0, token;

    if (!uc || max == 0)
        return 0;
    const struct module_table *t = modules_enter(&token);
#if defined(__x86_64__)
    struct cfi_regs r = {
        .pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP],
        .sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP],
        .fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP],
    };

    pcs[n++] = r.pc;
    /* Not on the thread's stack (a coroutine, an alternate stack), unless just below
     * it: a stack overflow, where every read is still checked against @lo. */
    if (r.sp >= hi || r.sp + UNWIND_BELOW_STACK < lo || hi - lo < 2 * sizeof(uintptr_t))
        goto out;
    /* One frame per turn, each adds a PC: at most max turns. */
    for (int innermost = 1; n < max; innermost = 0) {
        enum cfi_result c = t ? cfi_step_in(t, &r, !innermost, lo, hi) : CFI_NONE;
        if (c == CFI_STEPPED) {
            pcs[n++] = r.pc;
            continue;
        }
        if (c == CFI_END)
            break;
        /* No usable CFI. A leaf without a frame: its caller's return address is at
         * the top of the stack, unless the frame chain starts with it anyway. */
        uintptr_t sp = r.sp, fp = r.fp;
        if (innermost && sp >= lo && sp <= hi - sizeof(uintptr_t) &&
            !(sp & (sizeof(uintptr_t) - 1))) {
            uintptr_t top = *(const uintptr_t *)sp;
            int chained = fp >= sp && fp <= hi - 2 * sizeof(uintptr_t) &&
                          !(fp & (sizeof(uintptr_t) - 1)) &&
                          ((const uintptr_t *)fp)[1] == top;
            if (!chained && top != r.pc && after_call(t, top)) {
                /* Its caller's frame as at the call: CFI may go on from there. */
                pcs[n++] = top;
                r.pc = top;
                r.sp = sp + sizeof(uintptr_t);
                continue;
            }
        }
        if (!fp_step(t, &r, !innermost, lo, hi))
            break;
        pcs[n++] = r.pc;
    }
out:
#elif defined(__aarch64__)
    (void)lo;
    (void)hi;
    pcs[n++] = (uintptr_t)uc->uc_mcontext.pc;
#else
    (void)lo;
    (void)hi;
    (void)uc;
#endif
    if (t)
        modules_leave(token);
    return n;
}

/* ---- scanning a blocked thread's stack (the wall thread, not a handler) ---------- */

/* Another thread's memory is read with process_vm_readv(2), which fails where a
 * load would fault: the stack of a thread libprobe does not know has no exact
 * bounds, and code a stale pointer names may have been unloaded since. */
static int
safe_read(uintptr_t a, void *buf, size_t len)
{
    struct iovec local = {buf, len}, remote = {(void *)a, len};

    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

/* after_call() with the code bytes read safely. */
static int
after_call_safe(const struct module_table *t, uintptr_t ra)
{
    unsigned char b[7];

    if (!in_code(t, ra) || !in_code(t, ra - 7) || safe_read(ra - 7, b, sizeof(b)) < 0)
        return 0;
    if (b[2] == 0xE8)
        return 1;
    for (int len = 2; len <= 7; len++) {
        if (b[7 - len] == 0xFF && ((b[8 - len] >> 3) & 7) == 2)
            return 1;
    }
    return 0;
}

/* The stack words from @sp, copied once; words beyond the copy are read one by one. */
#define SCAN_WORDS 512u /* how far frameless callers may reach */

struct scan {
    const struct module_table *t;
    uintptr_t sp, hi;
    uintptr_t w[SCAN_WORDS];
    unsigned n;             /* words copied */
};

static int
scan_word(const struct scan *c, uintptr_t a, uintptr_t *out)
{
    if (a < c->sp || a >= c->hi || (a & (sizeof(uintptr_t) - 1)))
        return -1;
    if ((a - c->sp) / sizeof(uintptr_t) < c->n) {
        *out = c->w[(a - c->sp) / sizeof(uintptr_t)];
        return 0;
    }
    return safe_read(a, out, sizeof(*out));
}

/* A frame record at @a: the saved frame pointer above it and a return address just
 * after a call. */
static int
frame_record1(const struct scan *c, uintptr_t a, uintptr_t *next)
{
    uintptr_t fp, ret;

    return scan_word(c, a, &fp) == 0 && scan_word(c, a + sizeof(uintptr_t), &ret) == 0 &&
           fp > a && fp <= c->hi - 2 * sizeof(uintptr_t) && !(fp & (sizeof(uintptr_t) - 1)) &&
           after_call_safe(c->t, ret) && (*next = fp, 1);
}

/* A frame record whose caller's is one too, or is the outermost (return address 0):
 * a word pair in a frameless function's locals rarely passes both. */
static int
frame_record(const struct scan *c, uintptr_t a)
{
    uintptr_t next, next2, ret;

    if (!frame_record1(c, a, &next))
        return 0;
    return frame_record1(c, next, &next2) ||
           (scan_word(c, next + sizeof(uintptr_t), &ret) == 0 && ret == 0);
}

PROBE_SIGSAFE unsigned
unwind_scan(uintptr_t sp, uintptr_t pc, uintptr_t lo, uintptr_t hi, uintptr_t *pcs,
            unsigned max)
{
    struct scan c; /* 4 KiB: on the stack of the wall thread or the dumper */
    unsigned n = 0, token;

    if (max == 0)
        return 0;
    pcs[n++] = pc;
    if (sp < lo || sp >= hi || (sp & (sizeof(uintptr_t) - 1)))
        return n;
    c.t = modules_enter(&token);
    if (!c.t)
        return n;
    c.sp = sp;
    c.hi = hi;
    c.n = 0;
    size_t want = hi - sp < sizeof(c.w) ? hi - sp : sizeof(c.w);
    struct iovec local = {c.w, want}, remote = {(void *)sp, want};
    ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (got <= 0)
        goto out; /* no process_vm_readv here (a seccomp filter): the PC alone */
    c.n = (unsigned)((size_t)got / sizeof(uintptr_t));

    uintptr_t fp = 0;
    /* Frameless callers (libc's wrappers) left only return addresses: take them up to
     * the first frame record, where the frame-pointer chain starts. */
    for (unsigned k = 0; k < c.n && n < max; k++) {
        uintptr_t a = sp + k * sizeof(uintptr_t);
        if (frame_record(&c, a)) {
            fp = a;
            break;
        }
        if (c.w[k] != pc && after_call_safe(c.t, c.w[k]))
            pcs[n++] = c.w[k];
    }
    while (fp && n < max) {
        uintptr_t next, ret;
        if (scan_word(&c, fp, &next) < 0 || scan_word(&c, fp + sizeof(uintptr_t), &ret) < 0 ||
            !after_call_safe(c.t, ret))
            break; /* the outermost frame (0), or not a chain of frames after all */
        pcs[n++] = ret;
        if (next <= fp || next > hi - 2 * sizeof(uintptr_t) ||
            (next & (sizeof(uintptr_t) - 1)))
            break;
        fp = next;
    }
    out:
    modules_leave(token);
    return n;
}

/* ---- stack bounds from /proc/self/maps (async-signal-safe) ---------------------- */

static PROBE_SIGSAFE int
hex_field(const char **p, const char *end, uintptr_t *out)
{
    uintptr_t v = 0;
    int digits = 0;

    for (; *p < end; (*p)++, digits++) {
        char ch = **p;
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else
            break;
        v = v << 4 | d;
    }
    *out = v;
    return digits > 0;
}

/* One line of /proc/self/maps. */
struct maps_entry {
    uintptr_t lo, hi;
    uint64_t offset;
    int readable;
    const char *path;   /* in the reader's buffer: "" for anonymous memory */
    size_t path_len;
};

static PROBE_SIGSAFE int
maps_parse(const char *p, const char *end, struct maps_entry *e)
{
    uintptr_t dummy;

    if (!hex_field(&p, end, &e->lo) || p >= end || *p++ != '-' || !hex_field(&p, end, &e->hi) ||
        p + 5 >= end || *p++ != ' ')
        return 0;
    e->readable = *p == 'r';
    p += 5; /* "rwxp " */
    if (!hex_field(&p, end, &dummy))
        return 0;
    e->offset = dummy;
    /* dev, inode, then spaces up to the path */
    for (int field = 0; field < 2; field++) {
        while (p < end && *p == ' ')
            p++;
        while (p < end && *p != ' ')
            p++;
    }
    while (p < end && *p == ' ')
        p++;
    e->path = p;
    e->path_len = (size_t)(end - p);
    return 1;
}

/* Call @fn on each line of /proc/self/maps until it returns nonzero: its value, or -1
 * when the file cannot be read or no line matched. read(2) only. */
static PROBE_SIGSAFE int
maps_each(int (*fn)(void *arg, const struct maps_entry *e), void *arg)
{
    char buf[2048];
    size_t have = 0;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), found = -1;

    if (fd < 0)
        return -1;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof(buf) - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 && have == 0)
            break;
        have += r > 0 ? (size_t)r : 0;
        char *nl = memchr(buf, '\n', have);
        if (!nl && r > 0 && have < sizeof(buf))
            continue; /* a partial line: read more */
        struct maps_entry e;
        if (maps_parse(buf, nl ? nl : buf + have, &e) && (found = fn(arg, &e)) != 0)
            break;
        found = -1;
        size_t used = nl ? (size_t)(nl + 1 - buf) : have; /* an overlong line: skip */
        memmove(buf, buf + used, have - used);
        have -= used;
        if (r <= 0 && have == 0)
            break;
    }
    close(fd);
    return found;
}

struct bounds_req {
    uintptr_t sp, lo, hi;
};

static PROBE_SIGSAFE int
bounds_of(void *arg, const struct maps_entry *e)
{
    struct bounds_req *b = arg;

    /* The mapping holding @sp, or, for an overflow into the guard page or below a
     * stack that grows down, the first readable one above it. */
    if (!e->readable || b->sp >= e->hi || (b->sp < e->lo && e->lo - b->sp > UNWIND_BELOW_STACK))
        return 0;
    b->lo = e->lo;
    b->hi = e->hi;
    return 1;
}

PROBE_SIGSAFE int
unwind_stack_bounds(uintptr_t sp, uintptr_t *ret_lo, uintptr_t *ret_hi)
{
    struct bounds_req b = {.sp = sp};

    if (maps_each(bounds_of, &b) != 1)
        return -1;
    *ret_lo = b.lo;
    *ret_hi = b.hi;
    return 0;
}

struct file_req {
    uintptr_t addr;
    char *path;
    size_t len;
    uint64_t offset;
};

static PROBE_SIGSAFE int
file_of(void *arg, const struct maps_entry *e)
{
    struct file_req *f = arg;

    if (f->addr < e->lo || f->addr >= e->hi)
        return 0;
    if (e->path_len == 0 || e->path[0] != '/' || e->path_len >= f->len)
        return 2; /* anonymous, or a pseudo-file such as [vdso] */
    memcpy(f->path, e->path, e->path_len);
    f->path[e->path_len] = '\0';
    f->offset = e->offset + (f->addr - e->lo);
    return 1;
}

PROBE_SIGSAFE int
unwind_mapped_file(uintptr_t addr, char *path, size_t len, uint64_t *ret_offset)
{
    struct file_req f = {.addr = addr, .path = path, .len = len};

    if (maps_each(file_of, &f) != 1)
        return -1;
    *ret_offset = f.offset;
    return 0;
}

PROBE_SIGSAFE int
unwind_syscall_regs(const char *line, size_t n, uintptr_t *ret_sp, uintptr_t *ret_pc)
{
    uintptr_t v[2] = {0, 0};
    const char *p = line + n;

    if (n >= 7 && memcmp(line, "running", 7) == 0)
        return 0;
    while (p > line && (p[-1] == '\n' || p[-1] == ' ' || p[-1] == '\0'))
        p--;
    /* The last two fields, in hexadecimal with a 0x prefix: the SP, then the PC. */
    for (int k = 1; k >= 0; k--) {
        const char *end = p, *q;
        while (p > line && p[-1] != ' ')
            p--;
        q = p;
        if (end - q < 3 || q[0] != '0' || q[1] != 'x')
            return 0;
        q += 2;
        if (!hex_field(&q, end, &v[k]) || q != end)
            return 0;
        while (p > line && p[-1] == ' ')
            p--;
    }
    if (!v[0] || !v[1])
        return 0;
    *ret_sp = v[0];
    *ret_pc = v[1];
    return 1;
}
