/* Internal: the built-in "json" formatter (schema "probe/1", docs/json-schema.md). */
#ifndef PROBE_FORMAT_JSON_H
#define PROBE_FORMAT_JSON_H

#include <probe/report.h>

/* Takes no options: anything but "" is PROBE_EINVAL. */
int json_check_options(const char *options);

/* The formatter's write callback. */
int json_write(const probe_snapshot *snap, probe_writer *w, const char *options,
               void *user);

#endif
