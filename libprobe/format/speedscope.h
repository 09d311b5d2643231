/* Internal: the built-in "speedscope" formatter (speedscope file format,
 * docs/formats.md). */
#ifndef PROBE_FORMAT_SPEEDSCOPE_H
#define PROBE_FORMAT_SPEEDSCOPE_H

#include <probe/report.h>

/* Takes no options: anything but "" is PROBE_EINVAL. */
struct options_error;
int speedscope_check_options(const char *options, struct options_error *err);

/* The formatter's write callback. */
int speedscope_write(const probe_snapshot *snap, probe_writer *w, const char *options,
                     void *user);

#endif
