/**
 * @file sampler.h
 * The statistical sampler: where threads spend their CPU time, for code nobody
 * annotated.
 *
 * In CPU mode every thread of the process gets its own timer on its own CPU-time
 * clock (timer_create on the thread's CPU clock, SIGEV_THREAD_ID), so each thread is
 * sampled in proportion to its CPU use. Threads running at probe_sampler_start() are
 * armed then. A thread created later is armed at its first use of libprobe (a
 * scope, a line, a counter, probe_thread_name()), or else by the sampler thread,
 * which lists /proc/self/task every 5 ms: a thread that never uses libprobe loses
 * at most its first 5 ms. (A thread id reused within those 5 ms keeps the dead
 * thread's timer, and is not sampled.)
 *
 * Each SIGPROF records the thread's stack (DWARF CFI from the modules' .eh_frame_hdr,
 * recorded at start and again within 5 ms of a dlopen() or dlclose(), so code built
 * without frame pointers unwinds too; frame pointers where there is no CFI; every
 * read bounded by the thread's stack, which for a thread that never used libprobe
 * is known a few ms after its first sample, its PC alone until then) and its open
 * PROBE_SCOPEs into a preallocated per-thread buffer; the handler allocates nothing,
 * takes no lock and keeps errno. The kernel may deliver fewer signals than the
 * interval asks for (a 250 Hz tick delivers 250 per second at 1 kHz) and counts the
 * rest as timer overruns: every sample is weighted by 1 + its overruns, so
 * weight x interval is the CPU time it stands for, whatever the tick.
 * On a contended CPU (more runnable threads than CPUs), the signals are drawn toward
 * the returns of system calls: a loop that makes a system call every few
 * microseconds (say, reading the CPU clock) shows up to a fifth of its samples in
 * that call's wrapper, taken from the code around it. Totals stay exact; code that
 * makes no system calls is sampled in proportion to its CPU time either way.
 *
 * In WALL mode, time on a CPU is sampled the same way, and time off it too: a thread
 * of libprobe's ("probe-sampler", all signals blocked) wakes every interval and
 * looks at every sampled thread. A thread blocked in the kernel is never signalled
 * (a signal would cut its sleep short with EINTR): the sampler thread records it
 * itself, from the PC and stack pointer /proc/self/task/TID/syscall gives (callers
 * found by scanning its stack, a heuristic), with its open scopes, as a sample marked
 * blocked (probe_sample_info.blocked; its last frame is where it blocked, e.g.
 * clock_nanosleep; the tree, collapsed and speedscope formats add a "[blocked]"
 * frame under it) and whose time is the thread's exact off-CPU time since the last
 * look (/proc/self/task/TID/schedstat).
 * Time a thread spends runnable but waiting for a CPU is in neither kind of sample.
 * The sampler thread holds one file descriptor per thread, and at most a quarter of
 * RLIMIT_NOFILE in all: threads beyond that are sampled on their CPU time alone.
 * A thread still blocked where it was, not having run since, is looked at less
 * often (every 2, 4 ... 16 intervals, at most 16 ms apart); its off-CPU time stays
 * exact up to its last look, so up to 16 ms at the end of a long block may be
 * missing (a 300 ms sleep is sampled as 293 ms at 1 ms). Cost of the
 * sampler thread, measured on a 2-vCPU VM at a 1 ms interval: 2.6% of a CPU with
 * no other thread, 5% with 100 idle threads, 26% with 1000 (7% at 10 ms). CPU mode
 * costs 0.5% of a CPU for its thread scan (2.7% with 1000 threads).
 *
 * Samples are aggregated and symbolized when a snapshot is taken, and appear in it
 * next to the scopes (probe_snapshot_sample(), report.h); the "tree", "collapsed",
 * "pprof", "speedscope" and "json" formatters write them.
 *
 * Once started, the sampler's SIGPROF handler stays installed after stop. SIGPROFs
 * it did not ask for (kill(2), the program's own setitimer(2)) go to the handler
 * that was installed before the first start, if it was a function; otherwise they
 * are ignored, so a signal still in flight at stop cannot kill the process. A forked
 * child starts with the sampler stopped (timers and the sampler thread are not
 * inherited); its samples so far stay in its snapshots, and it may start again.
 *
 * The sampler thread ("probe-sampler", every signal blocked) runs while sampling, in
 * both modes; it is not sampled. Snapshots keep at most 65536 distinct (thread,
 * stack) pairs until probe_reset(); samples beyond are counted as dropped. A thread
 * that takes every signal with sigwait(2) also gets the sampler's SIGPROF: leave
 * SIGPROF out of its set.
 */
