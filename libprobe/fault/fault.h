/* The fault dumper's internal interface: the dump writer (dump.c), the collection of
 * other threads' native stacks (threads.c), and what the triggers share. Everything
 * marked PROBE_SIGSAFE runs in signal handlers (STYLE.md, "Signal safety"). */
#ifndef PROBE_FAULT_FAULT_H
#define PROBE_FAULT_FAULT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/walk.h"

#define FAULT_NATIVE_MAX 64          /* native frames printed per thread */
#define FAULT_ANSWER_NS 100000000L   /* how long a thread has to answer: 100 ms */
#define FAULT_LOCK_NS 3000000000LL   /* how long a dump waits for another one: 3 s */

/* The real-time signal that asks a thread for its native stack. */
#define FAULT_SIGNAL (SIGRTMAX - 2)

/* ---- output: write(2) only, with its own number formatting (dump.c) -------------- */

struct out {
    int fd;
    int failed;      /* a write failed: stop writing */
    int err;         /* its errno */
    size_t n;
    char buf[512];
};

PROBE_SIGSAFE void out_flush(struct out *o);
PROBE_SIGSAFE void out_str(struct out *o, const char *s);
PROBE_SIGSAFE void out_u64(struct out *o, uint64_t v);
PROBE_SIGSAFE void out_hex(struct out *o, uint64_t v);
PROBE_SIGSAFE void out_seconds(struct out *o, double s);

/* ---- a dump ------------------------------------------------------------------- */

struct dump_req {
    int fd;
    int all_threads;
    int skip_self;              /* the watchdog thread does not dump itself */
    const char *title;          /* "Fatal error: ", "Dump requested: ", "Timeout: " */
    int signum;                 /* named after title when > 0 */
    double timeout_s;           /* for "Timeout: " */
    const siginfo_t *info;      /* fatal signals: the fault address */
    int fatal;                  /* stop every other thread first (the process dies) */
    const void *ucontext;       /* the current thread's context, from a handler */
    const void *start_pc;       /* without @ucontext: the backtrace starts there */
};

/* Write one dump. 0, or -errno of the write that failed. */
PROBE_SIGSAFE int dump_write(const struct dump_req *req);

/* Name of a signal: "Segmentation fault (SIGSEGV)" when @long_form, else "SIGSEGV". */
PROBE_SIGSAFE void dump_signal_name(struct out *o, int signum, int long_form);

/* ---- native stacks (threads.c) ---------------------------------------------------- */

/* Once: install the FAULT_SIGNAL handler and load the tables names come from
 * (threads_load_tables). Not async-signal-safe the first time; every public entry
 * point calls it first. 0 or a PROBE_E* code. */
int threads_init(void);

/* Scan the loaded modules and pin their symbol and line tables, so that a dump names
 * the frames of every module loaded now. Not async-signal-safe. */
void threads_load_tables(void);

/* Print the calling thread's native stack: from @ucontext (a handler's), or from
 * here, shown from the frame at @start_pc on (a public function's caller). */
PROBE_SIGSAFE void threads_native_self(struct out *o, const void *ucontext,
                                       const void *start_pc);

/* The interrupted program counter in a signal handler's @ucontext, or NULL. */
PROBE_SIGSAFE const void *threads_context_pc(const void *ucontext);

/* Print thread @tid's native stack: read without a signal when it is blocked in the
 * kernel and @may_read_blocked, else asked for by signal. 1 if it did not answer,
 * else 0. */
PROBE_SIGSAFE int threads_native_other(struct out *o, uint64_t tid, int may_read_blocked);

/* Call @fn for every thread of the process (/proc/self/task), at most
 * WALK_MAX_THREADS of them. */
PROBE_SIGSAFE void threads_for_each_task(void (*fn)(void *arg, uint64_t tid), void *arg);

/* A fatal dump: stop every other thread (each parks in its FAULT_SIGNAL handler,
 * still answering requests) so that none ends the process while the dump is written;
 * release them if the program is to go on after all. */
PROBE_SIGSAFE void threads_stop_others(void);
PROBE_SIGSAFE void threads_release_others(void);

/* Run @fn on the main thread (by signalling it), waiting at most 100 ms. 0 if it ran. */
int threads_run_on_main(void (*fn)(void));

/* Serialise dumps: 1 if the caller got the lock, 0 if it is its own (re-entry),
 * -1 if another thread kept it past FAULT_LOCK_NS. */
PROBE_SIGSAFE int dump_lock(void);
PROBE_SIGSAFE void dump_unlock(void);

PROBE_SIGSAFE uint64_t fault_gettid(void);

/* fork() (fork.c): take (@lock 1) or release (0) the lock of the fatal handler's
 * and of the user signals' registrations. */
void fatal_fork_lock(int lock);
void user_fork_lock(int lock);
PROBE_SIGSAFE void fault_sleep_ns(long ns);

#endif
