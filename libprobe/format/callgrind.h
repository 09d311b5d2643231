/* Internal: the built-in "callgrind" formatter (the callgrind profile format,
 * docs/formats.md). */
#ifndef PROBE_FORMAT_CALLGRIND_H
#define PROBE_FORMAT_CALLGRIND_H

#include <probe/report.h>

/* Options: "events=ns|ns+calls"; anything else is PROBE_EINVAL. */
struct options_error;
int callgrind_check_options(const char *options, struct options_error *err);

/* The formatter's write callback. */
int callgrind_write(const probe_snapshot *snap, probe_writer *w, const char *options,
                    void *user);

#endif