#ifndef PROBE_SAMPLER_H
#define PROBE_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include <probe/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What the sampler's clock measures. */
typedef enum probe_sample_mode {
    PROBE_SAMPLE_CPU = 0,   /**< CPU time of each thread. */
    PROBE_SAMPLE_WALL = 1,  /**< Wall time: CPU time as in CPU mode, plus the time
                                 each thread spends blocked in the kernel. */
} probe_sample_mode;

/** Options of probe_sampler_start(). Initialise with PROBE_SAMPLER_OPTIONS_INIT. */
typedef struct probe_sampler_options {
    size_t size;            /**< sizeof(probe_sampler_options): lets the struct grow. */
    uint64_t interval_ns;   /**< Sampling interval; 50 us..1 s. Default 1 ms. */
    int mode;               /**< probe_sample_mode. Default PROBE_SAMPLE_CPU. */
    unsigned max_depth;     /**< Frames kept per sample, 1..128 (deeper stacks lose
                                 their outermost frames). Default 64. */
    unsigned buffer_samples; /**< Per-thread buffer, in samples of 32 frames, at
                                  least 16; samples that find it full are counted as
                                  dropped. Default 4096 (1 MiB per thread; twice
                                  that in WALL mode). */
} probe_sampler_options;

#define PROBE_SAMPLER_INTERVAL_DEFAULT 1000000u
#define PROBE_SAMPLER_INTERVAL_MIN 50000u
#define PROBE_SAMPLER_INTERVAL_MAX 1000000000u
#define PROBE_SAMPLER_DEPTH_DEFAULT 64u
#define PROBE_SAMPLER_DEPTH_MAX 128u
#define PROBE_SAMPLER_BUFFER_DEFAULT 4096u

#define PROBE_SAMPLER_OPTIONS_INIT                                                    \
    {sizeof(probe_sampler_options), PROBE_SAMPLER_INTERVAL_DEFAULT, PROBE_SAMPLE_CPU, \
     PROBE_SAMPLER_DEPTH_DEFAULT, PROBE_SAMPLER_BUFFER_DEFAULT}

/**
 * Start sampling every thread of the process, and every thread created from now on.
 *
 * @param opts  Options, or NULL for the defaults.
 * @retval 0              Sampling.
 * @retval PROBE_EBUSY    Already running.
 * @retval PROBE_EINVAL   An option is out of range, or @c size is too small.
 * @retval PROBE_ENOTSUP  No per-thread CPU timers on this platform, or (WALL) no
 *                        /proc/self/task.
 * @retval PROBE_ENOMEM   Out of memory, or (WALL) no thread could be created.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_sampler_start(const probe_sampler_options *opts);

/**
 * Stop sampling. What was sampled stays for snapshots. A no-op when stopped.
 * @retval 0  Always.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_sampler_stop(void);

/** @return 1 while sampling, else 0. @note Thread-safe. */
PROBE_EXPORT int probe_sampler_is_running(void);

/* Compiled out: each function above is a stub (the pattern: <probe/common.h>). */
#ifdef PROBE_DISABLE
#define probe_sampler_start probe__off_sampler_start
#define probe_sampler_stop probe__off_sampler_stop
#define probe_sampler_is_running probe__off_sampler_is_running

PROBE__STUB int probe_sampler_start(const probe_sampler_options *opts)
{
    (void)opts;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_sampler_stop(void) { return PROBE_EDISABLED; }
PROBE__STUB int probe_sampler_is_running(void) { return 0; }
#endif /* PROBE_DISABLE */

#ifdef __cplusplus
}
#endif

#endif /* PROBE_SAMPLER_H */
