/* The library's one constructor: every module's load-time initialisation, in the
 * order they depend on each other. One place rather than a constructor per file,
 * because a static link (libprobe.a) only pulls in the object files something
 * references: this file defines probe__recording, which every macro reads, so it is
 * always linked, and it references each module's init so they are too. */
#include <probe/probe.h>

#include "init.h"
#include "preload/preload.h"
#include "fleet/fleet.h"

/* On at load: the library works with no explicit init. */
PROBE_EXPORT int probe__recording = 1;

/* Early, so that other constructors may use the macros. */
__attribute__((constructor(101))) static void
probe_init(void)
{
    lifecycle_init();
    stream_install(); /* before autoreport_init() may start a stream */
    symbolize_init();
    sampler_init();   /* hooks only: nothing samples until probe_sampler_start() */
    fault_fork_init(); /* fork handlers: their order is docs/locks.md's */
    heap_init();       /* early: the other constructors' allocations count too */
}

/* The environment's requests, at the default priority: enabling the fault dumper
 * calls backtrace() once, and in a static executable the unwinder is not ready in a
 * priority-101 constructor. */
__attribute__((constructor)) static void
probe_init_environment(void)
{
    autoreport_init();
    death_init();      /* before the fault dumper: it hands the signal on to us */
    fault_env_init();
    sample_init();
    fleet_env_init();  /* PROBE_HTTP, PROBE_PUSH */
    children_init();   /* last: with PROBE_CHILDREN=none it removes the variables */
}
