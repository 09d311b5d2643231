/* libprobe-instrument: GCC's and Clang's -finstrument-functions hooks. Each function
 * is a scope of the core (probe__scope_enter/exit) with a site per function address
 * (table.h), so the report's tables, percentiles, call tree and edges are the same as
 * for PROBE_FUNC, and recursion is counted as primitive calls by the core.
 *
 * The core returns a token at entry that the exit must give back; the hooks keep a
 * small per-thread stack of (function, token) for that, and check the function at
 * exit, so that a longjmp() over instrumented frames closes them (as unbalanced)
 * instead of pairing every later exit with the wrong entry. */
#include <stdint.h>

#include <probe/probe.h>

#include "core/thread.h"
#include "table.h"

/* Deeper than the core's stack, so that the core sees, and counts, its own depth
 * overflow; frames deeper still are only counted here, to stay paired. */
#define HOOKS_DEPTH (THREAD_MAX_DEPTH + 32)

struct hook_frame {
    uintptr_t fn;
    probe__token token;         /* 0: not recorded (recording was off) */
};

struct hook_state {
    uint32_t depth;
    uint32_t deep;              /* frames past HOOKS_DEPTH */
    /* Set while in the core or the table: a function they (or a signal handler
     * meanwhile) call, e.g. an instrumented malloc, is not timed, and cannot recurse
     * into state that is being set up. */
    uint32_t busy;
    struct hook_frame f[HOOKS_DEPTH];
};

static __thread struct hook_state tls __attribute__((tls_model("initial-exec")));

NOINSTR COLD static void
enter_slow(struct hook_state *h)
{
    if (!h->busy)
        h->deep++;
}

NOINSTR COLD static struct probe__site *
site_slow(struct hook_state *h, void *fn)
{
    h->busy = 1;
    struct probe__site *site = table_add((uintptr_t)fn);
    h->busy = 0;
    return site;
}

NOINSTR PROBE_EXPORT void
__cyg_profile_func_enter(void *fn, void *call_site)
{
    struct hook_state *h = &tls;
    uint32_t d = h->depth;
    probe__token token = 0;

    (void)call_site;
    if (unlikely(h->busy | h->deep) || unlikely(d >= HOOKS_DEPTH)) {
        enter_slow(h);
        return;
    }
    if (probe__on()) {
        struct probe__site *site = table_find((uintptr_t)fn);
        if (unlikely(!site))
            site = site_slow(h, fn);
        h->busy = 1;
        token = probe__scope_enter(site);
        h->busy = 0;
    }
    /* After the core: a signal handler's functions meanwhile used this slot and
     * gave it back. */
    h->f[d] = (struct hook_frame){(uintptr_t)fn, token};
    h->depth = d + 1;
}

/* Busy, too deep, or not the function on top: a longjmp() left frames above @fn's. */
NOINSTR COLD static void
exit_slow(struct hook_state *h, uintptr_t fn)
{
    if (h->busy)
        return;
    if (h->deep) {
        h->deep--;
        return;
    }
    for (uint32_t k = h->depth; k-- > 0;) {
        if (h->f[k].fn != fn)
            continue;
        probe__token token = h->f[k].token;
        h->depth = k;
        if (token) {
            /* The core closes the frames left above as unbalanced. */
            h->busy = 1;
            probe__scope_exit(token);
            h->busy = 0;
        }
        return;
    }
    /* An exit with no entry (the hooks were not yet there): nothing to close. */
}

NOINSTR PROBE_EXPORT void
__cyg_profile_func_exit(void *fn, void *call_site)
{
    struct hook_state *h = &tls;
    uint32_t d = h->depth;

    (void)call_site;
    if (unlikely(h->busy | h->deep | !d) || unlikely(h->f[d - 1].fn != (uintptr_t)fn)) {
        exit_slow(h, (uintptr_t)fn);
        return;
    }
    probe__token token = h->f[d - 1].token;
    h->depth = d - 1;
    if (token) {
        h->busy = 1;
        probe__scope_exit(token);
        h->busy = 0;
    }
}
