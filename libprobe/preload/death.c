/* The PROBE_OUTPUT report when the process dies by a fatal signal (SIGSEGV, SIGFPE,
 * SIGABRT, SIGBUS, SIGILL), best effort (docs/environment.md).
 *
 * Installed before the fault dumper, this handler is the disposition the dumper
 * restores and raises the signal to after its dump; without the dumper the kernel
 * delivers to it directly. Writing a report is not async-signal-safe (it allocates
 * and takes locks): the handler runs it on a stack of its own (the signal may be a
 * stack overflow, and the dumper's alternate stack is small), gives up after
 * DEATH_TIMEOUT_S seconds (a lock held by the crashed code) and then, as after a
 * fault inside the report, dies by the original signal, so the exit status is
 * always the one the signal gives. Only where the disposition is still SIG_DFL when
 * the library loads: a program's own handler is left alone. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "preload/preload.h"

#define DEATH_TIMEOUT_S 10
#define DEATH_STACK_SIZE (8u << 20)

static const int fatal_signals[] = {SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL};
#define NFATAL (sizeof(fatal_signals) / sizeof(fatal_signals[0]))

static int dying; /* the first fatal signal, 0 until then */
static ucontext_t report_ctx, handler_ctx;

/* Die by @signum with its default action. */
static void
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
    _exit(128 + signum); /* not reached */
}

/* A fault while writing the report, or the time is up: end as the first signal
 * would have. */
static void
give_up(int signum)
{
    (void)signum;
    die_by(__atomic_load_n(&dying, __ATOMIC_RELAXED));
}

static void
report_on_own_stack(void)
{
    autoreport_write_once();
}

static void
on_fatal(int signum, siginfo_t *info, void *uc)
{
    int first = 0;
    struct sigaction sa = {.sa_handler = give_up, .sa_flags = SA_NODEFER};

    (void)info;
    (void)uc;
    /* A second thread's crash, or one inside the report: the process ends now. */
    if (!__atomic_compare_exchange_n(&dying, &first, signum, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        die_by(first);
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NFATAL; i++)
        sigaction(fatal_signals[i], &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    alarm(DEATH_TIMEOUT_S);

    void *stack = mmap(NULL, DEATH_STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);

    if (stack != MAP_FAILED && getcontext(&report_ctx) == 0) {
        report_ctx.uc_stack.ss_sp = stack;
        report_ctx.uc_stack.ss_size = DEATH_STACK_SIZE;
        report_ctx.uc_link = &handler_ctx;
        makecontext(&report_ctx, report_on_own_stack, 0);
        swapcontext(&handler_ctx, &report_ctx);
    }
    die_by(signum);
}

void
death_init(void)
{
    struct sigaction sa = {.sa_sigaction = on_fatal,
                           .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER};

    if (!autoreport_is_set())
        return;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NFATAL; i++) {
        struct sigaction old;

        if (sigaction(fatal_signals[i], NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
            old.sa_handler == SIG_DFL)
            sigaction(fatal_signals[i], &sa, NULL);
    }
}
