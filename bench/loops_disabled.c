/*
 * Variant (d) of scope_overhead: the same loop as loops_scope(), in a translation unit
 * that bench/meson.build compiles with -DPROBE_DISABLE. It should cost what
 * loops_empty() costs, since the macro must leave nothing behind.
 */
#ifndef PROBE_DISABLE
#error "loops_disabled.c must be compiled with -DPROBE_DISABLE"
#endif

#include <stdint.h>

#include <probe/probe.h>

#include "loops.h"

__attribute__((noinline)) void
loops_scope_disabled(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        PROBE_SCOPE("x");
        LOOPS_BARRIER();
    }
}
