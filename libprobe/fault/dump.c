/* The dump writer: a header naming the trigger, then every thread's PROBE_SCOPE stack
 * and native backtrace. Runs in signal handlers: write(2) only, its own number
 * formatting, no allocation, no lock (a spin with a bounded wait serialises dumps). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/atomics.h"
#include "core/thread.h"
#include "fault/fault.h"
#include "numfmt.h"

/* ---- output ------------------------------------------------------------------- */

PROBE_SIGSAFE void
out_flush(struct out *o)
{
    size_t done = 0;

    while (!o->failed && done < o->n) {
        ssize_t w = write(o->fd, o->buf + done, o->n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            o->failed = 1;
            o->err = w < 0 ? errno : EIO;
            break;
        }
        done += (size_t)w;
    }
    o->n = 0;
}

static PROBE_SIGSAFE void
out_mem(struct out *o, const char *s, size_t len)
{
    while (len > 0 && !o->failed) {
        size_t room = sizeof(o->buf) - o->n;
        size_t k = len < room ? len : room;
        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        len -= k;
        if (o->n == sizeof(o->buf))
            out_flush(o);
    }
}

/* A string; at the end of a line the buffer goes out, so that a fault inside the
 * dumper loses at most the line it was writing. */
PROBE_SIGSAFE void
out_str(struct out *o, const char *s)
{
    size_t len;

    if (!s)
        s = "(null)";
    len = strlen(s);
    out_mem(o, s, len);
    if (len > 0 && s[len - 1] == '\n')
        out_flush(o);
}

/* A name from user data: printable ASCII kept, anything else shown as '?'. */
static PROBE_SIGSAFE void
out_name(struct out *o, const char *s, size_t max)
{
    for (size_t i = 0; s && i < max && s[i]; i++) {
        char c = s[i];
        if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f || c == '"')
            c = '?';
        out_mem(o, &c, 1);
    }
}

PROBE_SIGSAFE void
out_u64(struct out *o, uint64_t v)
{
    char buf[21];
    out_mem(o, buf, numfmt_u64(buf, v, 1));
}

PROBE_SIGSAFE void
out_hex(struct out *o, uint64_t v)
{
    char buf[19];
    out_mem(o, buf, numfmt_hex(buf, v));
}

/* Seconds with at least one and at most three decimals: 2.0, 0.25, 0.001. */
PROBE_SIGSAFE void
out_seconds(struct out *o, double s)
{
    uint64_t ms = (uint64_t)(s * 1000.0 + 0.5);
    char frac[4] = {(char)('0' + ms / 100 % 10), (char)('0' + ms / 10 % 10),
                    (char)('0' + ms % 10), 0};
    size_t n = 3;

    while (n > 1 && frac[n - 1] == '0')
        frac[--n] = '\0';
    out_u64(o, ms / 1000);
    out_str(o, ".");
    out_str(o, frac);
}

/* ---- signal names --------------------------------------------------------------- */

static const struct {
    int signum;
    const char *name;
    const char *desc;
} signal_names[] = {
    {SIGSEGV, "SIGSEGV", "Segmentation fault"},
    {SIGFPE, "SIGFPE", "Floating-point exception"},
    {SIGABRT, "SIGABRT", "Aborted"},
    {SIGBUS, "SIGBUS", "Bus error"},
    {SIGILL, "SIGILL", "Illegal instruction"},
    {SIGHUP, "SIGHUP", "Hangup"},
    {SIGINT, "SIGINT", "Interrupt"},
    {SIGQUIT, "SIGQUIT", "Quit"},
    {SIGTRAP, "SIGTRAP", "Trace/breakpoint trap"},
    {SIGUSR1, "SIGUSR1", "User defined signal 1"},
    {SIGUSR2, "SIGUSR2", "User defined signal 2"},
    {SIGPIPE, "SIGPIPE", "Broken pipe"},
    {SIGALRM, "SIGALRM", "Alarm clock"},
    {SIGTERM, "SIGTERM", "Terminated"},
    {SIGCHLD, "SIGCHLD", "Child exited"},
    {SIGCONT, "SIGCONT", "Continued"},
    {SIGTSTP, "SIGTSTP", "Stopped"},
    {SIGTTIN, "SIGTTIN", "Stopped (tty input)"},
    {SIGTTOU, "SIGTTOU", "Stopped (tty output)"},
    {SIGURG, "SIGURG", "Urgent I/O condition"},
    {SIGXCPU, "SIGXCPU", "CPU time limit exceeded"},
    {SIGXFSZ, "SIGXFSZ", "File size limit exceeded"},
    {SIGVTALRM, "SIGVTALRM", "Virtual timer expired"},
    {SIGPROF, "SIGPROF", "Profiling timer expired"},
    {SIGWINCH, "SIGWINCH", "Window changed"},
    {SIGIO, "SIGIO", "I/O possible"},
    {SIGPWR, "SIGPWR", "Power failure"},
    {SIGSYS, "SIGSYS", "Bad system call"},
};

