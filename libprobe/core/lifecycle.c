/* Start, stop, reset, and the library's load-time initialisation. */
#include <probe/probe.h>

#include "atomics.h"
#include "clock.h"
#include "thread.h"

/* On at load: the library works with no explicit init. */
PROBE_EXPORT int probe__recording = 1;

__attribute__((constructor(101))) static void
lifecycle_init(void)
{
    clock_init();
    thread_init();
}

PROBE_EXPORT int
probe_start(void)
{
    store_relaxed(&probe__recording, 1);
    return 0;
}

PROBE_EXPORT int
probe_stop(void)
{
    store_relaxed(&probe__recording, 0);
    return 0;
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
