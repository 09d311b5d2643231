/* DWARF CFI unwinding for x86-64 from a signal handler, with no dl_iterate_phdr(),
 * dladdr(), malloc or lock on the signal side (libunwind calls dl_iterate_phdr()
 * from the handler, which deadlocks against dlopen() or a SIGPROF inside the
 * loader: gperftools #775, dd-trace-dotnet #5660).
 *
 * cfi_refresh() records, once, outside any handler, each loaded module's mapped
 * segments and its .eh_frame_hdr binary search table (PT_GNU_EH_FRAME) into static
 * arrays. cfi_step() then finds a PC's FDE by binary search in those tables, runs
 * its CIE's and its own call frame instructions up to the PC, and computes the
 * caller's registers, reading .eh_frame only inside the module's recorded segments
 * and the stack only inside the thread's [lo, hi).
 *
 * Limits: the sampler thread refreshes the tables when modules are loaded or
 * unloaded (unwind_refresh_code()), within its scan interval: until then a new
 * module has no table (the caller falls back to frame pointers), and an unloaded
 * one leaves a stale entry whose memory a handler could read if a PC fell in its old
 * range. Beyond CFI_MAX_MODULES modules, the rest have no table. */
#ifndef PROBE_SAMPLER_CFI_H
#define PROBE_SAMPLER_CFI_H

#include <stdint.h>

#include "core/walk.h"

#define CFI_MAX_MODULES 256     /* modules with a table; later ones are skipped */
#define CFI_MAX_SEGMENTS 8      /* PT_LOAD segments recorded per module */

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

/* Record every loaded module's unwind table. Not async-signal-safe: call it with
 * no handler running cfi_step() (unwind_refresh_code() sees to that). */
void cfi_refresh(void);

/* Withdraw the tables: handlers that start from now on use none (before a refresh
 * while sampling, which then waits for the handlers already running). */
void cfi_unpublish(void);

/* Unwind one frame: @regs from the frame at @regs->pc to its caller's. @is_return:
 * @regs->pc is a return address (every frame but the interrupted one), so its FDE
 * and row are looked up at pc - 1. Stack reads stay in [@lo, @hi). @regs is
 * written only on CFI_STEPPED. */
PROBE_SIGSAFE enum cfi_result cfi_step(struct cfi_regs *regs, int is_return,
                                       uintptr_t lo, uintptr_t hi);

/* Does some module's table cover @pc (for tests and the caller's heuristics)? */
PROBE_SIGSAFE int cfi_has_table(uintptr_t pc);

#endif
