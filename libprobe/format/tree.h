/* Internal: the built-in "tree" formatter (the sampled stacks as a call tree, after
 * pyinstrument; docs/formats.md). */
#ifndef PROBE_FORMAT_TREE_H
#define PROBE_FORMAT_TREE_H

#include <probe/report.h>

/* Options: "threshold=PCT" (0..100) and "hide_libs=0|1", comma-separated; anything
 * else is PROBE_EINVAL. */
struct options_error;
int tree_check_options(const char *options, struct options_error *err);

/* The formatter's write callback. */
int tree_write(const probe_snapshot *snap, probe_writer *w, const char *options,
               void *user);

#endif
