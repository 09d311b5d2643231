/*
 * libprobe: in-process profiling, tracing and resource accounting for C.
 *
 * Overview of every entry point (this header includes the module headers):
 *
 *   Lifecycle         probe_start(), probe_stop(), probe_reset(), probe_is_recording(),
 *                     probe_strerror(), probe_thread_name()
 *   Instrumentation   PROBE_SCOPE(name), PROBE_FUNC(), PROBE_BEGIN(name)/PROBE_END(),
 *                     PROBE_LINE(), PROBE_COUNT(name, delta)
 *   Reports           <probe/report.h>: probe_snapshot_take(), accessors,
 *                     probe_report_write(), probe_report_fd(), probe_formatter_register()
 *                     probe_format_check() (why a format name is refused)
 *                     saved reports: probe_snapshot_load(), probe_snapshot_merge()
 *   Resource usage    <probe/rusage.h>: probe_getrusage(), probe_rusage_diff(),
 *                     probe_rusage_format(), probe_current_rss(), probe_getrlimit(),
 *                     probe_setrlimit(), PROBE_RUSAGE_SCOPE(name)
 *   Sampler           <probe/sampler.h>: probe_sampler_start(), probe_sampler_stop(),
 *                     probe_sampler_is_running(); samples in reports through
 *                     probe_snapshot_sample(), probe_snapshot_frame(), ...
 *   Timeline          <probe/trace.h>: probe_trace_start() (flight recorder or
 *                     stream), probe_trace_stop(), probe_trace_is_active(),
 *                     probe_trace_instant(); events through probe_snapshot_event()
 *   Fault dumps       <probe/fault.h>: probe_fault_enable(), probe_fault_dump(),
 *                     probe_fault_dump_later(), probe_fault_register()
 *   Budgets           <probe/budget.h>: probe_budget_measure(), probe_budget_check(),
 *                     probe_budget_on_valgrind(); <probe/check.h> (not included here):
 *                     ck_assert_probe_cpu_below(), ck_assert_probe_instructions_below(),
 *                     ck_assert_probe_scope_calls(), ck_assert_probe_scope_mean_below()
 *   Memory            <probe/mem.h>: PROBE_TRACK_ALLOC(tag, ptr, size),
 *                     PROBE_TRACK_FREE(tag, ptr), probe_mem_track_alloc(),
 *                     probe_mem_track_free(), probe_mem_snapshot_take(),
 *                     probe_mem_snapshot_diff(), accessors, probe_mem_summary_fd()
 *
 * Recording is on from the moment the library is loaded: no explicit init is needed.
 * Every macro site is a static descriptor placed in the "probe_sites" linker section,
 * so the library knows each site at load time, including sites that never ran.
 *
 * Compile with -DPROBE_DISABLE to turn every macro into nothing: no argument is
 * evaluated and no code or data is emitted. Every function then becomes a static
 * inline stub (PROBE_EDISABLED for an error code, 0 or NULL otherwise; see
 * <probe/common.h>), so such a program links without libprobe.
 *
 * Errors: functions that can fail return 0 (or a count) on success and a negative
 * PROBE_E* code on failure. Where errno has the name the code equals -errno.
 */
#ifndef PROBE_PROBE_H
#define PROBE_PROBE_H

#include <stdint.h>

#include <probe/common.h>
#include <probe/rusage.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- lifecycle --------------------------------------------------------------- */

/**
 * Start (or resume) recording. Recording is already on when the library loads;
 * calling this while recording does nothing.
 *
 * @retval 0  Success (also when already recording).
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_start(void);

/**
 * Stop recording. Data recorded so far is kept for reports. Scopes that were entered
 * while recording are still timed when they close. Idempotent. When a flight-recorder
 * trace was started with a path (<probe/trace.h>), its events are written there.
 *
 * @retval 0       Success (also when already stopped).
 * @retval other   Writing the flight recorder's file failed (probe_report_write()).
 * @note Thread-safe. Async-signal-safe, unless a flight recorder has a path.
 */
PROBE_EXPORT int probe_stop(void);

/**
 * @return 1 when recording, 0 when stopped.
 * @note Thread-safe and async-signal-safe.
 */
PROBE_EXPORT int probe_is_recording(void);

/**
 * Forget everything recorded, in every thread, including the aggregate of threads
 * that have exited and the flight-recorder timeline. Sites stay registered. A scope
 * that is open across the reset is not counted. Recording state (started/stopped)
 * and tracing are unchanged, and a stream trace being written goes on untouched.
 *
 * @note Thread-safe: other threads may be recording. Not async-signal-safe.
 */
PROBE_EXPORT void probe_reset(void);

