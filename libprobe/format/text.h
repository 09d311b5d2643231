/* Internal: the built-in "text" formatter. */
#ifndef PROBE_FORMAT_TEXT_H
#define PROBE_FORMAT_TEXT_H

#include <probe/report.h>

/* Options: "sort=total|self|calls|name" (comma-separated key=value). */
struct options_error;
int text_check_options(const char *options, struct options_error *err);

/* The formatter's write callback. */
int text_write(const probe_snapshot *snap, probe_writer *w, const char *options,
               void *user);

#endif
