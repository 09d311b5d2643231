/* The fatal-signal handler: SIGSEGV, SIGFPE, SIGABRT, SIGBUS and SIGILL dump the
 * stacks, then the previous disposition is restored and the signal raised again, so
 * the process ends exactly as it would have without us. It runs on an alternate
 * signal stack so that a stack overflow can be reported. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <probe/probe.h>

#include "fault/fault.h"

#define ALTSTACK_SIZE (64 * 1024)

static const int fatal_signals[] = {SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL};
#define NFATAL (sizeof(fatal_signals) / sizeof(fatal_signals[0]))

static pthread_mutex_t enable_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction previous[NFATAL];
static int enabled;
static int fatal_fd = -1;
static int fatal_all;
static uint64_t handling_tid;       /* the thread dumping a fatal signal */
static void *main_altstack;         /* mapped for the main thread, installed by it */

static PROBE_SIGSAFE int
fatal_index(int signum)
{
    for (unsigned i = 0; i < NFATAL; i++) {
        if (fatal_signals[i] == signum)
            return (int)i;
    }
    return -1;
}

/* Die by @signum with its default action: for a fault inside the dumper. */
static PROBE_SIGSAFE void
die_by(int signum)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t set;

    sigemptyset(&dfl.sa_mask);
    sigaction(signum, &dfl, NULL);
    sigemptyset(&set);
    sigaddset(&set, signum);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(signum);
}

static PROBE_SIGSAFE void
on_fatal(int signum, siginfo_t *info, void *ucontext)
{
    int saved_errno = errno;
    uint64_t self = fault_gettid();
    uint64_t owner = 0;
    int idx = fatal_index(signum);

    if (!__atomic_compare_exchange_n(&handling_tid, &owner, self, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        if (owner == self) {
            die_by(signum); /* a fault inside the dumper: no loop */
            return;
        }
        /* Another thread is dumping its own crash and will end the process; give it
         * time, then report ours (this thread only: the other holds the slots). */
        for (long long waited = 0; waited < FAULT_LOCK_NS; waited += 1000000)
            fault_sleep_ns(1000000);
    }
    if (__atomic_load_n(&enabled, __ATOMIC_ACQUIRE)) {
        struct dump_req req = {
            .fd = __atomic_load_n(&fatal_fd, __ATOMIC_RELAXED),
            .all_threads = __atomic_load_n(&fatal_all, __ATOMIC_RELAXED),
            .title = "Fatal error: ",
            .signum = signum,
            .info = info,
            .fatal = 1,
            .ucontext = ucontext,
        };
        (void)dump_write(&req);
    }
    /* Hand the signal to whoever had it before us. With SA_NODEFER it is delivered
     * inside raise(): the default action ends the process there. If a previous
     * handler returns instead, so do we, and a fault happens again, as it would
     * have without us. */
    if (idx >= 0)
        sigaction(signum, &previous[idx], NULL);
    else
        die_by(signum);
    /* The other threads stay stopped when the signal's default action ends the
     * process; a handler of the program's own may let it go on. */
    if (idx >= 0 && previous[idx].sa_handler != SIG_DFL)
        threads_release_others();
    /* The dump is over: if the previous handler recovers (siglongjmp), a later fatal
     * signal must find the slot free, or it would be taken for a fault inside the
     * dumper. That signal stays with the previous handler from now on. */
    __atomic_store_n(&handling_tid, 0, __ATOMIC_RELEASE);
    errno = saved_errno;
    raise(signum);
}

/* Map an alternate signal stack (with a guard page below it). NULL on failure. */
static void *
altstack_map(void)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t guard = page > 0 ? (size_t)page : 4096;
    char *p = mmap(NULL, ALTSTACK_SIZE + guard, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

    if (p == MAP_FAILED)
        return NULL;
    (void)mprotect(p, guard, PROT_NONE);
    return p + guard;
}

static void
altstack_unmap(void *base)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t guard = page > 0 ? (size_t)page : 4096;

    munmap((char *)base - guard, ALTSTACK_SIZE + guard);
}

static PROBE_SIGSAFE int
altstack_has(void)
{
    stack_t cur;
    return sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE);
}

