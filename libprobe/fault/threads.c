/* Native backtraces for dumps, with the stack part's unwinder (DWARF CFI, frame
 * pointers) and the symbol tables pinned when the dumper was enabled: no backtrace(),
 * whose unwinder takes the loader lock through dl_iterate_phdr(), and no dladdr().
 *
 * The calling thread unwinds its own context. Another thread is, in order:
 * - read without a signal when it is blocked in the kernel and the dump is not fatal:
 *   its registers from /proc/self/task/TID/syscall, then a scan of its stack, so a
 *   sleep() or read() it is in is neither cut short nor restarted;
 * - otherwise sent FAULT_SIGNAL, whose handler unwinds its own context into a shared
 *   slot while the dumper waits, bounded. The slot's state word holds the asked
 *   thread's id, so a late answer from a thread given up on can never be taken for
 *   another thread's.
 * A fatal dump first stops every other thread (threads_stop_others): each parks in
 * the handler, answering requests from there, until the process dies; none can end
 * the process, with status 0, while the dump is being written. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <probe/common.h>

#include "fault/fault.h"
#include "numfmt.h"
#include "stack/elfsym.h"
#include "stack/modules.h"
#include "stack/symbolize.h"
#include "stack/unwind.h"

enum { PH_IDLE = 0, PH_ASKED = 1, PH_WRITING = 2, PH_DONE = 3 };
enum { ASK_STACK, ASK_CALL };

#define SLOT_FRAMES (FAULT_NATIVE_MAX + 16)

static uint64_t req_state;      /* tid << 2 | phase */
static int req_kind;
static void (*req_fn)(void);
static uintptr_t req_pcs[SLOT_FRAMES];
static unsigned req_n;
static int req_poisoned;        /* an answer never finished: the slot is not reused */

/* The thread writing a fatal dump: every other thread that gets FAULT_SIGNAL parks. */
static uint64_t fatal_tid;

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

static PROBE_SIGSAFE uintptr_t
context_sp(const ucontext_t *uc)
{
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.sp;
#else
    (void)uc;
    return 0;
#endif
}

/* The stack of the context @uc, innermost first. */
static PROBE_SIGSAFE unsigned
unwind_own(const void *uc, uintptr_t *pcs, unsigned max)
{
    uintptr_t lo = 0, hi = 0;

    if (unwind_stack_bounds(context_sp(uc), &lo, &hi) < 0)
        lo = hi = 0;
    return unwind_context(uc, lo, hi, pcs, max);
}

/* ---- printing ------------------------------------------------------------------- */

/* One frame: "path(function+0xoff)[0xaddr]", as backtrace_symbols() writes it but
 * with names from .symtab too, then " at file:line" where known. A return address
 * (@is_return) is looked up at the call before it. */
static PROBE_SIGSAFE void
print_frame(struct out *o, const struct module_table *t, uintptr_t pc, int is_return)
{
    uintptr_t at = is_return && pc ? pc - 1 : pc;
    const struct module *m = t ? modules_of_pc(t, at) : NULL;
    const char *name = NULL, *file = NULL;
    uintptr_t off = 0;
    unsigned line = 0;

    if (m) {
        out_str(o, m->path[0] ? m->path : "[unknown]");
        out_str(o, "(");
        if (elfsym_lookup_pinned(m, at, &name, &off) == 0) {
            out_str(o, name);
            off += pc - at; /* the offset of the address shown */
        } else {
            off = pc - m->bias;
        }
        out_str(o, "+");
        out_hex(o, off);
        out_str(o, ")");
        (void)symbolize_line_pinned(m, at, &file, &line);
    }
    char path[256];
    uint64_t file_off;
    if (!m && unwind_mapped_file(at, path, sizeof(path), &file_off) == 0) {
        /* Loaded since the tables were read: the file and the offset in it. */
        out_str(o, path);
        out_str(o, "(+");
        out_hex(o, file_off + (pc - at));
        out_str(o, ")");
    }
    out_str(o, "[");
    out_hex(o, pc);
    out_str(o, "]");
    if (file) {
        out_str(o, " at ");
        out_str(o, file);
        out_str(o, ":");
        out_u64(o, line);
    }
    out_str(o, "\n");
}

/* @pcs innermost first; from the frame at @start_pc on when it is there. */
static PROBE_SIGSAFE void
print_frames(struct out *o, const uintptr_t *pcs, unsigned n, const void *start_pc,
             int truncated)
{
    unsigned first = 0, shown = 0, token;
    const struct module_table *t = modules_enter(&token);

    for (unsigned i = 0; start_pc && i < n; i++) {
        if (pcs[i] == (uintptr_t)start_pc) {
            first = i;
            break;
        }
    }
    for (unsigned i = first; i < n && shown < FAULT_NATIVE_MAX && !o->failed; i++, shown++) {
        out_str(o, "  native: #");
        out_u64(o, shown);
        out_str(o, " ");
        print_frame(o, t, pcs[i], i > 0);
    }
    if (t)
        modules_leave(token);
    if (n == 0)
        out_str(o, "  native: (no frames)\n");
    else if (truncated || first + shown < n)
        out_str(o, "  native: ... (deeper frames not shown)\n");
}

PROBE_SIGSAFE void
threads_native_self(struct out *o, const void *ucontext, const void *start_pc)
{
    uintptr_t pcs[SLOT_FRAMES];
    unsigned n;

    if (ucontext) {
        n = unwind_own(ucontext, pcs, SLOT_FRAMES);
    } else {
        ucontext_t uc;
        if (getcontext(&uc) < 0) {
            out_str(o, "  native: (no context)\n");
            return;
        }
        n = unwind_own(&uc, pcs, SLOT_FRAMES);
    }
    print_frames(o, pcs, n, ucontext ? NULL : start_pc, n == SLOT_FRAMES);
}

