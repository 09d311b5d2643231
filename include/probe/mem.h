/**
 * @file mem.h
 * Memory: the heap profiler behind `probe run --mem` (docs/memory.md).
 */
#ifndef PROBE_MEM_H
#define PROBE_MEM_H

#include <probe/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Heap profiling */

/*
 * With PROBE_MEM=1 in the environment when libprobe loads (`probe run --mem` sets
 * it), libprobe.so's malloc, calloc, realloc, free, posix_memalign, aligned_alloc,
 * memalign, valloc, pvalloc, reallocarray and malloc_usable_size sample the
 * program's allocations: a Poisson process on bytes with a mean of PROBE_MEM_SAMPLE
 * bytes (524288 by default) records the native stack of each sampled block, scaled
 * to unbiased estimates, and remembers it until it is freed. At exit the heap report
 * goes to PROBE_MEM_OUTPUT (stderr when unset) in PROBE_MEM_FORMAT ("text", "json"
 * or "pprof"; by default from the file's name: .pb.gz or .pprof pprof, .json json).
 */

#if defined(PROBE_DISABLE)
static inline int
probe_mem_heap_enabled(void)
{
    return 0;
}
static inline int
probe_mem_heap_write(const char *path, const char *format)
{
    (void)path;
    (void)format;
    return 0;
}
static inline int
probe_mem_heap_fd(int fd, const char *format)
{
    (void)fd;
    (void)format;
    return 0;
}
#else
/**
 * Whether the heap profiler is on (PROBE_MEM=1 when the library loaded).
 *
 * @return 1 or 0.
 * @note Thread-safe and async-signal-safe.
 */
PROBE_EXPORT int probe_mem_heap_enabled(void);

/**
 * Write the heap report: the sampled allocation sites with their estimated bytes
 * and blocks allocated, in use (the leak report at exit), in use at the peak, and
 * temporary (freed by the allocating thread within 1 ms).
 *
 * @param path    A file (created with mode 0644 or truncated, never followed
 *                through a symbolic link), or "stderr", "stdout", "-" (stderr).
 * @param format  "text", "json" or "pprof" (a gzipped profile.proto with Go's heap
 *                sample types alloc_objects, alloc_space, inuse_objects and
 *                inuse_space).
 * @retval 0               Success.
 * @retval PROBE_EINVAL    @p path or @p format is NULL, or @p format is unknown.
 * @retval PROBE_ENODATA   The heap profiler is off.
 * @retval PROBE_ELOOP     @p path is a symbolic link.
 * @retval PROBE_ENOMEM    Out of memory.
 * @retval PROBE_EIO       A write failed (or another -errno from open(2)).
 * @note Thread-safe (allocations go on meanwhile). Not async-signal-safe.
 */
PROBE_EXPORT int probe_mem_heap_write(const char *path, const char *format);

/**
 * Like probe_mem_heap_write(), to the open descriptor @p fd (not closed).
 *
 * @retval PROBE_EBADF  @p fd is negative; otherwise as probe_mem_heap_write().
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_mem_heap_fd(int fd, const char *format);
#endif

#ifdef __cplusplus
}
#endif

#endif
