/* Instruction counters for budgets. Under Valgrind only callgrind is trusted: a
 * hardware counter there would count Valgrind's translation work too. Callgrind has
 * no request that returns a count, so each run is bracketed by ZERO_STATS and
 * DUMP_STATS_AT(tag) and the dump file is read back (and deleted): its "summary:" is
 * the Ir of the run alone. A call to an empty function, measured the same way, is
 * the harness's cost, subtracted from every run. */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "budget/counter.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND 1
#endif
#endif

/* An empty function the compiler cannot see through: the harness's own cost. */
__attribute__((noinline)) static void
counter_noop(void *arg)
{
    __asm__ volatile("" : : "r"(arg) : "memory");
}

static uint64_t
now_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
counter_on_valgrind(void)
{
#ifdef HAVE_VALGRIND
    return RUNNING_ON_VALGRIND ? 1 : 0;
#else
    return 0;
#endif
}

/* ---- callgrind ------------------------------------------------------------------ */

#ifdef HAVE_VALGRIND
/* Callgrind numbers its dumps per process, from 1: follow it, and start again in a
 * forked child. */
static pid_t cg_pid;
static unsigned cg_next_part;
static unsigned long cg_seq;

/* --callgrind-out-file's value with %p, %q{VAR} and %% expanded, as callgrind does. */
static int
cg_out_file(char *buf, size_t len)
{
    const char *pat = secure_getenv("PROBE_CALLGRIND_OUT_FILE");
    size_t n = 0;

    if (!pat || !*pat)
        pat = "callgrind.out.%p";
    for (const char *p = pat; *p; p++) {
        char piece[64];
        const char *add = piece;

        if (p[0] == '%' && p[1] == 'p') {
            snprintf(piece, sizeof(piece), "%ld", (long)getpid());
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            strcpy(piece, "%");
            p++;
        } else if (p[0] == '%' && p[1] == 'q' && p[2] == '{') {
            const char *end = strchr(p + 3, '}');
            if (!end)
                return -1;
            char var[128];
            size_t vl = (size_t)(end - (p + 3));
            if (vl >= sizeof(var))
                return -1;
            memcpy(var, p + 3, vl);
            var[vl] = '\0';
            add = getenv(var);
            if (!add)
                add = "";
            p = end;
        } else {
            piece[0] = *p;
            piece[1] = '\0';
        }
        size_t al = strlen(add);
        if (n + al >= len)
            return -1;
        memcpy(buf + n, add, al);
        n += al;
    }
    buf[n] = '\0';
    return 0;
}

/* The value after "key: " on its own line in @text, or NULL. */
static const char *
cg_field(const char *text, const char *key)
{
    size_t kl = strlen(key);

    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, key, kl) == 0)
            return line + kl;
    }
    return NULL;
}

/* Read (and delete) the dump tagged @tag: its Ir total. 0 or -1 if not found. */
static int
cg_read_dump(const char *tag, uint64_t *ir)
{
    char base[4096], path[4200], head[8192], want[128];

    if (cg_out_file(base, sizeof(base)) < 0)
        return -1;
    snprintf(want, sizeof(want), "\ndesc: Trigger: Client Request: %s\n", tag);
    /* Dumps the program made itself come between ours: look a little further. */
    for (unsigned part = cg_next_part; part < cg_next_part + 4096; part++) {
        snprintf(path, sizeof(path), "%s.%u", base, part);
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        ssize_t got = read(fd, head, sizeof(head) - 1);
        close(fd);
        if (got <= 0)
            continue;
        head[got] = '\0';
        if (!strstr(head, want))
            continue;
        const char *events = cg_field(head, "events: ");
        const char *summary = cg_field(head, "summary: ");
        if (!events || !summary)
            return -1;
        /* Ir is the first event unless --collect-... options put others first. */
        unsigned skip = 0;
        for (const char *e = events; strncmp(e, "Ir", 2) != 0 || (e[2] != ' ' && e[2] != '\n');
             skip++) {
            e = strpbrk(e, " \n");
            if (!e || *e == '\n')
                return -1;
            e++;
        }
        const char *s = summary;
        char *end;
        unsigned long long v = 0;
        for (unsigned i = 0; i <= skip; i++) {
            errno = 0;
            v = strtoull(s, &end, 10);
            if (end == s || errno)
                return -1;
            s = end;
        }
        unlink(path);
        cg_next_part = part + 1;
        *ir = v;
        return 0;
    }
    return -1;
}

static int
cg_run(void (*fn)(void *), void *arg, uint64_t *ir)
{
    char tag[96];

    if (cg_pid != getpid()) {
        cg_pid = getpid();
        cg_next_part = 1;
    }
    snprintf(tag, sizeof(tag), "probe-budget %ld %lu", (long)cg_pid, ++cg_seq);
    CALLGRIND_ZERO_STATS;
    fn(arg);
    CALLGRIND_DUMP_STATS_AT(tag);
    return cg_read_dump(tag, ir);
}
#endif

