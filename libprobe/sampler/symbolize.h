/* Internal: source lines of sampled addresses, for the formatters (the "pprof" one).
 * symbolize_pc() itself is declared in sampler.h. Snapshot time only, never in a
 * signal handler; thread-safe. */
#ifndef PROBE_SAMPLER_SYMBOLIZE_H
#define PROBE_SAMPLER_SYMBOLIZE_H

#include <stdint.h>

/* The source file and line of the code at @pc (a return address when @is_return:
 * the call before it is looked up), from the module's DWARF line table through
 * elfutils' libdw. @ret_file lives as long as the process. 0, PROBE_ENOENT when
 * unknown, PROBE_ENOTSUP when libprobe was built without libdw. */
int symbolize_line(uintptr_t pc, int is_return, const char **ret_file, unsigned *ret_line);

/* At load, before the sampler registers its own fork handlers: the symbol caches'
 * locks are taken around fork() after the sampler's (sampler lock, then them). */
void symbolize_init(void);

#endif
