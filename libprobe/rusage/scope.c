/* PROBE_RUSAGE_SCOPE: a scope that also measures the thread's resource usage. The
 * two getrusage(RUSAGE_THREAD) calls sit outside the scope's timed region, so its
 * times stay comparable with PROBE_SCOPE's. */
#include <probe/probe.h>

#include "core/atomics.h"
#include "core/thread.h"

PROBE_EXPORT probe__rusage_frame
probe__rusage_scope_enter(struct probe__site *site)
{
    probe__rusage_frame f = {0};

    if (!load_relaxed(&probe__recording))
        return f;
    f.site = site;
    f.ok = probe_getrusage(PROBE_RUSAGE_THREAD, &f.start) == 0;
    f.token = probe__scope_enter(site);
    return f;
}

static uint64_t
delta(uint64_t a, uint64_t b)
{
    return b > a ? b - a : 0;
}

PROBE_EXPORT void
probe__rusage_scope_exit(probe__rusage_frame *f)
{
    probe_rusage end;

    if (!f->site)
        return;
    if (f->token)
        probe__scope_exit(f->token);
    if (!f->ok || !f->token || probe_getrusage(PROBE_RUSAGE_THREAD, &end) < 0)
        return;
    struct usage_stats d = {
        .calls = 1,
        .user_ns = delta(f->start.user_ns, end.user_ns),
        .system_ns = delta(f->start.system_ns, end.system_ns),
        .minor_faults = delta(f->start.minor_faults, end.minor_faults),
        .major_faults = delta(f->start.major_faults, end.major_faults),
        .voluntary_switches = delta(f->start.voluntary_switches, end.voluntary_switches),
        .involuntary_switches = delta(f->start.involuntary_switches, end.involuntary_switches),
    };
    thread_add_usage(f->site, &d);
}
