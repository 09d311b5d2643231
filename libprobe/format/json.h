/* Internal: the built-in "json" formatter (schema "probe/1", docs/json-schema.md). */
#ifndef PROBE_FORMAT_JSON_H
#define PROBE_FORMAT_JSON_H

#include <probe/report.h>

/* Takes no options: anything but "" is PROBE_EINVAL. */
struct options_error;
int json_check_options(const char *options, struct options_error *err);

/* The formatter's write callback. */
int json_write(const probe_snapshot *snap, probe_writer *w, const char *options,
               void *user);

#endif