/**
 * Name the calling thread in reports. The name is copied (at most 31 bytes kept).
 *
 * @param name  A NUL-terminated name; any bytes are allowed (reports escape them).
 * @retval 0             Success.
 * @retval PROBE_EINVAL  @p name is NULL.
 * @retval PROBE_ENOMEM  The thread's state could not be allocated.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_thread_name(const char *name);

/* ---- sites (not for direct use: what the macros expand to) -------------------- */


#define PROBE__SITE_MAGIC 0x50524231u /* "PRB1": descriptor layout version 1 */

/**
 * One static descriptor per macro site. Not for direct use. The layout is part of the
 * ABI: a new layout gets a new magic, and the library keeps reading the old ones.
 */
struct probe__site {
    uint32_t magic;         /* PROBE__SITE_MAGIC */
    uint32_t kind;          /* probe_kind, | PROBE__SITE_RUSAGE */
    uint32_t line;
    uint32_t id;            /* assigned by the library at registration; 0 = not yet */
    const char *name;       /* NULL for PROBE_LINE */
    const char *function;
    const char *file;
};

/** Not for direct use: nonzero while recording. */
extern PROBE_EXPORT int probe__recording;

/* The scope's two calls go through the GOT directly, not through a PLT stub: one
 * jump less each, in position-independent code (noplt is a GCC attribute). */
#if defined(__has_attribute)
#if __has_attribute(noplt)
#define PROBE__NOPLT __attribute__((noplt))
#endif
#endif
#ifndef PROBE__NOPLT
#define PROBE__NOPLT
#endif

PROBE_EXPORT PROBE__NOPLT probe__token probe__scope_enter(struct probe__site *site);
PROBE_EXPORT PROBE__NOPLT void probe__scope_exit(probe__token token);
PROBE_EXPORT probe__token probe__scope_begin(struct probe__site *site);
PROBE_EXPORT void probe__scope_end(void);
PROBE_EXPORT void probe__line_hit(struct probe__site *site);
PROBE_EXPORT void probe__count_add(struct probe__site *site, int64_t delta);
PROBE_EXPORT void probe__sites_register(struct probe__site **start,
                                        struct probe__site **stop);
PROBE_EXPORT void probe__sites_unregister(struct probe__site **start,
                                          struct probe__site **stop);

#if defined(PROBE_DISABLE) || !(defined(__GNUC__) || defined(__clang__))
/* Compiled out (or a compiler without the GNU extensions the sites need). */
#define PROBE_SCOPE(name) ((void)0)
#define PROBE_FUNC() ((void)0)
#define PROBE_BEGIN(name) ((void)0)
#define PROBE_END() ((void)0)
#define PROBE_LINE() ((void)0)
#define PROBE_COUNT(name, delta) ((void)0)
#else

#define PROBE__CAT2(a, b) a##b
#define PROBE__CAT(a, b) PROBE__CAT2(a, b)
#ifdef __COUNTER__
#define PROBE__UNIQ(p) PROBE__CAT(p, __COUNTER__)
#else
#define PROBE__UNIQ(p) PROBE__CAT(p, __LINE__)
#endif

#if defined(__has_attribute)
#if __has_attribute(retain)
#define PROBE__RETAIN __attribute__((retain))
#endif
#endif
#ifndef PROBE__RETAIN
#define PROBE__RETAIN
#endif

/* The section holds pointers to descriptors, so the compiler's padding of large
 * objects cannot break the array the library walks. g++ refuses to mix, in one
 * section, variables of inline functions (COMDAT) with others, so with g++ a C++
 * site registers when it first runs instead: C++ sites that never ran are not
 * listed (clang++ and C have no such limit). */
#if defined(__cplusplus) && !defined(__clang__)
#define PROBE__SITE_DECL(var, kind, name)                                              \
    static struct probe__site var = {PROBE__SITE_MAGIC, kind, __LINE__, 0,             \
                                     name, __func__, __FILE__}
#else
#define PROBE__SITE_DECL(var, kind, name)                                              \
    static struct probe__site var = {PROBE__SITE_MAGIC, kind, __LINE__, 0,             \
                                     name, __func__, __FILE__};                        \
    static struct probe__site *PROBE__CAT(var, _p)                                     \
        __attribute__((section("probe_sites"), used)) PROBE__RETAIN = &var
#endif

static inline int
probe__on(void)
{
    return __builtin_expect(__atomic_load_n(&probe__recording, __ATOMIC_RELAXED), 1);
}

static inline void
probe__scope_cleanup(probe__token *token)
{
    if (*token)
        probe__scope_exit(*token);
}

#define PROBE__SCOPE_AT(var, name)                                                     \
    PROBE__SITE_DECL(var, PROBE_KIND_SCOPE, name);                                     \
    probe__token PROBE__CAT(var, _t) __attribute__((cleanup(probe__scope_cleanup),    \
                                                    unused)) =                         \
        probe__on() ? probe__scope_enter(&var) : 0

