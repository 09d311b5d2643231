/* Internal: what libprobe-instrument asks of libprobe to describe a function it found
 * at run time. Not installed: both libraries are built from this tree. */
#ifndef PROBE_INSTRUMENT_SYMBOL_H
#define PROBE_INSTRUMENT_SYMBOL_H

#include <stddef.h>

#include <probe/common.h>

/**
 * Not for direct use. Describe the function that starts at @p addr: its name (the
 * same names the sampler gives: .dynsym, .symtab, separate debuginfo, else
 * "module+0xoffset") copied to @p name, and where it is copied to @p file: its source
 * file and line when libprobe has libdw and the module has line tables, else the
 * file of the module holding it and line 0, else "?" and 0.
 *
 * @retval 0             Success; @p name and @p file are NUL-terminated.
 * @retval PROBE_EINVAL  A buffer is NULL or empty, or @p ret_line is NULL.
 * @note Thread-safe. Takes the loader's lock (dladdr(3)) and the symbol caches':
 *       never call it under a lock a module constructor could wait for. Not
 *       async-signal-safe.
 */
PROBE_EXPORT int probe__symbol_describe(const void *addr, char *name, size_t name_len,
                                        char *file, size_t file_len, unsigned *ret_line);

#endif
