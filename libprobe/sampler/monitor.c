/* The sampler thread ("probe-sampler", every signal blocked), in both modes. Every
 * SAMPLER_DISCOVER_NS (longer with thousands of threads, so that it costs at most 2%
 * of a CPU) it checks the thread count, and when it moved (or every
 * SAMPLER_FULL_SCAN_NS) lists /proc/self/task, so that threads that never use
 * libprobe get a CPU timer too (within that delay of their start), and the timers of
 * those gone are deleted. In WALL mode it also wakes every interval to look at
 * the blocked threads (wall.c). */
#include "sampler.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/atomics.h"
#include "core/clock.h"

static pthread_t mon_thread;
static int mon_running;         /* the thread exists (under timer.c's ctl_lock) */
static int mon_quit;            /* under mon_mu */
static int mon_wall;
static uint64_t mon_interval;   /* of its wake-ups */
static pthread_mutex_t mon_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mon_cv;

/* The number of threads, cheaply: /proc/self/task's link count is 2 + the threads.
 * 0 when it cannot be had (then every pass scans). */
static unsigned long
thread_links(int task_fd)
{
    struct stat st;

    return task_fd >= 0 && fstat(task_fd, &st) == 0 ? (unsigned long)st.st_nlink : 0;
}

static void *
monitor_main(void *arg)
{
    uint64_t self = (uint64_t)syscall(SYS_gettid);
    uint64_t next = clock_monotonic_ns() + mon_interval, next_discover = next, next_full = 0;
    int task_fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    unsigned long links = 0;

    (void)arg;
    pthread_mutex_lock(&mon_mu);
    while (!mon_quit) {
        struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
        if (pthread_cond_timedwait(&mon_cv, &mon_mu, &ts) != ETIMEDOUT)
            continue; /* woken to quit, or spuriously */
        uint64_t now = clock_monotonic_ns();
        if (now < next)
            continue;
        /* Late (a loaded machine): the ticks missed are weighed in, not lost. */
        uint64_t ticks = 1 + (now - next) / mon_interval;
        next += ticks * mon_interval;
        pthread_mutex_unlock(&mon_mu);
        if (mon_wall)
            wall_tick(ticks);
        if (now >= next_discover) {
            /* Modules loaded or unloaded: new unwind tables, no stale ones. */
            (void)modules_refresh_if_changed();
            /* A full scan when the thread count moved, and every
             * SAMPLER_FULL_SCAN_NS anyway (one thread exiting as another starts). */
            unsigned long now_links = thread_links(task_fd);
            int scan = !now_links || now_links != links || now >= next_full;
            pthread_mutex_lock(&sampler_lock);
            if (scan)
                sampler_discover_threads(self);
            sampler_resolve_stacks();
            pthread_mutex_unlock(&sampler_lock);
            if (scan) {
                links = now_links;
                next_full = now + SAMPLER_FULL_SCAN_NS;
            }
            /* At most 2% of a CPU: with thousands of threads, a scan of
             * /proc/self/task takes long enough to space them out. */
            uint64_t took = clock_monotonic_ns() - now;
            next_discover = now + (took * 50 > SAMPLER_DISCOVER_NS ? took * 50
                                                                   : SAMPLER_DISCOVER_NS);
        }
        pthread_mutex_lock(&mon_mu);
    }
    pthread_mutex_unlock(&mon_mu);
    if (task_fd >= 0)
        close(task_fd);
    return NULL;
}

int
monitor_start(uint64_t interval_ns, int wall)
{
    pthread_condattr_t ca;
    sigset_t all, old;
    int rc;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&mon_cv, &ca);
    pthread_condattr_destroy(&ca);
    mon_wall = wall;
    mon_interval = wall ? interval_ns : SAMPLER_DISCOVER_NS;
    mon_quit = 0;
    /* The thread takes no signal: the program's signals go to its own threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&mon_thread, NULL, monitor_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&mon_cv);
        return rc == EAGAIN ? PROBE_ENOMEM : -rc;
    }
    (void)pthread_setname_np(mon_thread, "probe-sampler");
    mon_running = 1;
    return 0;
}

void
monitor_stop(void)
{
    if (!mon_running)
        return;
    pthread_mutex_lock(&mon_mu);
    mon_quit = 1;
    pthread_cond_signal(&mon_cv);
    pthread_mutex_unlock(&mon_mu);
    pthread_join(mon_thread, NULL);
    pthread_cond_destroy(&mon_cv);
    mon_running = 0;
}

/* The thread is not in the child; its lock may have been held by it. Its walks of
 * the loader's list (modules_refresh_if_changed) are under the module table's lock,
 * which is taken across fork (stack/symbolize.c). */
void
monitor_atfork_child(void)
{
    mon_running = 0;
    pthread_mutex_init(&mon_mu, NULL);
}
