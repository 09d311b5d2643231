/*
 * libprobe resource usage: getrusage(2) with sane units.
 *
 * Times are nanoseconds and memory is bytes on every platform (Linux reports
 * ru_maxrss in KiB; the wrapper converts).
 */
#ifndef PROBE_RUSAGE_H
#define PROBE_RUSAGE_H

#include <stdint.h>

#include <probe/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Whose usage probe_getrusage() reads. */
#define PROBE_RUSAGE_SELF 0      /**< The whole process, all its threads. */
#define PROBE_RUSAGE_CHILDREN 1  /**< Children that have terminated and been reaped. */
#define PROBE_RUSAGE_THREAD 2    /**< The calling thread only. */

/** One reading. Users may allocate it; reserved space lets it grow. */
typedef struct probe_rusage {
    uint64_t wall_ns;               /**< CLOCK_MONOTONIC at the reading. */
    uint64_t user_ns;               /**< CPU time in user mode. */
    uint64_t system_ns;             /**< CPU time in the kernel. */
    uint64_t max_rss_bytes;         /**< Peak resident set size. */
    uint64_t minor_faults;          /**< Page faults served without I/O. */
    uint64_t major_faults;          /**< Page faults that needed I/O. */
    uint64_t voluntary_switches;    /**< Context switches while waiting. */
    uint64_t involuntary_switches;  /**< Context switches by preemption. */
    uint64_t block_in;              /**< Block input operations. */
    uint64_t block_out;             /**< Block output operations. */
    uint64_t reserved[6];           /**< Zero; room for later fields. */
} probe_rusage;

/**
 * Read resource usage.
 *
 * @param who  PROBE_RUSAGE_SELF, PROBE_RUSAGE_CHILDREN or PROBE_RUSAGE_THREAD.
 * @param out  Written on success only.
 * @retval 0              Success.
 * @retval PROBE_EINVAL   @p out is NULL or @p who is not one of the above.
 * @retval PROBE_ENOTSUP  PROBE_RUSAGE_THREAD on a system without per-thread usage.
 * @note Thread-safe. Async-signal-safe.
 */
PROBE_EXPORT int probe_getrusage(int who, probe_rusage *out);

/**
 * @p b minus @p a, field by field, for two readings with @p a taken first. A field
 * that went down (max_rss_bytes is a peak, not a sum) is the later value for
 * max_rss_bytes and 0 for the others: a difference is never negative.
 *
 * @retval 0 Success. @retval PROBE_EINVAL an argument is NULL.
 * @note Thread-safe. Async-signal-safe. @p out may alias @p a or @p b.
 */
PROBE_EXPORT int probe_rusage_diff(const probe_rusage *a, const probe_rusage *b,
                                   probe_rusage *out);

#ifdef __cplusplus
}
#endif

#endif /* PROBE_RUSAGE_H */