/** Time the rest of the enclosing block as a scope named @p name (a string literal).
 *
 * @note Thread-safe: each thread records into its own tables. In a signal handler a
 * scope is recorded exactly, on the interrupted thread's stack, once its thread has
 * met the site and the path (the scopes it is nested in): the first call of a site
 * or of a path on a thread allocates, which is not async-signal-safe. Give a
 * handler's scopes a first call outside the handler (under the scopes the handler
 * may interrupt) when the handler can interrupt malloc(). One figure is not exact
 * there: when the handler's scope and the one it interrupts are the same site, and
 * both set a new longest (or shortest) call, the site's max (or min) may keep the
 * interrupted call's. */
#define PROBE_SCOPE(name) PROBE__SCOPE_AT(PROBE__UNIQ(probe__site_), name)

/** Time the rest of the enclosing block as a scope named after the function. */
#define PROBE_FUNC() PROBE__SCOPE_AT(PROBE__UNIQ(probe__site_), __func__)

#define PROBE__BEGIN_AT(var, name)                                                     \
    do {                                                                               \
        PROBE__SITE_DECL(var, PROBE_KIND_SCOPE, name);                                 \
        (void)probe__scope_begin(&var);                                                \
    } while (0)

/**
 * Open a scope named @p name that PROBE_END() closes, for code that cannot use the
 * cleanup attribute. Unlike PROBE_SCOPE it calls into the library even while
 * recording is stopped, so that each PROBE_END() still finds its own PROBE_BEGIN(). A PROBE_END() with no open PROBE_BEGIN() on the thread is counted
 * as unbalanced in the report and otherwise ignored.
 */
#define PROBE_BEGIN(name) PROBE__BEGIN_AT(PROBE__UNIQ(probe__site_), name)

/** Close the innermost scope opened by PROBE_BEGIN() on this thread. */
#define PROBE_END() probe__scope_end()

#define PROBE__LINE_AT(var)                                                            \
    do {                                                                               \
        PROBE__SITE_DECL(var, PROBE_KIND_LINE, (const char *)0);                       \
        if (probe__on())                                                               \
            probe__line_hit(&var);                                                     \
    } while (0)

/** Count one hit of this line. Reports list lines that never ran with 0 hits. */
#define PROBE_LINE() PROBE__LINE_AT(PROBE__UNIQ(probe__site_))

#define PROBE__COUNT_AT(var, name, delta)                                              \
    do {                                                                               \
        PROBE__SITE_DECL(var, PROBE_KIND_COUNTER, name);                               \
        if (probe__on())                                                               \
            probe__count_add(&var, (int64_t)(delta));                                  \
    } while (0)

/** Add @p delta (any integer, may be negative) to the counter named @p name. All
 * PROBE_COUNT sites with the same name add to one counter. */
#define PROBE_COUNT(name, delta) PROBE__COUNT_AT(PROBE__UNIQ(probe__site_), name, delta)

/* Register this module's sites (executable or shared library) when it loads, and
 * copy them out when it unloads so dlclose is survivable. Every translation unit
 * that includes this header does it; the library ignores repeats. */
extern struct probe__site *__start_probe_sites[]
    __attribute__((weak, visibility("hidden")));
extern struct probe__site *__stop_probe_sites[]
    __attribute__((weak, visibility("hidden")));

__attribute__((constructor, unused)) static void
probe__module_load(void)
{
    probe__sites_register(__start_probe_sites, __stop_probe_sites);
}

__attribute__((destructor, unused)) static void
probe__module_unload(void)
{
    probe__sites_unregister(__start_probe_sites, __stop_probe_sites);
}

#endif /* PROBE_DISABLE */

/* Compiled out: each function above is a stub (the pattern: <probe/common.h>). */
#ifdef PROBE_DISABLE
#define probe_start probe__off_start
#define probe_stop probe__off_stop
#define probe_is_recording probe__off_is_recording
#define probe_reset probe__off_reset
#define probe_thread_name probe__off_thread_name

PROBE__STUB int probe_start(void) { return PROBE_EDISABLED; }
PROBE__STUB int probe_stop(void) { return PROBE_EDISABLED; }
PROBE__STUB int probe_is_recording(void) { return 0; }
PROBE__STUB void probe_reset(void) {}
PROBE__STUB int probe_thread_name(const char *name)
{
    (void)name;
    return PROBE_EDISABLED;
}
#endif /* PROBE_DISABLE */

#ifdef __cplusplus
}
#endif

#include <probe/report.h>
#include <probe/trace.h>
#include <probe/fault.h>
#include <probe/sampler.h>
#include <probe/budget.h>
#include <probe/mem.h>
#include <probe/fleet.h>

#endif /* PROBE_PROBE_H */