/* ---- perf_event_open ------------------------------------------------------------ */

static int
perf_open(struct counter *c)
{
    struct perf_event_attr attr;

    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_HARDWARE;
    attr.config = PERF_COUNT_HW_INSTRUCTIONS;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        const char *why = e == ENOENT || e == EOPNOTSUPP || e == ENODEV
                              ? "no hardware instruction counter here"
                          : e == EACCES || e == EPERM
                              ? "not permitted (see kernel.perf_event_paranoid)"
                          : e == ENOSYS ? "not in this kernel" : "failed";
        snprintf(c->note, sizeof(c->note), "perf_event_open: %s (%s); not under Valgrind",
                 why, strerror(e));
        return -1;
    }
    c->fd = (int)fd;
    return 0;
}

static int
perf_run(struct counter *c, void (*fn)(void *), void *arg, uint64_t *count)
{
    uint64_t v;

    if (ioctl(c->fd, PERF_EVENT_IOC_RESET, 0) < 0 ||
        ioctl(c->fd, PERF_EVENT_IOC_ENABLE, 0) < 0)
        return -1;
    fn(arg);
    if (ioctl(c->fd, PERF_EVENT_IOC_DISABLE, 0) < 0 ||
        read(c->fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
        return -1;
    *count = v;
    return 0;
}

/* A loop the counter must see: some VMs open the event and count nothing. */
__attribute__((noinline)) static void
counter_spin(void *arg)
{
    for (unsigned i = 0; i < 10000; i++)
        __asm__ volatile("" : : "r"(i) : "memory");
}

/* ---- the chosen source ---------------------------------------------------------- */

static int
raw_run(struct counter *c, void (*fn)(void *), void *arg, uint64_t *count)
{
#ifdef HAVE_VALGRIND
    if (c->source == PROBE_BUDGET_SOURCE_CALLGRIND)
        return cg_run(fn, arg, count);
#endif
    if (c->source == PROBE_BUDGET_SOURCE_PERF)
        return perf_run(c, fn, arg, count);
    return -1;
}

static void
drop(struct counter *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->source = PROBE_BUDGET_SOURCE_NONE;
}

void
counter_open(struct counter *c)
{
    uint64_t v;

    c->source = PROBE_BUDGET_SOURCE_NONE;
    c->fd = -1;
    c->overhead = 0;
    c->note[0] = '\0';
    if (counter_on_valgrind()) {
#ifdef HAVE_VALGRIND
        c->source = PROBE_BUDGET_SOURCE_CALLGRIND;
        if (raw_run(c, counter_noop, NULL, &v) < 0) {
            snprintf(c->note, sizeof(c->note),
                     "under Valgrind, but no callgrind dump was found (not "
                     "--tool=callgrind, or PROBE_CALLGRIND_OUT_FILE differs from "
                     "--callgrind-out-file)");
            drop(c);
        } else if (v == 0) {
            snprintf(c->note, sizeof(c->note),
                     "callgrind is not collecting (--collect-atstart=no or "
                     "instrumentation off)");
            drop(c);
        } else {
            c->overhead = v;
        }
#endif
        return;
    }
    if (perf_open(c) < 0)
        return;
    c->source = PROBE_BUDGET_SOURCE_PERF;
    uint64_t spin = 0, best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        if (raw_run(c, counter_noop, NULL, &v) < 0)
            goto broken;
        if (v < best)
            best = v;
    }
    if (raw_run(c, counter_spin, NULL, &spin) < 0 || spin < 10000) {
    broken:
        snprintf(c->note, sizeof(c->note),
                 "perf_event_open: the instruction counter opens but does not count");
        drop(c);
        return;
    }
    c->overhead = best;
}

int
counter_run(struct counter *c, void (*fn)(void *), void *arg, uint64_t *cpu_ns,
            uint64_t *wall_ns, uint64_t *instructions)
{
    uint64_t count = 0;
    int rc = -1;

    uint64_t c0 = now_ns(CLOCK_THREAD_CPUTIME_ID), w0 = now_ns(CLOCK_MONOTONIC);
    if (c->source == PROBE_BUDGET_SOURCE_NONE)
        fn(arg);
    else
        rc = raw_run(c, fn, arg, &count);
    uint64_t w1 = now_ns(CLOCK_MONOTONIC), c1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    *cpu_ns = c1 > c0 ? c1 - c0 : 0;
    *wall_ns = w1 > w0 ? w1 - w0 : 0;
    if (c->source == PROBE_BUDGET_SOURCE_NONE)
        return -1;
    if (rc < 0) {
        snprintf(c->note, sizeof(c->note), "%s stopped counting during the runs",
                 c->source == PROBE_BUDGET_SOURCE_CALLGRIND ? "callgrind"
                                                            : "perf_event_open");
        drop(c);
        return -1;
    }
    *instructions = count > c->overhead ? count - c->overhead : 0;
    return 0;
}

void
counter_close(struct counter *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}
