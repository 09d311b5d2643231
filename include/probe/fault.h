/*
 * libprobe: the fault dumper. On a crash (SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL),
 * on a watchdog timeout or on a user signal, write every thread's PROBE_SCOPE stack
 * (innermost first, with file:line) and its native backtrace to a file descriptor.
 * What Python's faulthandler does, for C. Included by <probe/probe.h>.
 *
 * Output (docs/fault.md has a full sample):
 *
 *   Fatal error: Segmentation fault (SIGSEGV)
 *   Fault address: 0x0
 *   Current thread 4242 "worker" (most recent scope first):
 *     scope parse_record at src/parse.c:42 in parse_one
 *     scope load_records at src/load.c:17 in load_all
 *     native: #0 ./server(parse_field+0x1d)[0x5581...]
 *     ...
 *   Thread 4241 "main":
 *     ...
 *
 * The other triggers start with "Timeout: no progress for 2.0 s" or
 * "Dump requested: SIGUSR1" instead. Threads that never used libprobe are listed
 * from /proc/self/task with their native backtrace only.
 *
 * Native backtraces come from glibc's backtrace() and backtrace_symbols_fd(). The
 * dynamic symbol table names only exported functions: link programs with -rdynamic
 * (Meson: export_dynamic: true) to see the names of their non-static functions.
 *
 * The dumper writes with write(2) only, allocates nothing and takes no lock, so it
 * works when the crash happened inside malloc. The native backtraces of other
 * threads are collected by sending each thread a reserved real-time signal
 * (SIGRTMAX - 2: programs using libprobe's fault dumper must leave it alone) and
 * waiting at most 100 ms for its answer; a thread that does not answer (it blocks
 * the signal, or is stopped) is reported as such.
 */
#ifndef PROBE_FAULT_H
#define PROBE_FAULT_H

#include <probe/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Dump the stacks to @p fd when the process receives a fatal signal: SIGSEGV,
 * SIGFPE, SIGABRT, SIGBUS or SIGILL. After the dump the signal's previous
 * disposition is restored and the signal raised again, so the exit status, the
 * core dump and any outer crash reporter are what they would have been without
 * libprobe. If that previous handler recovers from the fault (siglongjmp), the
 * signal stays with it from then on: the next one is not dumped. The handler runs
 * on an alternate signal stack (64 KiB), installed for the calling thread, for the
 * main thread, and for each thread that starts using libprobe while enabled (freed
 * at its exit), so a stack overflow in them is reported too; other threads get one
 * only if they install their own (sigaltstack(2)). A fault inside the dumper does
 * not loop: the process dies by that signal.
 *
 * Calling it again while enabled replaces @p fd and @p all_threads.
 *
 * @param fd           A descriptor open for writing (file or pipe); it is not closed.
 *                     If it is closed later, the dump is lost and the process still
 *                     dies by the original signal.
 * @param all_threads  Nonzero: dump every thread, the faulting one first.
 *                     Zero: the faulting thread only.
 * @retval 0             Success.
 * @retval PROBE_EBADF   @p fd is negative or not open.
 * @retval PROBE_ENOMEM  The alternate signal stack could not be mapped.
 * @retval PROBE_EINVAL  sigaction(2) or sigaltstack(2) refused (errno is kept).
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_fault_enable(int fd, int all_threads);

/**
 * Restore the dispositions the fatal signals had before probe_fault_enable().
 * Idempotent. The alternate signal stacks stay installed.
 *
 * @retval 0  Success (also when not enabled).
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_fault_disable(void);

/**
 * @return 1 when the fatal-signal handler is enabled, 0 when not.
 * @note Thread-safe and async-signal-safe.
 */
PROBE_EXPORT int probe_fault_is_enabled(void);

/**
 * Dump the stacks now, with the header "Dump requested". The calling thread is
 * dumped first.
 *
 * @param fd           A descriptor open for writing; it is not closed.
 * @param all_threads  Nonzero: every thread. Zero: the calling thread only.
 * @retval 0            Success.
 * @retval PROBE_EBADF  @p fd is negative.
 * @retval PROBE_EIO    write(2) failed (the dump is incomplete); errno is kept.
 * @note Thread-safe and async-signal-safe once any probe_fault_* function has
 *       been called outside a signal handler (that call loads the unwinder).
 */
PROBE_EXPORT int probe_fault_dump(int fd, int all_threads);

