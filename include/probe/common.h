/*
 * libprobe: what every module header shares: the export macro, the error codes,
 * and the kinds of site. Included by <probe/probe.h>; not needed on its own.
 */
#ifndef PROBE_COMMON_H
#define PROBE_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

#define PROBE_VERSION_MAJOR 0
#define PROBE_VERSION_MINOR 1
#define PROBE_VERSION_PATCH 0

#if defined(__GNUC__) || defined(__clang__)
#define PROBE_EXPORT __attribute__((visibility("default")))
#else
#define PROBE_EXPORT
#endif

/* ---- errors ------------------------------------------------------------------ */

#define PROBE_EPERM     (-1)    /**< Not permitted (e.g. raising a hard limit). */
#define PROBE_ENOENT    (-2)    /**< No such file or directory (or no such entry). */
#define PROBE_EIO       (-5)    /**< An I/O call failed (errno is kept). */
#define PROBE_ENXIO     (-6)    /**< The output path is a FIFO nobody reads. */
#define PROBE_EBADF     (-9)    /**< A bad file descriptor. */
#define PROBE_ENOMEM    (-12)   /**< Out of memory. */
#define PROBE_EACCES    (-13)   /**< Permission denied. */
#define PROBE_EBUSY     (-16)   /**< Already running. */
#define PROBE_EEXIST    (-17)   /**< The name is already taken. */
#define PROBE_EINVAL    (-22)   /**< An argument is invalid. */
#define PROBE_ENOSPC    (-28)   /**< A fixed-size table or buffer is full. */
#define PROBE_ERANGE    (-34)   /**< A value is out of range. */
#define PROBE_ELOOP     (-40)   /**< The output path is a symbolic link. */
#define PROBE_ENOTSUP   (-95)   /**< Not supported on this platform. */
#define PROBE_EALREADY  (-114)  /**< Already done (e.g. an object freed twice). */
#define PROBE_ENODATA   (-4096) /**< Nothing has been recorded yet. */
#define PROBE_EFORMAT   (-4097) /**< A formatter failed to produce its output. */
#define PROBE_EDISABLED (-4098) /**< libprobe is compiled out (-DPROBE_DISABLE). */

/*
 * Compiled out. With -DPROBE_DISABLE every macro is nothing and every public function
 * is a static inline stub, so a program builds and links with no libprobe at all.
 * A stub evaluates its arguments (they are function arguments) and does nothing else:
 * a function that returns an error code returns PROBE_EDISABLED; a count, a flag
 * (probe_is_recording(), ..._is_running()) or a size returns 0; a pointer NULL;
 * probe_strerror() a fixed string. The pattern, at the end of each module header,
 * after its declarations and inside its extern "C":
 *
 *   #ifdef PROBE_DISABLE
 *   #define probe_thing_do probe__off_thing_do
 *
 *   PROBE__STUB int probe_thing_do(int arg) { (void)arg; return PROBE_EDISABLED; }
 *   #endif
 *
 * The #define sends every later use, calls and &probe_thing_do alike, to the stub,
 * so the documented declaration above stays as it is and is never referenced. A new
 * public function gets its two lines there; tests/build/stubs.c checks them all.
 */
#define PROBE__STUB static inline

/**
 * Describe an error code.
 *
 * @param err  Any value; PROBE_E* codes and other negative errno values are named.
 * @return A static string, never NULL ("unknown error" for unknown values).
 * @note Thread-safe and async-signal-safe.
 */
PROBE_EXPORT const char *probe_strerror(int err);

/* Compiled out: each function above is a stub (the pattern: <probe/common.h>). */
#ifdef PROBE_DISABLE
#define probe_strerror probe__off_strerror

PROBE__STUB const char *probe_strerror(int err)
{
    (void)err;
    return "libprobe is compiled out (PROBE_DISABLE)";
}
#endif /* PROBE_DISABLE */

/** Kinds of instrumentation site. */
typedef enum probe_kind {
    PROBE_KIND_SCOPE = 0,   /**< A timed block: PROBE_SCOPE, PROBE_FUNC, PROBE_BEGIN. */
    PROBE_KIND_LINE = 1,    /**< A line hit counter: PROBE_LINE. */
    PROBE_KIND_COUNTER = 2  /**< A named counter: PROBE_COUNT. */
} probe_kind;

/** Not for direct use: a scope's handle between enter and exit. */
typedef int probe__token;

/** Not for direct use: in a site's kind, marks a PROBE_RUSAGE_SCOPE site. */
#define PROBE__SITE_RUSAGE 0x100u

#ifdef __cplusplus
}
#endif

#endif /* PROBE_COMMON_H */
