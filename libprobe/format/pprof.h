/* Internal: the built-in "pprof" formatter (the sampled stacks as a gzip-compressed
 * profile.proto message for `go tool pprof`; docs/formats.md). */
#ifndef PROBE_FORMAT_PPROF_H
#define PROBE_FORMAT_PPROF_H

#include <probe/report.h>

/* No options: anything but "" is PROBE_EINVAL. */
struct options_error;
int pprof_check_options(const char *options, struct options_error *err);

/* The formatter's write callback. */
int pprof_write(const probe_snapshot *snap, probe_writer *w, const char *options,
                void *user);

#endif
