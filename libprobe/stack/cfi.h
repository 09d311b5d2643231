/* DWARF CFI unwinding for x86-64 from a signal handler, with no dl_iterate_phdr(),
 * dladdr(), malloc or lock on the signal side (libunwind calls dl_iterate_phdr()
 * from the handler, which deadlocks against dlopen() or a SIGPROF inside the
 * loader: gperftools #775, dd-trace-dotnet #5660).
 *
 * The module table (modules.c) records, outside any handler, each loaded module's
 * segments and, through cfi_parse_table(), its .eh_frame_hdr binary search table.
 * cfi_step() then finds a PC's FDE by binary search in those tables, runs its CIE's
 * and its own call frame instructions up to the PC, and computes the caller's
 * registers, reading .eh_frame only inside the module's recorded segments and the
 * stack only inside the thread's [lo, hi).
 *
 * Limits: a module loaded since the last modules_refresh() has no table (the caller
 * falls back to frame pointers); the sampler thread refreshes within its scan
 * interval after a dlopen() or dlclose(), and a refresh never rewrites a table a
 * handler is reading (modules.h). Beyond MODULES_MAX modules, the rest have none. */
#ifndef PROBE_STACK_CFI_H
#define PROBE_STACK_CFI_H

#include <stdint.h>

#include "attrs.h"
#include "modules.h"

/* The registers an x86-64 unwind needs: rip, rsp, rbp. */
struct cfi_regs {
    uintptr_t pc, sp, fp;
};

enum cfi_result {
    CFI_NONE = 0,       /* no FDE covers the PC (or no table): use frame pointers */
    CFI_STEPPED = 1,    /* *regs is now the caller's frame */
    CFI_END = 2,        /* the outermost frame: the return address is undefined */
    CFI_FAILED = -1,    /* an FDE, but rules we do not follow (expressions, CFA in
                           another register) or a read out of bounds */
};

/* Find @m's .eh_frame_hdr table (m->cfi_table, m->cfi_count; none: 0). At refresh. */
void cfi_parse_table(struct module *m);

/* Refresh the module table (modules_refresh()): for tests. */
void cfi_refresh(void);

/* Unwind one frame: @regs from the frame at @regs->pc to its caller's. @is_return:
 * @regs->pc is a return address (every frame but the interrupted one), so its FDE
 * and row are looked up at pc - 1. Stack reads stay in [@lo, @hi). @regs is
 * written only on CFI_STEPPED. */
PROBE_SIGSAFE enum cfi_result cfi_step_in(const struct module_table *t,
                                          struct cfi_regs *regs, int is_return,
                                          uintptr_t lo, uintptr_t hi);
/* The same in the published table (entered and left around the step). */
PROBE_SIGSAFE enum cfi_result cfi_step(struct cfi_regs *regs, int is_return,
                                       uintptr_t lo, uintptr_t hi);

/* Does some module's table cover @pc (for tests and the caller's heuristics)? */
PROBE_SIGSAFE int cfi_has_table_in(const struct module_table *t, uintptr_t pc);
PROBE_SIGSAFE int cfi_has_table(uintptr_t pc);

#endif
