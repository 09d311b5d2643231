/* Start, stop, reset, and the core's load-time initialisation (called by init.c). */
#include <probe/probe.h>

#include "init.h"
#include "atomics.h"
#include "clock.h"
#include "thread.h"
#include "trace.h"

void
lifecycle_init(void)
{
    clock_init();
    thread_init();
}

PROBE_EXPORT int
probe_start(void)
{
    store_relaxed(&probe__recording, 1);
    thread_hot_refresh(); /* the scope's fast paths again */
    return 0;
}

PROBE_EXPORT int
probe_stop(void)
{
    store_relaxed(&probe__recording, 0);
    thread_hot_refresh(); /* scopes open now end on the full paths */
    return trace_on_recording_stop(); /* a flight recorder with a path is written */
}

PROBE_EXPORT int
probe_is_recording(void)
{
    return load_relaxed(&probe__recording);
}

PROBE_EXPORT void
probe_reset(void)
{
    thread_reset_all();
    clock_mark_epoch();
}

PROBE_EXPORT int
probe_thread_name(const char *name)
{
    if (!name)
        return PROBE_EINVAL;
    return thread_set_name(name);
}
