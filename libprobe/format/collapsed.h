/* Internal: the built-in "collapsed" formatter (FlameGraph / speedscope folded stacks,
 * docs/formats.md). */
#ifndef PROBE_FORMAT_COLLAPSED_H
#define PROBE_FORMAT_COLLAPSED_H

#include <probe/report.h>

/* Options: "weight=self_ns|calls"; anything else is PROBE_EINVAL. */
struct options_error;
int collapsed_check_options(const char *options, struct options_error *err);

/* The formatter's write callback. */
int collapsed_write(const probe_snapshot *snap, probe_writer *w, const char *options,
                    void *user);

#endif