static PROBE_SIGSAFE int
altstack_set(void *base)
{
    stack_t ss = {.ss_sp = base, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    return sigaltstack(&ss, NULL) < 0 ? -errno : 0;
}

/* Runs on the main thread (from FAULT_SIGNAL's handler when enabled elsewhere). */
static PROBE_SIGSAFE void
altstack_main_install(void)
{
    if (!altstack_has() && main_altstack)
        (void)altstack_set(main_altstack);
}

/* The calling thread's alternate stack, unless it has one already. The memory is
 * never unmapped: a thread may still have it installed. */
static int
altstack_install_self(void)
{
    int is_main = fault_gettid() == (uint64_t)getpid();

    if (altstack_has())
        return 0;
    void *base = is_main && main_altstack ? main_altstack : altstack_map();
    if (!base)
        return PROBE_ENOMEM;
    if (is_main)
        main_altstack = base;
    return altstack_set(base) < 0 ? PROBE_EINVAL : 0;
}

/* A thread that registers with libprobe while faults are handled gets an alternate
 * stack of its own, so that its stack overflow is reported too; it is unmapped when
 * the thread exits (its own, so nothing else has it installed). */
static __thread void *thread_altstack;

static void
altstack_thread_start(void)
{
    if (!__atomic_load_n(&enabled, __ATOMIC_ACQUIRE) || altstack_has())
        return;
    void *base = altstack_map();
    if (base && altstack_set(base) == 0)
        thread_altstack = base;
    else if (base)
        altstack_unmap(base);
}

static void
altstack_thread_exit(void)
{
    stack_t off = {.ss_flags = SS_DISABLE};

    if (!thread_altstack)
        return;
    if (sigaltstack(&off, NULL) == 0)
        altstack_unmap(thread_altstack);
    thread_altstack = NULL;
}

static int
altstack_install(void)
{
    int rc = altstack_install_self();

    if (rc < 0)
        return rc;
    if (fault_gettid() != (uint64_t)getpid()) {
        if (!main_altstack)
            main_altstack = altstack_map();
        /* Best effort: a main thread that blocks the signal keeps its own stack. */
        if (main_altstack)
            (void)threads_run_on_main(altstack_main_install);
    }
    return 0;
}

PROBE_EXPORT int
probe_fault_enable(int fd, int all_threads)
{
    struct sigaction sa = {.sa_sigaction = on_fatal,
                           .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER};
    int rc;

    if (fd < 0 || fcntl(fd, F_GETFL) < 0)
        return PROBE_EBADF;
    rc = threads_init();
    if (rc < 0)
        return rc;
    threads_load_tables();
    sigemptyset(&sa.sa_mask);
    pthread_mutex_lock(&enable_lock);
    rc = altstack_install();
    if (rc < 0)
        goto out;
    __atomic_store_n(&fatal_fd, fd, __ATOMIC_RELAXED);
    __atomic_store_n(&fatal_all, !!all_threads, __ATOMIC_RELAXED);
    if (!enabled) {
        for (unsigned i = 0; i < NFATAL; i++) {
            if (sigaction(fatal_signals[i], &sa, &previous[i]) < 0) {
                rc = -errno;
                while (i-- > 0)
                    sigaction(fatal_signals[i], &previous[i], NULL);
                goto out;
            }
        }
        __atomic_store_n(&enabled, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&fault_thread_start_hook, altstack_thread_start, __ATOMIC_RELEASE);
        __atomic_store_n(&fault_thread_exit_hook, altstack_thread_exit, __ATOMIC_RELEASE);
    }
out:
    pthread_mutex_unlock(&enable_lock);
    return rc;
}

PROBE_EXPORT int
probe_fault_disable(void)
{
    pthread_mutex_lock(&enable_lock);
    if (enabled) {
        for (unsigned i = 0; i < NFATAL; i++)
            sigaction(fatal_signals[i], &previous[i], NULL);
        __atomic_store_n(&enabled, 0, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&enable_lock);
    return 0;
}

void
fatal_fork_lock(int lock)
{
    if (lock)
        pthread_mutex_lock(&enable_lock);
    else
        pthread_mutex_unlock(&enable_lock);
}

PROBE_EXPORT PROBE_SIGSAFE int
probe_fault_is_enabled(void)
{
    return __atomic_load_n(&enabled, __ATOMIC_ACQUIRE);
}

PROBE_EXPORT PROBE_SIGSAFE int
probe_fault_dump(int fd, int all_threads)
{
    struct dump_req req = {
        .fd = fd,
        .all_threads = all_threads,
        .title = "Dump requested",
        .start_pc = __builtin_return_address(0),
    };

    if (fd < 0)
        return PROBE_EBADF;
    int rc = threads_init();
    if (rc < 0)
        return rc;
    rc = dump_write(&req);
    if (rc < 0) {
        errno = -rc;
        return PROBE_EIO;
    }
    return 0;
}