PROBE_SIGSAFE void
dump_signal_name(struct out *o, int signum, int long_form)
{
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
        if (signal_names[i].signum != signum)
            continue;
        if (long_form) {
            out_str(o, signal_names[i].desc);
            out_str(o, " (");
        }
        out_str(o, signal_names[i].name);
        if (long_form)
            out_str(o, ")");
        return;
    }
    if (signum >= SIGRTMIN && signum <= SIGRTMAX) {
        out_str(o, "SIGRTMIN+");
        out_u64(o, (uint64_t)(signum - SIGRTMIN));
    } else {
        out_str(o, "signal ");
        out_u64(o, (uint64_t)signum);
    }
}

/* ---- serialising dumps ------------------------------------------------------------ */

static uint64_t dump_owner; /* tid of the thread dumping, 0 when none */

PROBE_SIGSAFE uint64_t
fault_gettid(void)
{
    return (uint64_t)syscall(SYS_gettid);
}

PROBE_SIGSAFE void
fault_sleep_ns(long ns)
{
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
    (void)nanosleep(&ts, NULL);
}

PROBE_SIGSAFE int
dump_lock(void)
{
    uint64_t self = fault_gettid();

    for (long long waited = 0;; waited += 1000000) {
        uint64_t expected = 0;
        if (__atomic_compare_exchange_n(&dump_owner, &expected, self, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return 1;
        if (expected == self)
            return 0;
        if (waited >= FAULT_LOCK_NS)
            return -1;
        fault_sleep_ns(1000000);
    }
}

PROBE_SIGSAFE void
dump_unlock(void)
{
    __atomic_store_n(&dump_owner, 0, __ATOMIC_RELEASE);
}

/* ---- the dump ------------------------------------------------------------------- */

/* Threads already dumped from libprobe's registry, so the /proc/self/task pass only
 * adds the others. Used under dump_lock() only. */
#define DUMP_RECENT_EVENTS 8

static uint64_t seen[WALK_MAX_THREADS + 1];
static unsigned nseen;

struct dump_state {
    const struct dump_req *req;
    struct out *o;
    int others;         /* may dump (and ask) the other threads */
    unsigned silent;    /* threads that did not answer */
};

#define DUMP_MAX_SILENT 10 /* after that many threads did not answer, stop asking */

static PROBE_SIGSAFE void
dump_native_other(struct dump_state *st, uint64_t tid)
{
    if (st->silent >= DUMP_MAX_SILENT) {
        out_str(st->o, "  native: (not asked: too many threads did not answer)\n");
        return;
    }
    /* Only a fatal dump signals a blocked thread (the process is dying anyway). */
    st->silent += (unsigned)threads_native_other(st->o, tid, !st->req->fatal);
}

/* The timeline's last events (when tracing): what the thread did just before. */
static PROBE_SIGSAFE void
dump_recent(struct out *o, const struct trace_buf *trace)
{
    static const char *const what[] = {"?", "enter", "leave", "count", "mark"};
    struct walk_event ev[DUMP_RECENT_EVENTS];
    unsigned n = trace_recent(trace, ev, DUMP_RECENT_EVENTS);

    if (n == 0)
        return;
    out_str(o, "  timeline, last ");
    out_u64(o, n);
    out_str(o, " events, oldest first (time before the newest):\n");
    for (unsigned i = 0; i < n; i++) {
        out_str(o, "    -");
        if (!ev[i].in_ns) {
            out_u64(o, ev[i].ago);
            out_str(o, " ticks ");
        } else {
            out_u64(o, ev[i].ago / 1000);
            out_str(o, ".");
            out_u64(o, ev[i].ago / 100 % 10);
            out_str(o, " us ");
        }
        out_str(o, what[ev[i].kind <= 4 ? ev[i].kind : 0]);
        out_str(o, " ");
        out_str(o, ev[i].site.name ? ev[i].site.name : "?");
        out_str(o, "\n");
    }
}

static PROBE_SIGSAFE void
dump_thread(void *arg, const struct walk_thread *t, const struct walk_frame *frames,
            unsigned n)
{
    struct dump_state *st = arg;
    struct out *o = st->o;

    if (st->others && nseen < WALK_MAX_THREADS + 1)
        seen[nseen++] = t->tid;
    if (t->current ? st->req->skip_self : !st->others)
        return;
    out_str(o, t->current ? "Current thread " : "Thread ");
    out_u64(o, t->tid);
    out_str(o, " \"");
    char name[THREAD_NAME_MAX];
    thread_display_name(t->tid, t->name, name);
    out_name(o, name, sizeof(name));
    out_str(o, t->current ? "\" (most recent scope first):\n" : "\":\n");
    if (t->overflow) {
        out_str(o, "  ... ");
        out_u64(o, t->overflow);
        out_str(o, " more recent scopes beyond the depth limit, not shown\n");
    }
    for (unsigned i = 0; i < n; i++) {
        const struct walk_frame *f = &frames[i];
        if (!f->name && !f->function) {
            out_str(o, "  scope ? (site not described)\n");
            continue;
        }
        out_str(o, "  scope ");
        out_str(o, f->name ? f->name : f->function);
        out_str(o, " at ");
        out_str(o, f->file);
        out_str(o, ":");
        out_u64(o, f->line);
        out_str(o, " in ");
        out_str(o, f->function);
        out_str(o, "\n");
    }
    if (n == 0 && !t->overflow)
        out_str(o, "  (no open scope)\n");
    dump_recent(o, t->trace);
    if (t->current) {
        threads_native_self(o, st->req->ucontext, st->req->start_pc);
    } else {
        dump_native_other(st, t->tid);
    }
    out_str(o, "\n");
}

static PROBE_SIGSAFE int
was_seen(uint64_t tid)
{
    for (unsigned i = 0; i < nseen; i++) {
        if (seen[i] == tid)
            return 1;
    }
    return 0;
}

/* The thread's kernel name, from /proc/self/task/<tid>/comm. */
static PROBE_SIGSAFE void
out_comm(struct out *o, uint64_t tid)
{
    char path[64] = "/proc/self/task/";
    char comm[32];
    size_t n = strlen(path);

    n += numfmt_u64(path + n, tid, 1);
    memcpy(path + n, "/comm", 6);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t r = read(fd, comm, sizeof(comm) - 1);
    close(fd);
    if (r <= 0)
        return;
    comm[r] = '\0';
    if (comm[r - 1] == '\n')
        comm[r - 1] = '\0';
    out_name(o, comm, sizeof(comm));
}

static PROBE_SIGSAFE void
dump_unknown_one(void *arg, uint64_t tid)
{
    struct dump_state *st = arg;

    if (tid == fault_gettid() || was_seen(tid))
        return;
    out_str(st->o, "Thread ");
    out_u64(st->o, tid);
    out_str(st->o, " \"");
    out_comm(st->o, tid);
    out_str(st->o, "\" (not registered with libprobe):\n");
    dump_native_other(st, tid);
    out_str(st->o, "\n");
}

/* Threads libprobe does not know (they never used it): native stack only. */
static PROBE_SIGSAFE void
dump_unknown_threads(struct dump_state *st)
{
    threads_for_each_task(dump_unknown_one, st);
}

static PROBE_SIGSAFE void
dump_header(struct out *o, const struct dump_req *req)
{
    out_str(o, req->title);
    if (req->signum > 0)
        dump_signal_name(o, req->signum, req->info != NULL);
    if (req->timeout_s > 0) {
        out_str(o, "no progress for ");
        out_seconds(o, req->timeout_s);
        out_str(o, " s");
    }
    out_str(o, "\n");
    if (req->info) {
        int s = req->signum;
        if (s == SIGSEGV || s == SIGBUS || s == SIGILL || s == SIGFPE) {
            out_str(o, "Fault address: ");
            out_hex(o, (uint64_t)(uintptr_t)req->info->si_addr);
            out_str(o, "\n");
        }
    }
}

PROBE_SIGSAFE int
dump_write(const struct dump_req *req)
{
    int saved_errno = errno;
    struct out o = {.fd = req->fd};
    struct dump_state st = {.req = req, .o = &o};
    sigset_t block, old, pending;
    int pipe_was_pending;

    /* A closed pipe must not kill us with SIGPIPE: block it, and discard it below
     * if our own writes raised it. */
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    sigpending(&pending);
    pipe_was_pending = sigismember(&pending, SIGPIPE);

    if (req->fatal)
        threads_stop_others();
    int locked = dump_lock();
    st.others = locked == 1 && req->all_threads;
    if (locked == 1)
        nseen = 0;

    dump_header(&o, req);
    if (locked < 0 && req->all_threads)
        out_str(&o, "(another dump is still running: other threads not shown)\n");
    thread_walk(dump_thread, &st);
    if (st.others)
        dump_unknown_threads(&st);
    out_flush(&o);
    if (locked == 1)
        dump_unlock();

    sigpending(&pending);
    if (!pipe_was_pending && sigismember(&pending, SIGPIPE)) {
        struct sigaction ign = {.sa_handler = SIG_IGN}, prev;
        /* Setting SIG_IGN discards the pending signal (POSIX). */
        if (sigaction(SIGPIPE, &ign, &prev) == 0)
            sigaction(SIGPIPE, &prev, NULL);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    int rc = o.failed ? -o.err : 0;
    errno = saved_errno;
    return rc;
}
