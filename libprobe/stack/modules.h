/* The loaded modules, scanned once for the whole library (the sampler's unwinder, the
 * fault dumper, names at snapshot time): each module's path, load bias, PT_LOAD
 * segments, GNU build-id and unwind table (.eh_frame_hdr).
 *
 * modules_refresh() scans with dl_iterate_phdr() outside any signal handler and
 * publishes the result in one of two tables; a signal handler reads the published one
 * between modules_enter() and modules_leave(), with no lock: a refresh never rewrites
 * the table a reader holds (it waits, bounded, for that table's readers to leave, and
 * gives up rather than overwrite it). Modules that were unloaded are kept in a bounded
 * history, so that an address sampled before a dlclose() is still named and mapped. */
#ifndef PROBE_STACK_MODULES_H
#define PROBE_STACK_MODULES_H

#include <stddef.h>
#include <stdint.h>

#include "attrs.h"

#define MODULES_MAX 256         /* modules recorded; later ones are unknown */
#define MODULES_MAX_SEGMENTS 8  /* PT_LOAD segments recorded per module */
#define MODULES_BUILD_ID_MAX 64
#define MODULES_HISTORY 256     /* unloaded modules remembered (the oldest go first) */

struct module_segment {
    uintptr_t lo, hi;           /* run-time addresses [lo, hi) */
    uint64_t offset;            /* file offset of lo */
    int exec;
};

struct module {
    uintptr_t bias;             /* run-time address - link-time address */
    uintptr_t text_lo, text_hi; /* the executable segments' span: the sort key */
    unsigned nseg;
    struct module_segment seg[MODULES_MAX_SEGMENTS];
    const char *path;           /* the file (the main program's real path); lives as
                                   long as the library; "" when unknown */
    const char *name;           /* as the loader names it ("" for the main program) */
    int main_program;           /* the loader's first entry */
    unsigned char build_id[MODULES_BUILD_ID_MAX];
    unsigned build_id_len;      /* 0: it has none */
    uintptr_t eh_hdr;           /* PT_GNU_EH_FRAME, or 0 */
    uintptr_t cfi_table;        /* its binary search table (cfi.c), or 0 */
    uint32_t cfi_count;
};

struct module_table {
    unsigned n;
    uint64_t generation;        /* of the refresh that filled it */
    struct module m[MODULES_MAX];
};

/* Scan the loaded modules and publish them. Not async-signal-safe (takes the loader
 * lock): never from a handler, never under a lock a dlopen()ed constructor could
 * wait for. 0; PROBE_EBUSY when a reader held the table to be rewritten for longer
 * than the bounded wait (the old table stays published; try again later). */
int modules_refresh(void);

/* A number that changes with every refresh that saw the modules change, for caches
 * of the module list (libdw's session). */
uint64_t modules_generation(void);

/* Refresh only when a module was loaded or unloaded since the last refresh. */
int modules_refresh_if_changed(void);

/* The published table, held until modules_leave(@token): NULL when none was ever
 * published. Wait-free. */
PROBE_SIGSAFE const struct module_table *modules_enter(unsigned *token);
PROBE_SIGSAFE void modules_leave(unsigned token);

/* The module of @t whose executable segment holds @pc, or NULL. */
PROBE_SIGSAFE const struct module *modules_of_pc(const struct module_table *t, uintptr_t pc);

/* Any PT_LOAD segment of a module of @t holds @a. */
PROBE_SIGSAFE const struct module *modules_of_addr(const struct module_table *t, uintptr_t a);

/* The module that holds @addr now, or held it before it was unloaded (the most
 * recent one), copied to @out. 0, or PROBE_ENOENT. Not for signal handlers. */
int modules_find(uintptr_t addr, struct module *out);

/* A copy of the published table's modules (malloc'd, freed by the caller) and their
 * count, for work too long to do while holding the table (a refresh waits for its
 * readers). 0, PROBE_ENOENT (no table yet), PROBE_ENOMEM. */
int modules_copy(struct module **ret, unsigned *ret_n);

/* The segment of @m holding @addr, or NULL. */
PROBE_SIGSAFE const struct module_segment *module_segment_of(const struct module *m,
                                                             uintptr_t addr);

/* The build-id as lowercase hex into @hex (2 * MODULES_BUILD_ID_MAX + 1 bytes). */
PROBE_SIGSAFE void module_build_id_hex(const struct module *m, char *hex);

/* The GNU build-id in the ELF notes [p, p + len): its length (copied to @out), or 0.
 * Every note is checked to lie inside the span. */
unsigned modules_note_build_id(const unsigned char *p, size_t len, unsigned char *out);

void modules_atfork_child(void);
void modules_fork_lock(int lock);

#endif
