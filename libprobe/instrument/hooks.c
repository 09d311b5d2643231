/* libprobe-instrument: GCC's and Clang's -finstrument-functions hooks. Each function
 * is a scope of the core with a site per function address (table.h), so the report's
 * tables, percentiles, call tree and edges are the same as for PROBE_FUNC, and
 * recursion is counted as primitive calls by the core.
 *
 * A hook finds the function's site and hands over to the core (probe__func_enter,
 * probe__func_exit in core/thread.c) by a tail call: the core keeps the function of
 * each frame beside it, so that an exit pairs with its own entry and a longjmp() over
 * instrumented frames closes them (as unbalanced) instead of pairing every later exit
 * with the wrong entry. */
#include <stdint.h>

#include <probe/probe.h>

#include "core/thread.h"
#include "table.h"

/* Set while this thread adds a function to the table: a function the table's code
 * calls meanwhile (an instrumented allocator) is not added, which would take the
 * table's lock again; the core gives it an unrecorded frame. */
static __thread int adding __attribute__((tls_model("initial-exec")));

NOINSTR COLD static void
enter_new(void *fn)
{
    struct probe__site *site = NULL;

    /* Named only while recording: a stopped program pays no symbol lookups. */
    if (!adding && probe__on()) {
        adding = 1;
        site = table_add((uintptr_t)fn);
        adding = 0;
    }
    probe__func_enter(site, fn);
}

NOINSTR PROBE_EXPORT void
__cyg_profile_func_enter(void *fn, void *call_site)
{
    struct probe__site *site = table_find((uintptr_t)fn);

    (void)call_site;
    if (unlikely(!site)) {
        enter_new(fn);
        return;
    }
    probe__func_enter(site, fn);
}

NOINSTR PROBE_EXPORT void
__cyg_profile_func_exit(void *fn, void *call_site)
{
    (void)call_site;
    probe__func_exit(fn);
}
