/* Dumps on user signals (SIGUSR1, ...): probe_fault_register() and
 * probe_fault_unregister(). With chain, the previous handler runs after the dump. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include <probe/probe.h>

#include "fault/fault.h"

struct user_signal {
    int registered;
    int fd;
    int all_threads;
    int chain;
    struct sigaction ours;
    struct sigaction previous;
};

static pthread_mutex_t user_lock = PTHREAD_MUTEX_INITIALIZER;
static struct user_signal users[NSIG];

static PROBE_SIGSAFE void
on_user(int signum, siginfo_t *info, void *ucontext)
{
    int saved_errno = errno;
    struct user_signal *u = &users[signum];

    if (signum <= 0 || signum >= NSIG || !__atomic_load_n(&u->registered, __ATOMIC_ACQUIRE))
        return;
    struct dump_req req = {
        .fd = __atomic_load_n(&u->fd, __ATOMIC_RELAXED),
        .all_threads = __atomic_load_n(&u->all_threads, __ATOMIC_RELAXED),
        .title = "Dump requested: ",
        .signum = signum,
        .ucontext = ucontext,
    };
    (void)dump_write(&req);
    if (__atomic_load_n(&u->chain, __ATOMIC_RELAXED)) {
        const struct sigaction *prev = &u->previous;
        if (prev->sa_flags & SA_SIGINFO) {
            errno = saved_errno;
            prev->sa_sigaction(signum, info, ucontext);
        } else if (prev->sa_handler == SIG_DFL) {
            /* Its default action: our handler has SA_NODEFER, so raise() delivers
             * it now (a terminating signal ends the process here). */
            sigaction(signum, prev, NULL);
            errno = saved_errno;
            raise(signum);
            sigaction(signum, &u->ours, NULL);
        } else if (prev->sa_handler != SIG_IGN) {
            errno = saved_errno;
            prev->sa_handler(signum);
        }
    }
    errno = saved_errno;
}

static int
refused(int signum)
{
    return signum <= 0 || signum >= NSIG || signum == SIGSEGV || signum == SIGFPE ||
           signum == SIGABRT || signum == SIGBUS || signum == SIGILL ||
           signum == SIGKILL || signum == SIGSTOP || signum == FAULT_SIGNAL;
}

PROBE_EXPORT int
probe_fault_register(int signum, int fd, int all_threads, int chain)
{
    int rc = 0;

    if (refused(signum))
        return PROBE_EINVAL;
    if (fd < 0)
        return PROBE_EBADF;
    if (signum == SIGPROF && probe_sampler_is_running())
        return PROBE_EBUSY; /* its timers' signal: a dump at every sample */
    rc = threads_init();
    if (rc < 0)
        return rc;
    threads_load_tables(); /* modules loaded since the first call get names too */
    pthread_mutex_lock(&user_lock);
    struct user_signal *u = &users[signum];
    __atomic_store_n(&u->fd, fd, __ATOMIC_RELAXED);
    __atomic_store_n(&u->all_threads, !!all_threads, __ATOMIC_RELAXED);
    __atomic_store_n(&u->chain, !!chain, __ATOMIC_RELAXED);
    if (!u->registered) {
        memset(&u->ours, 0, sizeof(u->ours));
        u->ours.sa_sigaction = on_user;
        u->ours.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK | (chain ? SA_NODEFER : 0);
        sigemptyset(&u->ours.sa_mask);
        /* Mark it registered first: the handler may run as soon as it is set. The
         * previous action is written before the handler can read it. */
        if (sigaction(signum, NULL, &u->previous) < 0) {
            rc = PROBE_EINVAL;
            goto out;
        }
        __atomic_store_n(&u->registered, 1, __ATOMIC_RELEASE);
        if (sigaction(signum, &u->ours, NULL) < 0) {
            __atomic_store_n(&u->registered, 0, __ATOMIC_RELEASE);
            rc = PROBE_EINVAL;
        }
    } else if (!!(u->ours.sa_flags & SA_NODEFER) != !!chain) {
        u->ours.sa_flags ^= SA_NODEFER;
        sigaction(signum, &u->ours, NULL);
    }
out:
    pthread_mutex_unlock(&user_lock);
    return rc;
}

PROBE_EXPORT int
probe_fault_unregister(int signum)
{
    int rc = 0;

    if (signum <= 0 || signum >= NSIG)
        return PROBE_EINVAL;
    pthread_mutex_lock(&user_lock);
    struct user_signal *u = &users[signum];
    if (!u->registered) {
        rc = PROBE_ENOENT;
    } else {
        sigaction(signum, &u->previous, NULL);
        __atomic_store_n(&u->registered, 0, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&user_lock);
    return rc;
}

void
user_fork_lock(int lock)
{
    if (lock)
        pthread_mutex_lock(&user_lock);
    else
        pthread_mutex_unlock(&user_lock);
}
