/* Internal: the memory summary table (memtext.c), in the text report and
 * probe_mem_summary_fd(). */
#ifndef PROBE_FORMAT_MEMTEXT_H
#define PROBE_FORMAT_MEMTEXT_H

#include <probe/mem.h>
#include <probe/report.h>

/* Write the table for @snap; nothing when it has no tags. */
int memtext_write(probe_writer *w, const probe_mem_snapshot *snap);

#endif
