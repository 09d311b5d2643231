/* The watchdog: probe_fault_dump_later() arms a dedicated thread that dumps every
 * thread when a deadline passes without the watchdog being re-armed or cancelled.
 * It waits with a timed condition wait on CLOCK_MONOTONIC; cancelling joins it. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>

#include "fault/fault.h"

static pthread_mutex_t api_lock = PTHREAD_MUTEX_INITIALIZER; /* serialises arm/cancel */
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond;
static pthread_once_t wd_once = PTHREAD_ONCE_INIT;
static pthread_t wd_thread;
static int wd_running;      /* the thread exists */
static int wd_stop;         /* the thread must return */
static int wd_armed;
static uint64_t wd_gen;     /* bumped by each arming */
static struct timespec wd_deadline;
static double wd_timeout;
static int wd_repeat, wd_fd, wd_exit_after;

static void
ts_add(struct timespec *ts, double s)
{
    time_t whole = (time_t)s; /* 0 < s <= 1e9 */
    ts->tv_sec += whole;
    ts->tv_nsec += (long)((s - (double)whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int
ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *
watchdog_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wd_lock);
    while (!wd_stop) {
        if (!wd_armed) {
            pthread_cond_wait(&wd_cond, &wd_lock);
            continue;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ts_before(&now, &wd_deadline)) {
            /* Timed: wakes up at the deadline at the latest, or when re-armed. */
            (void)pthread_cond_timedwait(&wd_cond, &wd_lock, &wd_deadline);
            continue;
        }
        uint64_t gen = wd_gen;
        struct dump_req req = {
            .fd = wd_fd,
            .all_threads = 1,
            .skip_self = 1,
            .title = "Timeout: ",
            .timeout_s = wd_timeout,
        };
        int exit_after = wd_exit_after;
        pthread_mutex_unlock(&wd_lock);
        (void)dump_write(&req);
        if (exit_after)
            _exit(1);
        pthread_mutex_lock(&wd_lock);
        if (wd_gen == gen) {
            if (wd_repeat)
                ts_add(&wd_deadline, wd_timeout);
            else
                wd_armed = 0;
        }
    }
    pthread_mutex_unlock(&wd_lock);
    return NULL;
}

static void
watchdog_cond_init(void)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wd_cond, &attr);
    pthread_condattr_destroy(&attr);
}

/* A forked child has no watchdog thread: start from nothing. The locks are not taken
 * before fork (cancelling holds api_lock while the thread finishes a dump, which
 * would hold fork up): what they guard is reset here. The condition is renewed too:
 * the parent's thread may be counted as a waiter that will never wake. */
static void
watchdog_atfork_child(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;

    api_lock = fresh;
    wd_lock = fresh;
    watchdog_cond_init();
    wd_running = wd_stop = wd_armed = 0;
}

static void
watchdog_init(void)
{
    watchdog_cond_init();
    pthread_atfork(NULL, NULL, watchdog_atfork_child);
}

PROBE_EXPORT int
probe_fault_dump_later(double timeout_s, int repeat, int fd, int exit_after)
{
    int rc = 0;

    if (!(timeout_s > 0) || isinf(timeout_s) || timeout_s > 1e9 ||
        (repeat && timeout_s < PROBE_FAULT_MIN_REPEAT_S))
        return PROBE_EINVAL;
    if (fd < 0)
        return PROBE_EBADF;
    rc = threads_init();
    if (rc < 0)
        return rc;
    threads_load_tables();
    pthread_once(&wd_once, watchdog_init);
    pthread_mutex_lock(&api_lock);
    pthread_mutex_lock(&wd_lock);
    wd_timeout = timeout_s;
    wd_repeat = repeat;
    wd_fd = fd;
    wd_exit_after = exit_after;
    clock_gettime(CLOCK_MONOTONIC, &wd_deadline);
    ts_add(&wd_deadline, timeout_s);
    wd_gen++;
    wd_armed = 1;
    if (!wd_running) {
        sigset_t all, old;
        /* The watchdog takes no signal meant for the program. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int err = pthread_create(&wd_thread, NULL, watchdog_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (err) {
            wd_armed = 0;
            rc = err == EAGAIN ? PROBE_ENOMEM : -err;
        } else {
            wd_running = 1;
        }
    }
    pthread_cond_signal(&wd_cond);
    pthread_mutex_unlock(&wd_lock);
    pthread_mutex_unlock(&api_lock);
    return rc;
}

PROBE_EXPORT void
probe_fault_cancel_dump_later(void)
{
    pthread_mutex_lock(&api_lock);
    pthread_mutex_lock(&wd_lock);
    if (!wd_running) {
        pthread_mutex_unlock(&wd_lock);
        pthread_mutex_unlock(&api_lock);
        return;
    }
    wd_stop = 1;
    wd_armed = 0;
    pthread_cond_signal(&wd_cond);
    pthread_mutex_unlock(&wd_lock);
    pthread_join(wd_thread, NULL);
    pthread_mutex_lock(&wd_lock);
    wd_running = 0;
    wd_stop = 0;
    pthread_mutex_unlock(&wd_lock);
    pthread_mutex_unlock(&api_lock);
}
