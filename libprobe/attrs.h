/* The attribute macros every part of the library shares. Internal, never installed. */
#ifndef PROBE_ATTRS_H
#define PROBE_ATTRS_H

/* Not exported from the shared library (it is built -fvisibility=hidden; this marks
 * declarations of variables another file defines). */
#define HIDDEN __attribute__((visibility("hidden")))

/* A slow path: out of line, laid out away from the hot code. */
#define COLD __attribute__((cold, noinline))

/* Marks a function reachable from a signal handler (STYLE.md): only
 * async-signal-safe calls, preallocated memory, errno preserved. */
#define PROBE_SIGSAFE

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif
