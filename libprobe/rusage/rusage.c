/* getrusage(2) in nanoseconds and bytes. */
#include <probe/rusage.h>

#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static uint64_t
timeval_ns(struct timeval tv)
{
    return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
}

/* Maps PROBE_RUSAGE_* to RUSAGE_* (RUSAGE_CHILDREN is negative on Linux, hence the
 * output parameter). */
static int
rusage_kind(int who, int *out)
{
    switch (who) {
    case PROBE_RUSAGE_SELF: *out = RUSAGE_SELF; return 0;
    case PROBE_RUSAGE_CHILDREN: *out = RUSAGE_CHILDREN; return 0;
    case PROBE_RUSAGE_THREAD:
#ifdef RUSAGE_THREAD
        *out = RUSAGE_THREAD;
        return 0;
#else
        return PROBE_ENOTSUP;
#endif
    default: return PROBE_EINVAL;
    }
}

static void
rusage_from_sys(const struct rusage *ru, uint64_t wall_ns, probe_rusage *out)
{
    memset(out, 0, sizeof(*out));
    out->wall_ns = wall_ns;
    out->user_ns = timeval_ns(ru->ru_utime);
    out->system_ns = timeval_ns(ru->ru_stime);
#ifdef __APPLE__
    out->max_rss_bytes = (uint64_t)ru->ru_maxrss;          /* bytes on macOS */
#else
    out->max_rss_bytes = (uint64_t)ru->ru_maxrss * 1024u;  /* KiB on Linux and BSDs */
#endif
    out->minor_faults = (uint64_t)ru->ru_minflt;
    out->major_faults = (uint64_t)ru->ru_majflt;
    out->voluntary_switches = (uint64_t)ru->ru_nvcsw;
    out->involuntary_switches = (uint64_t)ru->ru_nivcsw;
    out->block_in = (uint64_t)ru->ru_inblock;
    out->block_out = (uint64_t)ru->ru_oublock;
}

PROBE_EXPORT int
probe_getrusage(int who, probe_rusage *out)
{
    struct rusage ru;
    struct timespec now;
    int saved = errno;

    if (!out)
        return PROBE_EINVAL;
    int kind, rc = rusage_kind(who, &kind);
    if (rc < 0)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (getrusage(kind, &ru) < 0) {
        int err = -errno;
        errno = saved;
        return err;
    }
    rusage_from_sys(&ru, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec, out);
    return 0;
}

static uint64_t
sub0(uint64_t a, uint64_t b)
{
    return b > a ? b - a : 0;
}

PROBE_EXPORT int
probe_rusage_diff(const probe_rusage *a, const probe_rusage *b, probe_rusage *out)
{
    probe_rusage d;

    if (!a || !b || !out)
        return PROBE_EINVAL;
    if (b->wall_ns < a->wall_ns)
        return PROBE_ERANGE; /* swapped: @b was read first */
    memset(&d, 0, sizeof(d));
    d.wall_ns = sub0(a->wall_ns, b->wall_ns);
    d.user_ns = sub0(a->user_ns, b->user_ns);
    d.system_ns = sub0(a->system_ns, b->system_ns);
    d.max_rss_bytes = b->max_rss_bytes; /* a peak: the later one is the answer */
    d.minor_faults = sub0(a->minor_faults, b->minor_faults);
    d.major_faults = sub0(a->major_faults, b->major_faults);
    d.voluntary_switches = sub0(a->voluntary_switches, b->voluntary_switches);
    d.involuntary_switches = sub0(a->involuntary_switches, b->involuntary_switches);
    d.block_in = sub0(a->block_in, b->block_in);
    d.block_out = sub0(a->block_out, b->block_out);
    *out = d;
    return 0;
}
