/* Internal: function names from a loaded module's ELF symbol table (.symtab), which
 * dladdr(3) does not read: it sees only .dynsym, so a program linked without
 * -rdynamic, and every static function, would stay "module+0xoffset". Snapshot time
 * only, never in a signal handler. Thread-safe (one mutex around the cache). */
#ifndef PROBE_SAMPLER_ELFSYM_H
#define PROBE_SAMPLER_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

#define ELFSYM_BUILD_ID_MAX 64

/* The loaded module that holds @addr in one of its PT_LOAD segments. */
struct elfsym_module {
    char path[4096];    /* its file (absolute): for the main program "/proc/self/exe" */
    uintptr_t bias;     /* load bias: run-time address - link-time address */
    uintptr_t addr;     /* the address it was found for */
    int main_program;   /* the loader's first entry */
    unsigned char build_id[ELFSYM_BUILD_ID_MAX]; /* its GNU build-id, from memory */
    unsigned build_id_len; /* 0: it has none */
};

/* Find the module holding @addr. 0, or PROBE_ENOENT if no module holds it. */
int elfsym_find_module(uintptr_t addr, struct elfsym_module *out);

/* The name of the function holding @addr in its module's .symtab, copied to @buf
 * (truncated to @len). The file read must be the one loaded: its GNU build-id must be
 * the loaded module's (a file replaced on disk, a program started through an
 * explicit loader, a module named by a relative path would otherwise give wrong
 * names). 0, PROBE_ENOENT if none (no module, no such file, no .symtab, no function
 * there), PROBE_ENOMEM. */
int elfsym_lookup(uintptr_t addr, char *buf, size_t len);

/* A number that changes whenever a module is loaded or unloaded (dl_iterate_phdr's
 * dlpi_adds + dlpi_subs), so that caches of the module list know to refresh. */
uint64_t elfsym_generation(void);

/* Take (@lock 1) or release (0) the cache's lock, around fork(). */
void elfsym_fork_lock(int lock);

#endif
