/* PROBE_SAMPLE_WALL: time on a CPU is sampled by the thread's CPU-time timer, as in
 * CPU mode; time off it by a thread of ours that wakes every interval and looks at
 * every sampled thread. A thread blocked in the kernel is never signalled, since a
 * signal would end its sleep with EINTR (nanosleep, poll, read on a pipe...): the
 * wall thread records it itself, as a blocked sample, from the PC and stack pointer
 * /proc/self/task/TID/syscall reports, its stack scanned for callers, and its open
 * scopes.
 *
 * A blocked sample stands for the thread's exact off-CPU time since the last
 * blocked look: wall time less its time on a CPU and waiting for one, from
 * /proc/self/task/TID/schedstat. Counting ticks instead would be biased on a busy
 * machine, where the wall thread gets a CPU exactly when another thread blocks.
 * Without schedstat, a sample weighs the ticks since the last look. Time spent
 * runnable but waiting for a CPU is in neither kind of sample. */
#include "sampler.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/atomics.h"

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}



static void
wall_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* The thread's time on a CPU plus its time waiting for one, in ns (schedstat). */
static int
busy_ns(const struct slot *s, uint64_t *out)
{
    char buf[128];
    unsigned long long run, wait;
    ssize_t n = pread(s->sched_fd, buf, sizeof(buf) - 1, 0);

    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu", &run, &wait) != 2)
        return -1;
    *out = (uint64_t)run + (uint64_t)wait;
    return 0;
}

int
wall_open(struct slot *s)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/self/task/%" PRIu64 "/stat", s->tid);
    s->stat_fd = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof(path), "/proc/self/task/%" PRIu64 "/syscall", s->tid);
    s->sys_fd = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof(path), "/proc/self/task/%" PRIu64 "/schedstat", s->tid);
    s->sched_fd = open(path, O_RDONLY | O_CLOEXEC);
    s->look_wall = now_ns();
    if (busy_ns(s, &s->look_busy) < 0)
        wall_close_fd(&s->sched_fd);
    if (s->stat_fd < 0) {
        int err = errno;
        wall_close(s);
        return err == ENOENT ? PROBE_ENOENT : PROBE_ENOTSUP;
    }
    return 0;
}

void
wall_close(struct slot *s)
{
    wall_close_fd(&s->stat_fd);
    wall_close_fd(&s->sys_fd);
    wall_close_fd(&s->sched_fd);
}

/* The thread's scheduler state letter ('R' running or runnable, 'S' sleeping, 'D'
 * waiting on I/O...), or 0 when it cannot be read (the thread exited). */
static char
thread_state(const struct slot *s)
{
    char buf[512];
    ssize_t n = pread(s->stat_fd, buf, sizeof(buf) - 1, 0);

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    return p && p[1] == ' ' ? p[2] : 0;
}

/* The stack pointer and PC of a thread blocked in the kernel: 1, or 0 if it is
 * running again ("running") or cannot be read. The line is the syscall number, its
 * six arguments, then the stack pointer and PC (or "-1 sp pc" outside a syscall). */
static int
blocked_regs(const struct slot *s, uintptr_t *sp, uintptr_t *pc)
{
    char buf[256];
    ssize_t n;

    if (s->sys_fd < 0 || (n = pread(s->sys_fd, buf, sizeof(buf) - 1, 0)) <= 0)
        return 0;
    buf[n] = '\0';
    if (strncmp(buf, "running", 7) == 0)
        return 0;
    char *f[9];
    int nf = 0;
    for (char *save = NULL, *t = strtok_r(buf, " \n", &save); t && nf < 9;
         t = strtok_r(NULL, " \n", &save))
        f[nf++] = t;
    if (nf < 3)
        return 0;
    *sp = (uintptr_t)strtoull(f[nf - 2], NULL, 0);
    *pc = (uintptr_t)strtoull(f[nf - 1], NULL, 0);
    return *sp != 0 && *pc != 0;
}

static void
record_blocked(struct slot *s, uint64_t ticks, uintptr_t sp, uintptr_t pc)
{
    static struct sample_rec rec; /* large: not on the stack; under the lock */
    uint64_t now = now_ns(), busy;

    rec.weight = ticks;
    rec.blocked = 1;
    rec.ns = ticks * s->interval_ns;
    if (s->sched_fd >= 0 && busy_ns(s, &busy) == 0) {
        uint64_t wall = now - s->look_wall, on = busy - s->look_busy;
        rec.ns = wall > on ? wall - on : 0;
        s->look_wall = now;
        s->look_busy = busy;
    }
    uintptr_t lo = s->stack_lo, hi = s->stack_hi;
    if (!hi) { /* a thread libprobe does not know: its handler saw where its stack ends */
        lo = sp;
        hi = load_relaxed(&s->tp_hi);
    }
    rec.npcs = unwind_scan(sp, pc, lo, hi, rec.pcs, s->max_depth);
    rec.nscopes = thread_scope_ids_of(s->tid, rec.scopes, SAMPLER_MAX_SCOPES);
    s->wc.signals++;
    s->wc.expirations += ticks;
    if (ring_push(&s->wring, &rec) < 0) {
        s->wc.dropped++;
        s->wc.dropped_exp += ticks;
    }
}

/* One look at every sampled thread; @ticks intervals passed since the last. Called
 * by the sampler thread (monitor.c). */
void
wall_tick(uint64_t ticks)
{
    pthread_mutex_lock(&sampler_lock);
    for (struct slot *s = slot_list; s; s = s->next) {
        if (!s->used || !load_relaxed(&s->armed) || s->stat_fd < 0)
            continue;
        char st = thread_state(s);
        uintptr_t sp, pc;
        /* 'R' is on a CPU or runnable: the thread's CPU timer samples it. */
        if (st && st != 'R' && st != 'Z' && st != 'X' && st != 'x' &&
            blocked_regs(s, &sp, &pc))
            record_blocked(s, ticks, sp, pc);
    }
    pthread_mutex_unlock(&sampler_lock);
}

