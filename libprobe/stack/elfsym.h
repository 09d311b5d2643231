/* Internal: function names from a loaded module's ELF symbol table (.symtab), which
 * dladdr(3) does not read: it sees only .dynsym, so a program linked without
 * -rdynamic, and every static function, would stay "module+0xoffset". Snapshot time
 * only, never in a signal handler. Thread-safe (one mutex around the cache). */
#ifndef PROBE_STACK_ELFSYM_H
#define PROBE_STACK_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

#include "attrs.h"
#include "modules.h"

/* The name of the function holding @addr in its module's .symtab, copied to @buf
 * (truncated to @len). The file read must be the one loaded: its GNU build-id must be
 * the loaded module's (a file replaced on disk, a program started through an
 * explicit loader, a module named by a relative path would otherwise give wrong
 * names). 0, PROBE_ENOENT if none (no module, no such file, no .symtab, no function
 * there), PROBE_ENOMEM. */
int elfsym_lookup(uintptr_t addr, char *buf, size_t len);

/* Load and pin the tables of every module in the published module table, for
 * elfsym_lookup_pinned(): the fault dumper's names, read in a signal handler. Pinned
 * tables stay for the life of the library (at most 3/4 of the cache's slots). 0,
 * PROBE_ENOENT (no module table yet), PROBE_ENOMEM (some were not pinned). */
int elfsym_pin_loaded(void);

/* The function holding @addr in the pinned table of module @m (found in the current
 * module table): its name (which lives as long as the library) and @addr's offset
 * into it. 0, or PROBE_ENOENT (not pinned, or no function there). Lock-free. */
PROBE_SIGSAFE int elfsym_lookup_pinned(const struct module *m, uintptr_t addr,
                                       const char **ret_name, uintptr_t *ret_offset);

/* Take (@lock 1) or release (0) the cache's lock, around fork(). */
void elfsym_fork_lock(int lock);

#endif
