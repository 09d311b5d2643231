/*
 * The measured loops of scope_overhead, one noinline function per variant, each in a
 * translation unit of its own so the harness cannot see into them.
 *
 * Every loop body has the same shape: the thing measured around one compiler barrier
 * standing for the user's code. The barrier (an empty asm with a memory clobber) keeps
 * the compiler from merging, hoisting or deleting iterations, and costs no instruction.
 */
#ifndef BENCH_LOOPS_H
#define BENCH_LOOPS_H

#include <stdint.h>
#include <time.h>

#define LOOPS_BARRIER() __asm__ __volatile__("" ::: "memory")

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define LOOPS_CLOCK "rdtsc"

static inline uint64_t
loops_now(void)
{
    return __rdtsc();
}
#else
/* No TSC to read directly: the floor is two vDSO clock_gettime() calls instead, which
 * is what libprobe falls back to on such machines. Ratios are then against that. */
#define LOOPS_CLOCK "clock_gettime(CLOCK_MONOTONIC): not x86, no rdtsc"

static inline uint64_t
loops_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#endif

/** Nothing but the barrier: the cost of the loop itself. */
void loops_empty(uint64_t n);

/** The floor: two raw timestamp reads and an add of their difference to a __thread. */
void loops_floor(uint64_t n);

/** PROBE_SCOPE("x") around the barrier; recording or not is up to the caller. */
void loops_scope(uint64_t n);

/** The same source as loops_scope(), compiled with -DPROBE_DISABLE (loops_disabled.c). */
void loops_scope_disabled(uint64_t n);

/** Three nested PROBE_SCOPEs ("d1" > "d2" > "d3") around the barrier. */
void loops_depth3(uint64_t n);

/** Its floor: three nested pairs of timestamps, each difference added to a __thread. */
void loops_depth3_floor(uint64_t n);

/** A noinline function with PROBE_SCOPE("rec") calling itself 3 deep, per iteration. */
void loops_recurse(uint64_t n);

/** Its floor: the same recursion, each level doing the floor's work. */
void loops_recurse_floor(uint64_t n);

/** PROBE_SCOPE("jitter") around a body of 0 to 63 steps picked pseudo-randomly, so
 * that consecutive calls land in histogram buckets no branch predictor foresees. */
void loops_jitter(uint64_t n);

/** Its floor: the same bodies between two timestamps. */
void loops_jitter_floor(uint64_t n);

/** What loops_floor() added up on the calling thread, so it is not dead. */
uint64_t loops_floor_sum(void);

/** How the floor reads time: "rdtsc", or a note that this is not x86. */
const char *loops_floor_clock(void);

/* loops_sites.c: distinct sites, each PROBE_SCOPE("siteNNNN") in a function of its own. */
#define LOOPS_SITES 10000
#define LOOPS_SIBLINGS_MAX 1000

/** Inside PROBE_SCOPE("sib_parent"): n calls, round robin, of the first k site
 * functions (k one of 1, 2, 8, 100, 1000; another k goes through the table): a parent
 * alternating between k child scopes, the calls made directly in passes of k. */
void loops_siblings(unsigned k, uint64_t n);

/** The same calls made through a table of function pointers, as a dispatcher makes
 * them: an indirect call whose target changes every time. */
void loops_siblings_table(unsigned k, uint64_t n);

/** loops_siblings_table() doing the floor's work instead of a scope. */
void loops_siblings_table_floor(unsigned k, uint64_t n);

/** The same loop over k other sites, all entered from one call site (the scope's own
 * entry and exit, called as PROBE_SCOPE calls them): the library's cost of k sites,
 * without k copies of the program's code. */
void loops_siblings_one_call_site(unsigned k, uint64_t n);

/** The same loop, each call doing the floor's work instead of a scope. */
void loops_siblings_floor(unsigned k, uint64_t n);

/** One call of each of the first nsites (<= 10,000) site functions, at the caller's
 * depth. */
void loops_first_touch(unsigned nsites);

/** What loops_siblings_floor() added up on the calling thread, so it is not dead. */
uint64_t loops_sites_floor_sum(void);

#endif /* BENCH_LOOPS_H */
