/* Internal: the table of formatters and the report entry points. */
#ifndef PROBE_FORMAT_REGISTRY_H
#define PROBE_FORMAT_REGISTRY_H

#include <probe/report.h>

/* Slots in the table, built-in formatters included. */
#define REGISTRY_SLOTS 64
/* Longest format name, without the NUL. */
#define REGISTRY_NAME_MAX 31

/* Signature of a formatter's write callback. */
typedef int registry_write_fn(const probe_snapshot *snap, probe_writer *w,
                              const char *options, void *user);

struct options_error;

/* Signature of a built-in formatter's option check, run before any output; it says
 * why in @err (when not NULL) on PROBE_EINVAL. */
typedef int registry_check_fn(const char *options, struct options_error *err);

/* 1 when @format ("name[:options]") names an active formatter, else 0; either way
 * @names gets the active names, comma-separated (truncated to @size). */
int registry_describe(const char *format, char *names, size_t size);

#endif
