/* Internal: the built-in "chrome" formatter (Trace Event Format, docs/formats.md). */
#ifndef PROBE_FORMAT_CHROME_H
#define PROBE_FORMAT_CHROME_H

#include <probe/report.h>

/* Takes no options: anything but "" is PROBE_EINVAL. */
struct options_error;
int chrome_check_options(const char *options, struct options_error *err);

/* The formatter's write callback. */
int chrome_write(const probe_snapshot *snap, probe_writer *w, const char *options,
                 void *user);

#endif
