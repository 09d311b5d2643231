/* Native stacks, for every part that takes them (the sampler's handler and wall
 * thread, the fault dumper): async-signal-safe unwinding from a signal's ucontext,
 * a stack scan for a thread blocked in the kernel, and a thread's stack bounds. All
 * of it reads the module table (modules.h) and never calls dl_iterate_phdr(),
 * dladdr(), malloc or a lock. */
#ifndef PROBE_STACK_UNWIND_H
#define PROBE_STACK_UNWIND_H

#include <stddef.h>
#include <stdint.h>

#include "attrs.h"

/* The interrupted PC and its callers, innermost first, at most @max, reading the
 * stack only inside [@lo, @hi) (the PC alone when @lo == @hi == 0). */
PROBE_SIGSAFE unsigned unwind_context(const void *ucontext, uintptr_t lo, uintptr_t hi,
                                      uintptr_t *pcs, unsigned max);

/* The callers of a thread blocked in the kernel, found by scanning its stack up
 * from @sp (read from another thread with process_vm_readv, so a bad guess never
 * faults): @pc first, then return addresses, innermost first. Heuristic: a word is
 * taken when it returns just after a call into loaded code; a frame-pointer chain is
 * followed from the first frame record found. Uses 4 KiB of stack. */
PROBE_SIGSAFE unsigned unwind_scan(uintptr_t sp, uintptr_t pc, uintptr_t lo, uintptr_t hi,
                                   uintptr_t *pcs, unsigned max);

/* The bounds of the stack that holds @sp: the mapping around it in
 * /proc/self/maps, read with read(2). 0, or -1 when no mapping holds it. */
PROBE_SIGSAFE int unwind_stack_bounds(uintptr_t sp, uintptr_t *ret_lo, uintptr_t *ret_hi);

/* The stack pointer and PC of a thread blocked in the kernel, from the @n bytes of
 * its /proc/self/task/TID/syscall: the syscall number, its six arguments, then the
 * stack pointer and PC ("-1 sp pc" outside a syscall). 1, or 0 when the thread is
 * "running" (the kernel says so for any thread in state R) or the line is not one. */
PROBE_SIGSAFE int unwind_syscall_regs(const char *line, size_t n, uintptr_t *ret_sp,
                                      uintptr_t *ret_pc);

/* The file mapped at @addr (from /proc/self/maps, read with read(2)) into @path, and
 * @addr's offset in that file: for modules loaded since the module table was last
 * refreshed. 0, or -1 when no file is mapped there (or its path is longer than @len). */
PROBE_SIGSAFE int unwind_mapped_file(uintptr_t addr, char *path, size_t len,
                                     uint64_t *ret_offset);

#endif