/* ---- another thread --------------------------------------------------------------- */

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

/* Answer the request in the slot if it is for @self: 1 if it was. */
static PROBE_SIGSAFE int
answer(uint64_t self, void *ucontext)
{
    uint64_t expected = self << 2 | PH_ASKED;

    if (!__atomic_compare_exchange_n(&req_state, &expected, self << 2 | PH_WRITING, 0,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return 0;
    if (req_kind == ASK_CALL) {
        req_fn();
        req_n = 0;
    } else {
        req_n = unwind_own(ucontext, req_pcs, SLOT_FRAMES);
    }
    __atomic_store_n(&req_state, self << 2 | PH_DONE, __ATOMIC_RELEASE);
    return 1;
}

static PROBE_SIGSAFE void
on_request(int sig, siginfo_t *info, void *ucontext)
{
    int saved_errno = errno;
    uint64_t self = fault_gettid();
    int ours = answer(self, ucontext);
    uint64_t dumper = __atomic_load_n(&fatal_tid, __ATOMIC_ACQUIRE);

    if (dumper && dumper != self) {
        /* Stopped for a fatal dump: answer from here until the process dies, or
         * until the dump is over and a previous handler let the program go on. */
        while (__atomic_load_n(&fatal_tid, __ATOMIC_ACQUIRE)) {
            (void)answer(self, ucontext);
            fault_sleep_ns(200000);
        }
    } else if (!ours) {
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
    /* A stopped thread polls the slot; the signal wakes one that is not. */
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

/* The stack and PC of thread @tid if it is blocked in the kernel: 1, or 0 if it is
 * running or runnable, or gone. */
static PROBE_SIGSAFE int
blocked_regs(uint64_t tid, uintptr_t *sp, uintptr_t *pc)
{
    char path[64] = "/proc/self/task/", buf[256];
    size_t n = strlen(path);

    n += numfmt_u64(path + n, tid, 1);
    memcpy(path + n, "/syscall", 9);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    return r > 0 && unwind_syscall_regs(buf, (size_t)r, sp, pc);
}

PROBE_SIGSAFE int
threads_native_other(struct out *o, uint64_t tid, int may_read_blocked)
{
    uintptr_t sp, pc, lo, hi;

    if (may_read_blocked && blocked_regs(tid, &sp, &pc)) {
        uintptr_t pcs[SLOT_FRAMES];
        if (unwind_stack_bounds(sp, &lo, &hi) < 0)
            lo = hi = 0;
        unsigned n = unwind_scan(sp, pc, lo, hi, pcs, SLOT_FRAMES);
        out_str(o, "  native: (blocked in the kernel: read without a signal)\n");
        print_frames(o, pcs, n, NULL, n == SLOT_FRAMES);
        return 0;
    }
    int rc = ask(tid, ASK_STACK);

    if (rc > 0) {
        print_frames(o, req_pcs, req_n, NULL, req_n == SLOT_FRAMES);
        return 0;
    }
    if (rc < 0)
        out_str(o, "  native: (the thread has exited)\n");
    else
        out_str(o, "  native: (the thread did not answer within 100 ms)\n");
    return rc == 0;
}

/* ---- stopping every other thread for a fatal dump -------------------------------- */

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

PROBE_SIGSAFE void
threads_for_each_task(void (*fn)(void *arg, uint64_t tid), void *arg)
{
    char buf[1024] __attribute__((aligned(8)));
    unsigned listed = 0;
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return;
    for (;;) {
        long r = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (r <= 0)
            break;
        for (long off = 0; off < r;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            uint64_t tid = 0;
            int digits = 0;
            off += d->d_reclen;
            for (const char *p = d->d_name; *p >= '0' && *p <= '9'; p++, digits++)
                tid = tid * 10 + (uint64_t)(*p - '0');
            if (!digits)
                continue;
            if (++listed > WALK_MAX_THREADS)
                goto out;
            fn(arg, tid);
        }
    }
out:
    close(fd);
}

static PROBE_SIGSAFE void
stop_one(void *arg, uint64_t tid)
{
    uint64_t self = *(const uint64_t *)arg;

    if (tid != self)
        (void)syscall(SYS_tgkill, (long)getpid(), (long)tid, (long)FAULT_SIGNAL);
}

PROBE_SIGSAFE void
threads_stop_others(void)
{
    uint64_t self = fault_gettid(), none = 0;

    if (!__atomic_compare_exchange_n(&fatal_tid, &none, self, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    threads_for_each_task(stop_one, &self);
}

PROBE_SIGSAFE void
threads_release_others(void)
{
    __atomic_store_n(&fatal_tid, 0, __ATOMIC_RELEASE);
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

/* ---- setup ------------------------------------------------------------------------ */

static void
threads_init_once(void)
{
    struct sigaction sa = {.sa_sigaction = on_request,
                           .sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK};

    sigemptyset(&sa.sa_mask);
    if (sigaction(FAULT_SIGNAL, &sa, &previous_action) < 0)
        init_rc = -errno;
    else
        threads_load_tables();
}

int
threads_init(void)
{
    pthread_once(&init_once, threads_init_once);
    return init_rc;
}

void
threads_load_tables(void)
{
    /* Every module loaded now gets names in a dump; one loaded later shows as
     * module+offset until the next enable, registration or watchdog arming. */
    (void)modules_refresh_if_changed();
    (void)elfsym_pin_loaded();
    (void)symbolize_pin_lines();
}
