/*
 * libprobe tracing: a timeline of scopes per thread, for Perfetto / chrome://tracing.
 *
 * While tracing, every PROBE_SCOPE (and PROBE_BEGIN/END, PROBE_RUSAGE_SCOPE) also
 * records a begin and an end event with its timestamps, every PROBE_COUNT records the
 * calling thread's new value of the counter, and probe_trace_instant() marks a
 * moment. Two policies keep memory bounded:
 *
 *   PROBE_TRACE_FLIGHT  a flight recorder: each thread keeps its last N events in a
 *                       ring; reports ("chrome", "speedscope") and the fault dumper
 *                       read them. Older events are overwritten and counted.
 *   PROBE_TRACE_STREAM  a background writer takes what each thread's ring holds
 *                       while the program runs (woken when a ring fills another
 *                       quarter) and appends it, compactly encoded, to an unlinked
 *                       temporary file beside the trace; stopping converts that to
 *                       the Chrome trace file. So a long run is bounded in memory,
 *                       not in length. Events that find a thread's ring full (the
 *                       writer did not get a CPU, or the disk did not keep up) are
 *                       dropped and counted.
 *
 * Dropped events are never silent: the count is in every trace written.
 *
 * A forked child starts with tracing off and no timeline; a stream the parent is
 * writing stays the parent's.
 */
#ifndef PROBE_TRACE_H
#define PROBE_TRACE_H

#include <stddef.h>

#include <probe/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** How events are kept. */
typedef enum probe_trace_mode {
    PROBE_TRACE_FLIGHT = 0,     /**< The last N events per thread, in memory. */
    PROBE_TRACE_STREAM = 1      /**< Everything, written to a file as it fills. */
} probe_trace_mode;

/** Options for probe_trace_start(). Initialise with PROBE_TRACE_OPTIONS_INIT. */
typedef struct probe_trace_options {
    size_t size;                /**< sizeof(probe_trace_options): lets the struct grow. */
    probe_trace_mode mode;
    size_t buffer_events;       /**< Flight: events kept per thread (0 = 65536).
                                     Stream: half a thread's ring, 24 bytes an event
                                     (0 = 262144: a 12 MiB ring, touched as it
                                     fills). Else 16 .. 16777216. */
    const char *path;           /**< Flight (optional): where the recorder is written
                                     as a Chrome trace by probe_stop(),
                                     probe_trace_stop() and at exit.
                                     Stream: the Chrome trace file to write (created
                                     0644 or truncated at the start, a symlink is
                                     refused; written when the stream stops). The
                                     raw events wait in an unlinked file in the same
                                     directory (else $TMPDIR or /tmp), about 4 bytes
                                     an event, gone when the stream stops or the
                                     process dies. */
} probe_trace_options;

#define PROBE_TRACE_OPTIONS_INIT {sizeof(probe_trace_options), PROBE_TRACE_FLIGHT, 0, NULL}

/**
 * Start tracing. Recording must also be on (probe_start()) for events to be kept.
 *
 * @param opts  NULL for a flight recorder of 65536 events per thread.
 * @retval 0              Success.
 * @retval PROBE_EBUSY    Tracing is already on.
 * @retval PROBE_EINVAL   Bad options: size too small, unknown mode, buffer_events out
 *                        of range, or stream mode without a path.
 * @retval PROBE_ELOOP    Stream mode: the path is a symbolic link.
 * @retval PROBE_ENXIO    Stream mode: the path is a FIFO nobody has open for reading.
 * @retval -errno         Stream mode: the file could not be created, or the writer
 *                        thread could not start.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_trace_start(const probe_trace_options *opts);

/**
 * Stop tracing. Flight mode: the events stay for reports until the next start or
 * probe_reset(). Stream mode: every buffered event is taken, the raw events are
 * converted to the Chrome trace (with thread names and the dropped-event count: about
 * 100 ns an event, so seconds for a long run, during which fork() waits) and the
 * file is closed; a stream still running when the process calls exit() is stopped
 * then. Idempotent.
 *
 * @retval 0             Success (also when tracing was off).
 * @retval PROBE_EIO     Stream mode: writing the file failed at some point; errno kept.
 * @retval PROBE_ENOMEM  Stream mode: the writer ran out of memory; events were lost.
 * @retval other         Flight mode with a path: probe_report_write()'s error.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_trace_stop(void);

/** @return 1 while tracing, else 0. Thread-safe, async-signal-safe. */
PROBE_EXPORT int probe_trace_is_active(void);

/**
 * Mark a moment on the calling thread's timeline. The name is copied (once: names
 * are interned, at most 1024 distinct ones; more share the name "(other)").
 *
 * @retval 0              Recorded, or tracing is off (nothing to do).
 * @retval PROBE_EINVAL   @p name is NULL.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_trace_instant(const char *name);

/* Compiled out: each function above is a stub (the pattern: <probe/common.h>). */
#ifdef PROBE_DISABLE
#define probe_trace_start probe__off_trace_start
#define probe_trace_stop probe__off_trace_stop
#define probe_trace_is_active probe__off_trace_is_active
#define probe_trace_instant probe__off_trace_instant

PROBE__STUB int probe_trace_start(const probe_trace_options *opts)
{
    (void)opts;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_trace_stop(void) { return PROBE_EDISABLED; }
PROBE__STUB int probe_trace_is_active(void) { return 0; }
PROBE__STUB int probe_trace_instant(const char *name)
{
    (void)name;
    return PROBE_EDISABLED;
}
#endif /* PROBE_DISABLE */

#ifdef __cplusplus
}
#endif

#endif /* PROBE_TRACE_H */
