/* Internal: the built-in "html" formatter (a self-contained page, docs/formats.md). */
#ifndef PROBE_FORMAT_HTML_H
#define PROBE_FORMAT_HTML_H

#include <probe/report.h>

/* Takes no options: anything but "" is PROBE_EINVAL. */
struct options_error;
int html_check_options(const char *options, struct options_error *err);

/* The formatter's write callback. */
int html_write(const probe_snapshot *snap, probe_writer *w, const char *options,
               void *user);

#endif
