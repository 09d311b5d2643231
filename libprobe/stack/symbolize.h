/* Names and source lines of code addresses, off the signal path (snapshot time):
 * the one place that decides how a frame is named. Thread-safe. */
#ifndef PROBE_STACK_SYMBOLIZE_H
#define PROBE_STACK_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

#include <probe/common.h>

#include "attrs.h"
#include "modules.h"

/* The name of the function at @pc (a return address when @is_return: the call before
 * it is looked up): dladdr(3) (.dynsym), else the module's .symtab or .dynsym
 * (elfsym.c), else, with libdw, its separate debuginfo, else "module+0xoffset" from
 * the module table (also for a module unloaded since), else "[unknown]+0xaddress".
 * Returns a string that lives as long as the library, or @buf. */
const char *symbolize_pc(uintptr_t pc, int is_return, char *buf, size_t len);

/* The source file and line of the code at @pc (a return address when @is_return:
 * the call before it is looked up), from the module's DWARF line table through
 * elfutils' libdw. @ret_file lives as long as the process. 0, PROBE_ENOENT when
 * unknown, PROBE_ENOTSUP when libprobe was built without libdw. */
int symbolize_line(uintptr_t pc, int is_return, const char **ret_file, unsigned *ret_line);

/* Pin the source-line tables of every module in the module table, for
 * symbolize_line_pinned() (the fault dumper's file:line). 0; PROBE_ENOTSUP when
 * libprobe was built without libdw; PROBE_ENOMEM when some were over the bound. */
int symbolize_pin_lines(void);

/* The file and line of @addr (already moved back into its call for a return address)
 * in module @m, from the pinned tables: async-signal-safe. 0, or PROBE_ENOENT. */
PROBE_SIGSAFE int symbolize_line_pinned(const struct module *m, uintptr_t addr,
                                        const char **ret_file, unsigned *ret_line);

/* At load, before the sampler registers its own fork handlers: the symbol caches'
 * locks are taken around fork() after the sampler's (sampler lock, then them). */
void symbolize_init(void);

#endif
