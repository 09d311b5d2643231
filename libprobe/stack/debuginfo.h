/* Internal: names and source lines from debugging information through elfutils'
 * libdwfl (built only with the "libdw" option): separate debuginfo files
 * (/usr/lib/debug) and DWARF line tables. Snapshot time only, never in a signal
 * handler; thread-safe (one mutex around the one Dwfl session). */
#ifndef PROBE_STACK_DEBUGINFO_H
#define PROBE_STACK_DEBUGINFO_H

#include <stddef.h>
#include <stdint.h>

#include "attrs.h"
#include "modules.h"

/* The name of the function holding @addr, copied to @buf (truncated to @len). 0, or
 * PROBE_ENOENT. */
int debuginfo_name(uintptr_t addr, char *buf, size_t len);

/* The source file and line of @addr. @ret_file lives as long as the process. 0, or
 * PROBE_ENOENT, PROBE_ENOMEM. */
int debuginfo_line(uintptr_t addr, const char **ret_file, unsigned *ret_line);

/* Read @m's line table (every row of its compilation units) and pin it for
 * debuginfo_line_pinned(), when the module's own file has one (separate debuginfo is
 * not read). 0, PROBE_ENOENT (no line table), PROBE_ENOMEM (over the bound of rows or
 * tables). */
int debuginfo_pin_lines(const struct module *m);

/* The file and line of @addr in module @m's pinned table. Lock-free. 0, or
 * PROBE_ENOENT. */
PROBE_SIGSAFE int debuginfo_line_pinned(const struct module *m, uintptr_t addr,
                                        const char **ret_file, unsigned *ret_line);

/* Take (@lock 1) or release (0) the session's lock, around fork(). */
void debuginfo_fork_lock(int lock);

#endif
