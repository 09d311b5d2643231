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
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/atomics.h"
#include "core/clock.h"

static void
wall_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* /proc/self/task, for the schedstat files, opened as needed: a thread holds one
 * descriptor (its syscall file), and all of them together at most a quarter of the
 * process's limit, so that sampling never makes the program's own open() fail. A
 * thread beyond that is sampled on its CPU time alone. Under the sampler lock. */
static int task_dir = -1;
static unsigned fds_held;

static unsigned
fd_budget(void)
{
    struct rlimit r;

    if (getrlimit(RLIMIT_NOFILE, &r) < 0 || r.rlim_cur == RLIM_INFINITY)
        return 1u << 20;
    return (unsigned)(r.rlim_cur / 4);
}

/* The thread's time on a CPU plus its time waiting for one, in ns (schedstat). */
static int
busy_ns(const struct slot *s, uint64_t *out)
{
    char path[48], buf[128];
    unsigned long long run, wait;

    snprintf(path, sizeof(path), "%" PRIu64 "/schedstat", s->tid);
    int fd = task_dir >= 0 ? openat(task_dir, path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
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
    char path[48];

    if (task_dir < 0 &&
        (task_dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return PROBE_ENOTSUP;
    if (fds_held >= fd_budget())
        return PROBE_ENOSPC;
    if (!s->wcache && !(s->wcache = malloc(sizeof(*s->wcache))))
        return PROBE_ENOMEM;
    snprintf(path, sizeof(path), "%" PRIu64 "/syscall", s->tid);
    if ((s->sys_fd = openat(task_dir, path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? PROBE_ENOENT : errno == EMFILE ? PROBE_ENOSPC : PROBE_ENOTSUP;
    fds_held++;
    s->look_wall = clock_monotonic_ns();
    s->has_sched = busy_ns(s, &s->look_busy) == 0;
    s->wcache_key = s->wall_ticks = 0;
    s->wall_skip = s->wall_backoff = 0;
    return 0;
}

void
wall_reset(struct slot *s)
{
    if (s->sys_fd < 0)
        return;
    s->look_wall = clock_monotonic_ns();
    s->has_sched = s->has_sched && busy_ns(s, &s->look_busy) == 0;
    s->wcache_key = s->wall_ticks = 0;
    s->wall_skip = s->wall_backoff = 0;
}

/* After fork(): the directory was the parent's /proc/self/task. */
void
wall_atfork_child(void)
{
    if (task_dir >= 0)
        close(task_dir);
    task_dir = -1;
}

void
wall_close(struct slot *s)
{
    if (s->sys_fd >= 0)
        fds_held--;
    wall_close_fd(&s->sys_fd);
}

/* The stack pointer and PC of a thread blocked in the kernel (unwind_syscall_regs):
 * 1, or 0 if it is running or runnable, or gone; @key is a hash of the line. One read
 * per look: no /proc/.../stat, whose formatting costs more than the rest of a look. */
static int
blocked_regs(const struct slot *s, uintptr_t *sp, uintptr_t *pc, uint64_t *key)
{
    char buf[256];
    ssize_t n;

    if (s->sys_fd < 0 || (n = pread(s->sys_fd, buf, sizeof(buf) - 1, 0)) <= 0 ||
        !unwind_syscall_regs(buf, (size_t)n, sp, pc))
        return 0;
    *key = 1469598103934665603u;
    for (ssize_t i = 0; i < n; i++)
        *key = (*key ^ (unsigned char)buf[i]) * 1099511628211u;
    return 1;
}

/* A thread found blocked where it was at the last look, not having run since, is
 * looked at less often: after 1, 2, 4 ... up to WALL_MAX_SKIP ticks. Its off-CPU
 * time is exact whenever it is looked at, so only where that time went can blur,
 * and only for a thread that ran and blocked again between looks; the off-CPU time
 * after its last look before it woke (at most WALL_MAX_SKIP ticks, and at most
 * WALL_MAX_SKIP_NS beyond one interval) is not counted.
 * Counting it at the next look, when the thread is running, would need its CPU time,
 * which schedstat gives only as of its last tick or switch: too stale for that. */
#define WALL_MAX_SKIP 16u
#define WALL_MAX_SKIP_NS 16000000u /* and at most this long: coarse intervals skip none */

/* A blocked sample of @s. When the thread has not run since the last look and is
 * blocked at the same place (the same syscall line, @key), its stack and scopes are
 * those of the last look: the scan is skipped. */
static void
record_blocked(struct slot *s, uint64_t ticks, uintptr_t sp, uintptr_t pc, uint64_t key)
{
    struct sample_rec *rec = s->wcache;
    uint64_t now = clock_monotonic_ns(), busy = 0;
    int have_busy = s->has_sched && busy_ns(s, &busy) == 0;
    uint64_t ns = ticks * s->interval_ns;

    if (have_busy) {
        uint64_t wall = now - s->look_wall, on = busy - s->look_busy;
        ns = wall > on ? wall - on : 0;
    }
    int same = have_busy && busy == s->look_busy && key == s->wcache_key;

    uint64_t most = WALL_MAX_SKIP_NS / s->interval_ns;
    s->wall_backoff = same ? (s->wall_backoff ? 2 * s->wall_backoff : 1) : 0;
    if (s->wall_backoff > WALL_MAX_SKIP)
        s->wall_backoff = WALL_MAX_SKIP;
    if (s->wall_backoff > most)
        s->wall_backoff = (unsigned)most;
    s->wall_skip = s->wall_backoff;
    if (!same) {
        uintptr_t lo = s->stack_lo, hi = s->stack_hi;
        if (!hi) { /* stack bounds not known yet: the scan's reads are safe anyway */
            lo = sp;
            hi = sp + 65536;
        }
        rec->blocked = 1;
        rec->npcs = unwind_scan(sp, pc, lo, hi, rec->pcs, s->max_depth);
        rec->nscopes = thread_scope_ids_of(s->tid, rec->scopes, SAMPLER_MAX_SCOPES);
        s->wcache_key = have_busy ? key : 0;
    }
    if (have_busy) {
        s->look_wall = now;
        s->look_busy = busy;
    }
    rec->weight = ticks;
    rec->ns = ns;
    s->wc.signals++;
    s->wc.expirations += ticks;
    if (ring_push(&s->wring, rec) < 0) {
        s->wc.dropped++;
        s->wc.dropped_exp += ticks;
    }
}

/* One look at every sampled thread; @ticks intervals passed since the last. Called
 * by the sampler thread (monitor.c). A thread on a CPU or runnable is left to its
 * CPU timer. */
void
wall_tick(uint64_t ticks)
{
    pthread_mutex_lock(&sampler_lock);
    for (struct slot *s = slot_list; s; s = s->next) {
        uintptr_t sp, pc;
        uint64_t key;
        if (!s->used || !load_relaxed(&s->armed) || s->sys_fd < 0)
            continue;
        s->wall_ticks += ticks;
        if (s->wall_skip) {
            s->wall_skip--;
            continue;
        }
        if (blocked_regs(s, &sp, &pc, &key))
            record_blocked(s, s->wall_ticks, sp, pc, key);
        else
            s->wall_backoff = 0; /* on a CPU: its timer has it */
        s->wall_ticks = 0;
    }
    pthread_mutex_unlock(&sampler_lock);
}