/**
 * Arm a watchdog: if it is not cancelled or re-armed within @p timeout_s seconds,
 * a dedicated thread dumps every thread (the watchdog itself excluded) to @p fd with
 * the header "Timeout: no progress for <timeout_s> s". Calling it again replaces the
 * previous watchdog and restarts the clock; that is how a program says "progress".
 *
 * @param timeout_s   Seconds, > 0 and finite; with @p repeat, at least
 *                    PROBE_FAULT_MIN_REPEAT_S (dumps back to back would keep the
 *                    process from making any progress).
 * @param repeat      Nonzero: dump again every @p timeout_s until cancelled.
 * @param fd          A descriptor open for writing; it is not closed.
 * @param exit_after  Nonzero: _exit(1) right after the (first) dump.
 * @retval 0             Success.
 * @retval PROBE_EINVAL  @p timeout_s is <= 0, NaN, infinite or too large (> 1e9),
 *                       or below PROBE_FAULT_MIN_REPEAT_S with @p repeat.
 * @retval PROBE_EBADF   @p fd is negative.
 * @retval PROBE_ENOMEM  The watchdog thread could not be created (-errno of
 *                       pthread_create otherwise).
 * @note Thread-safe. Not async-signal-safe. Not inherited by a forked child.
 */
PROBE_EXPORT int probe_fault_dump_later(double timeout_s, int repeat, int fd,
                                        int exit_after);

/** The shortest interval a repeating watchdog accepts, in seconds: 10 ms. */
#define PROBE_FAULT_MIN_REPEAT_S 0.01

/**
 * Cancel the watchdog armed by probe_fault_dump_later(). When it returns, no
 * dump of that watchdog is running or will run. Does nothing when none is armed.
 *
 * @note Thread-safe. Not async-signal-safe. Must not be called from the watchdog's
 *       own dump (it has none: the watchdog runs no user code).
 */
PROBE_EXPORT void probe_fault_cancel_dump_later(void);

/**
 * Dump the stacks to @p fd when the process receives @p signum (SIGUSR1, ...), with
 * the header "Dump requested: SIGUSR1", and keep running. Registering a signal
 * again replaces its fd and options (the first previous handler is kept).
 *
 * @param signum       A signal number. The fatal signals (SIGSEGV, SIGFPE, SIGABRT,
 *                     SIGBUS, SIGILL: see probe_fault_enable()), SIGKILL, SIGSTOP and
 *                     the signal reserved by libprobe are refused.
 * @param fd           A descriptor open for writing; it is not closed.
 * @param all_threads  Nonzero: every thread. Zero: the thread that got the signal.
 * @param chain        Nonzero: after the dump, run the handler the signal had
 *                     before (for SIG_DFL, its default action, which may end the
 *                     process).
 * @retval 0             Success.
 * @retval PROBE_EINVAL  @p signum is out of range or refused, or sigaction failed.
 * @retval PROBE_EBADF   @p fd is negative.
 * @retval PROBE_EBUSY   @p signum is SIGPROF and the sampler is running: its timers
 *                       deliver SIGPROF. (Registered while the sampler is stopped,
 *                       SIGPROF still dumps once it starts: the sampler takes the
 *                       signal back and hands it every SIGPROF that is not one of its
 *                       timers'.)
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_fault_register(int signum, int fd, int all_threads, int chain);

/**
 * Restore the handler @p signum had before probe_fault_register().
 *
 * @retval 0             Success.
 * @retval PROBE_ENOENT  @p signum is not registered.
 * @retval PROBE_EINVAL  @p signum is out of range.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_fault_unregister(int signum);

/* Compiled out: each function above is a stub (the pattern: <probe/common.h>). */
#ifdef PROBE_DISABLE
#define probe_fault_enable probe__off_fault_enable
#define probe_fault_disable probe__off_fault_disable
#define probe_fault_is_enabled probe__off_fault_is_enabled
#define probe_fault_dump probe__off_fault_dump
#define probe_fault_dump_later probe__off_fault_dump_later
#define probe_fault_cancel_dump_later probe__off_fault_cancel_dump_later
#define probe_fault_register probe__off_fault_register
#define probe_fault_unregister probe__off_fault_unregister

PROBE__STUB int probe_fault_enable(int fd, int all_threads)
{
    (void)fd;
    (void)all_threads;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_fault_disable(void) { return PROBE_EDISABLED; }
PROBE__STUB int probe_fault_is_enabled(void) { return 0; }
PROBE__STUB int probe_fault_dump(int fd, int all_threads)
{
    (void)fd;
    (void)all_threads;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_fault_dump_later(double timeout_s, int repeat, int fd,
                                       int exit_after)
{
    (void)timeout_s;
    (void)repeat;
    (void)fd;
    (void)exit_after;
    return PROBE_EDISABLED;
}
PROBE__STUB void probe_fault_cancel_dump_later(void) {}
PROBE__STUB int probe_fault_register(int signum, int fd, int all_threads, int chain)
{
    (void)signum;
    (void)fd;
    (void)all_threads;
    (void)chain;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_fault_unregister(int signum)
{
    (void)signum;
    return PROBE_EDISABLED;
}
#endif /* PROBE_DISABLE */

#ifdef __cplusplus
}
#endif

#endif /* PROBE_FAULT_H */
