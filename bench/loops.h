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

#define LOOPS_BARRIER() __asm__ __volatile__("" ::: "memory")

/** Nothing but the barrier: the cost of the loop itself. */
void loops_empty(uint64_t n);

/** The floor: two raw timestamp reads and an add of their difference to a __thread. */
void loops_floor(uint64_t n);

/** PROBE_SCOPE("x") around the barrier; recording or not is up to the caller. */
void loops_scope(uint64_t n);

/** The same source as loops_scope(), compiled with -DPROBE_DISABLE (loops_disabled.c). */
void loops_scope_disabled(uint64_t n);

/** What loops_floor() added up on the calling thread, so it is not dead. */
uint64_t loops_floor_sum(void);

/** How the floor reads time: "rdtsc", or a note that this is not x86. */
const char *loops_floor_clock(void);

#endif /* BENCH_LOOPS_H */
