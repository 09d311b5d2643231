/*
 * libprobe resource usage: getrusage(2) with sane units.
 *
 * Times are nanoseconds and memory is bytes on every platform (Linux reports
 * ru_maxrss in KiB; the wrapper converts).
 */
#ifndef PROBE_RUSAGE_H
#define PROBE_RUSAGE_H

#include <stddef.h>
#include <stdint.h>

#include <probe/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Whose usage probe_getrusage() reads. */
#define PROBE_RUSAGE_SELF 0      /**< The whole process, all its threads. */
/** Children that have terminated and been reaped (waited for), and their reaped
 * descendants; max_rss_bytes is the largest peak of any one of them, not a sum. */
#define PROBE_RUSAGE_CHILDREN 1
/** The calling thread only, except max_rss_bytes: the kernel keeps no per-thread peak,
 * so it is the process's. */
#define PROBE_RUSAGE_THREAD 2

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
 * @note Thread-safe. Async-signal-safe in practice: only plain system calls
 *       (getrusage, getrlimit and sysconf are not on POSIX's list).
 */
PROBE_EXPORT int probe_getrusage(int who, probe_rusage *out);

/**
 * @p b minus @p a, field by field, for two readings with @p a taken first. A field
 * that went down (max_rss_bytes is a peak, not a sum) is the later value for
 * max_rss_bytes and 0 for the others: a difference is never negative.
 *
 * @retval 0             Success.
 * @retval PROBE_EINVAL  An argument is NULL.
 * @retval PROBE_ERANGE  @p b was read before @p a (its wall_ns is earlier): the
 *                       arguments are swapped. @p out is not written.
 * @note Thread-safe. Async-signal-safe. @p out may alias @p a or @p b.
 */
PROBE_EXPORT int probe_rusage_diff(const probe_rusage *a, const probe_rusage *b,
                                   probe_rusage *out);

/**
 * Format @p ru as a human-readable block, one "label: value" line per field, in the
 * manner of `/usr/bin/time -v` (times in seconds with microseconds, memory in bytes
 * and KiB/MiB). Like snprintf(3): the output is truncated to @p len - 1 bytes and
 * always NUL-terminated when @p len > 0.
 *
 * @param ru   The reading (or a difference).
 * @param buf  Where to write; may be NULL when @p len is 0, to measure.
 * @param len  Size of @p buf.
 * @return The length the whole block needs, without the NUL (>= 0), or
 *         PROBE_EINVAL when @p ru is NULL, or @p buf is NULL with @p len > 0.
 * @note Thread-safe. Async-signal-safe (no stdio, no locale).
 */
PROBE_EXPORT int probe_rusage_format(const probe_rusage *ru, char *buf, size_t len);

/**
 * The resident set size now (not the peak), in bytes.
 *
 * @retval 0              Success; *@p bytes is set.
 * @retval PROBE_EINVAL   @p bytes is NULL.
 * @retval PROBE_ENOTSUP  The system does not say (no /proc/self/statm).
 * @retval -errno         Reading it failed.
 * @note Thread-safe. Async-signal-safe in practice (plain system calls).
 */
PROBE_EXPORT int probe_current_rss(size_t *bytes);

/* ---- limits: the controlling half of Python's resource module ---------------- */

/** Resources whose limits probe_getrlimit()/probe_setrlimit() read and set. */
typedef enum probe_rlimit_resource {
    PROBE_RLIMIT_CPU = 0,       /**< CPU time, seconds (SIGXCPU at the soft limit). */
    PROBE_RLIMIT_AS = 1,        /**< Address space, bytes. */
    PROBE_RLIMIT_NOFILE = 2,    /**< Open file descriptors, a count. */
    PROBE_RLIMIT_CORE = 3,      /**< Core file size, bytes. */
    PROBE_RLIMIT_DATA = 4,      /**< Data segment, bytes. */
    PROBE_RLIMIT_STACK = 5,     /**< Main thread's stack, bytes. */
    PROBE_RLIMIT_FSIZE = 6,     /**< Largest file the process may write, bytes. */
    PROBE_RLIMIT_NPROC = 7,     /**< Processes of the user, a count. */
    PROBE_RLIMIT_MEMLOCK = 8    /**< Locked memory, bytes. */
} probe_rlimit_resource;

/** No limit. */
#define PROBE_RLIM_INFINITY UINT64_MAX

/** A soft and a hard limit, in the resource's unit. */
typedef struct probe_rlimit {
    uint64_t soft;          /**< The limit enforced; at most @c hard. */
    uint64_t hard;          /**< The ceiling the soft limit may be raised to. */
} probe_rlimit;

/**
 * Read a limit of the calling process.
 *
 * @retval 0              Success.
 * @retval PROBE_EINVAL   @p out is NULL or @p resource is not a probe_rlimit_resource.
 * @retval PROBE_ENOTSUP  This system has no such resource.
 * @note Thread-safe. Async-signal-safe in practice (plain system calls).
 */
PROBE_EXPORT int probe_getrlimit(int resource, probe_rlimit *out);

/**
 * Set a limit of the calling process (inherited by children it creates later).
 *
 * @retval 0              Success.
 * @retval PROBE_EINVAL   @p lim is NULL, @p resource is unknown, or soft > hard.
 * @retval PROBE_EPERM    Raising the hard limit needs privilege (CAP_SYS_RESOURCE), or
 *                        PROBE_RLIMIT_NOFILE above the system's fs.nr_open.
 * @retval PROBE_ERANGE   A finite value does not fit the system's rlim_t (never on
 *                        64-bit Linux).
 * @retval PROBE_ENOTSUP  This system has no such resource.
 * @retval -errno         setrlimit(2) failed otherwise.
 * @note Thread-safe. Async-signal-safe in practice (plain system calls).
 */
PROBE_EXPORT int probe_setrlimit(int resource, const probe_rlimit *lim);

/**
 * @return The resource's name ("cpu", "as", "nofile", "core", "data", "stack",
 *         "fsize", "nproc", "memlock"), or NULL for an unknown value.
 */
PROBE_EXPORT const char *probe_rlimit_name(int resource);

/**
 * @return The resource named @p name (as probe_rlimit_name() spells it, case
 *         ignored), or PROBE_EINVAL for NULL or an unknown name.
 */
PROBE_EXPORT int probe_rlimit_from_name(const char *name);

/* ---- per-scope usage ------------------------------------------------------------ */

struct probe__site;

/** Not for direct use: what PROBE_RUSAGE_SCOPE keeps between enter and exit. */
typedef struct probe__rusage_frame {
    struct probe__site *site;   /* NULL when not recording at entry */
    probe__token token;
    int ok;                     /* the first reading succeeded */
    probe_rusage start;
} probe__rusage_frame;

PROBE_EXPORT probe__rusage_frame probe__rusage_scope_enter(struct probe__site *site);
PROBE_EXPORT void probe__rusage_scope_exit(probe__rusage_frame *frame);

/* Compiled out: each function above is a stub (the pattern: <probe/common.h>). */
#ifdef PROBE_DISABLE
#define probe_getrusage probe__off_getrusage
#define probe_rusage_diff probe__off_rusage_diff
#define probe_rusage_format probe__off_rusage_format
#define probe_current_rss probe__off_current_rss
#define probe_getrlimit probe__off_getrlimit
#define probe_setrlimit probe__off_setrlimit
#define probe_rlimit_name probe__off_rlimit_name
#define probe_rlimit_from_name probe__off_rlimit_from_name

PROBE__STUB int probe_getrusage(int who, probe_rusage *out)
{
    (void)who;
    (void)out;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_rusage_diff(const probe_rusage *a, const probe_rusage *b,
                                  probe_rusage *out)
{
    (void)a;
    (void)b;
    (void)out;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_rusage_format(const probe_rusage *ru, char *buf, size_t len)
{
    (void)ru;
    (void)buf;
    (void)len;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_current_rss(size_t *bytes)
{
    (void)bytes;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_getrlimit(int resource, probe_rlimit *out)
{
    (void)resource;
    (void)out;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_setrlimit(int resource, const probe_rlimit *lim)
{
    (void)resource;
    (void)lim;
    return PROBE_EDISABLED;
}
PROBE__STUB const char *probe_rlimit_name(int resource)
{
    (void)resource;
    return (const char *)0;
}
PROBE__STUB int probe_rlimit_from_name(const char *name)
{
    (void)name;
    return PROBE_EDISABLED;
}
#endif /* PROBE_DISABLE */

#ifdef __cplusplus
}
#endif

/* The site macros come from probe.h (which includes this header first). */
#include <probe/probe.h>

#if defined(PROBE_DISABLE) || !(defined(__GNUC__) || defined(__clang__))
#define PROBE_RUSAGE_SCOPE(name) ((void)0)
#else
#define PROBE__RUSAGE_SCOPE_AT(var, name)                                              \
    PROBE__SITE_DECL(var, PROBE_KIND_SCOPE | PROBE__SITE_RUSAGE, name);                \
    probe__rusage_frame PROBE__CAT(var, _f)                                            \
        __attribute__((cleanup(probe__rusage_scope_exit), unused)) =                   \
            probe__rusage_scope_enter(&var)

/**
 * Like PROBE_SCOPE(name), and also record the calling thread's resource usage spent
 * inside the scope: user and system CPU time, minor and major page faults, voluntary
 * and involuntary context switches (probe_site_info's usage fields; the text and json
 * reports show them). It costs two getrusage(RUSAGE_THREAD) calls per scope, which
 * are kept outside the timed region; see docs/rusage.md for the measured cost. Where
 * the system has no per-thread usage it times the scope only.
 */
#define PROBE_RUSAGE_SCOPE(name) PROBE__RUSAGE_SCOPE_AT(PROBE__UNIQ(probe__site_), name)
#endif

#endif /* PROBE_RUSAGE_H */
