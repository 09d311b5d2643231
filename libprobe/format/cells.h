/* Internal: cells the text formatters share (text.c, tree.c). */
#ifndef PROBE_FORMAT_CELLS_H
#define PROBE_FORMAT_CELLS_H

#include <stddef.h>
#include <stdint.h>

#include <probe/report.h>

/* @ns in a unit picked for it (ns, µs, ms, s), always 9 columns wide. */
void cells_time(char *buf, size_t size, uint64_t ns);

/* cells_time() without the padding, for running text; points into @buf. */
const char *cells_time_trim(char *buf, size_t size, uint64_t ns);

/* Write a name of any bytes on one line: control bytes as \xNN, NULL as "?". */
int cells_put_name(probe_writer *w, const char *s);

#endif
